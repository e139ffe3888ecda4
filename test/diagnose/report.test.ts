import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main';
import { FAKE_GPU_BIN, FIXTURES, LOSS_SERIES, makeBundle, ROOT, runWrapper, useTempDirs } from './helpers';

const tempDir = useTempDirs();

/** The part of a browser canvas the test reads (this project compiles without the DOM library). */
interface CanvasLike {
  width: number;
  height: number;
  getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } | null;
}
/** Where the screenshot lands (git-ignored): the test's artifact. */
const OUTPUT = join(ROOT, 'test-output');

const FIT = `import json, os, time
out = os.path.join(os.environ["ORBIT_ARTIFACTS_DIR"], "checkpoints", "step-60")
os.makedirs(out)
with open(os.path.join(out, "logging.jsonl"), "w") as f:
    for i in range(1, 61):
        f.write(json.dumps({"step": i, "loss": 2.0 / (1 + 0.1 * i), "lr": 0.01}) + "\\n")
time.sleep(1.5)
print("done", flush=True)
`;

describe('orbit report', () => {
  it('writes runtime/report.html that renders its charts offline in headless Chromium, with no console errors', async () => {
    const dir = join(await tempDir(), 'bundle');
    await makeBundle(dir, { command: ['python3', 'scripts/fit.py'], scripts: { 'fit.py': FIT }, progress: LOSS_SERIES, precheck: { python: { modules: [{ name: 'json' }] } } });
    const run = await runWrapper(dir, { extraPath: [FAKE_GPU_BIN], env: { FAKE_NVIDIA_SMI_CSV: join(FIXTURES, 'query-gpu-2x-a100.csv'), FAKE_NVIDIA_SMI_TICK: '0.3' } });
    expect(run.exitCode).toBe(0);

    const out: string[] = [];
    expect(await main(['report', dir], (s) => out.push(s))).toBe(0);
    const reportPath = join(dir, 'runtime/report.html');
    expect(out).toEqual([`report written: ${reportPath}`, '  diagnosis: healthy']);
    const html = await readFile(reportPath, 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href="http/); // nothing fetched: it works offline

    await mkdir(OUTPUT, { recursive: true });
    const userDataDir = await tempDir();
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1100, height: 900 },
    });
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      await page.goto(pathToFileURL(reportPath).href);
      await page.waitForSelector('#chart-loss canvas');
      const charts = await page.$$eval('.chart', (els) =>
        els.map((el) => {
          const c = el.querySelector('canvas');
          const r = c?.getBoundingClientRect();
          return { id: el.id, width: r?.width ?? 0, height: r?.height ?? 0, title: el.querySelector('.u-title')?.textContent ?? '' };
        }),
      );
      expect(charts.map((c) => [c.id, c.title])).toEqual([
        ['chart-loss', 'loss by step'],
        ['chart-gpu-mem', 'GPU memory (MiB)'],
        ['chart-gpu-util', 'GPU utilization (%)'],
      ]);
      for (const c of charts) {
        expect(c.width, c.id).toBeGreaterThan(100);
        expect(c.height, c.id).toBeGreaterThan(100);
      }
      // The canvases hold drawn pixels, not a blank surface.
      const inked = await page.$$eval('.chart canvas', (cs) =>
        (cs as unknown as CanvasLike[]).map((c) => {
          const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 3; i < d.length; i += 4) if (d[i]! > 0) n++;
          return n;
        }),
      );
      for (const n of inked) expect(n).toBeGreaterThan(500);
      expect(await page.$$eval('#timeline .seg', (s) => s.map((e) => e.textContent))).toEqual(
        expect.arrayContaining(['staged', 'probe', 'precheck', 'start', 'exit']),
      );
      expect(await page.$$eval('#provenance tbody tr td:nth-child(2)', (tds) => tds.map((t) => t.textContent))).toEqual(['interpreter', 'module json', 'driver']);
      expect(await page.textContent('.verdict')).toContain('healthy');
      expect(errors).toEqual([]);
      expect(requests.filter((u) => !u.startsWith('file:') && !u.startsWith('data:'))).toEqual([]);
      await page.screenshot({ path: join(OUTPUT, 'report.png'), fullPage: true });
    } finally {
      await context.close();
    }
  });
});
