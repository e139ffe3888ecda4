import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main';
import { FAKE_GPU_BIN, FIXTURES, LOSS_SERIES, makeBundle, ROOT, runWrapper, useTempDirs } from './helpers';
import { chartBundle, KILLED, T0 } from './report-fixtures';

const tempDir = useTempDirs();

/** The part of a browser canvas the test reads (this project compiles without the DOM library). */
interface CanvasLike {
  width: number;
  height: number;
  getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } | null;
}
/** The part of a uPlot chart the test reads: `window.orbitCharts[id]`, set by the report's script. */
interface PlotLike {
  /** The plotting area, in canvas pixels. */
  bbox: { left: number; top: number; width: number; height: number };
  scales: Record<string, { min: number; max: number; distr: number }>;
  /** uPlot's own field: the tick labels it drew last, per axis. */
  axes: { _values?: (string | null)[] }[];
  ctx: { canvas: { width: number }; getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } };
}

/**
 * Where on a chart's canvas a value of x should fall (from the plotting area and the x range, not
 * from uPlot's valToPos), and the columns of one pixel row, `yFrac` down the plotting area, that
 * hold `rgb`.
 */
async function columnsOf(page: Page, id: string, x: number, rgb: readonly [number, number, number], yFrac: number): Promise<{ expected: number; hits: number[] }> {
  return page.evaluate(
    ({ id, x, rgb, yFrac }) => {
      const u = (globalThis as unknown as { orbitCharts: Record<string, PlotLike> }).orbitCharts[id]!;
      const sx = u.scales['x']!;
      const expected = u.bbox.left + ((x - sx.min) / (sx.max - sx.min)) * u.bbox.width;
      const d = u.ctx.getImageData(0, Math.round(u.bbox.top + u.bbox.height * yFrac), u.ctx.canvas.width, 1).data;
      const hits: number[] = [];
      for (let i = 0; i < u.ctx.canvas.width; i++) {
        if (Math.abs(d[i * 4]! - rgb[0]) + Math.abs(d[i * 4 + 1]! - rgb[1]) + Math.abs(d[i * 4 + 2]! - rgb[2]) < 40 && d[i * 4 + 3]! > 200) hits.push(i);
      }
      return { expected, hits };
    },
    { id, x, rgb, yFrac },
  );
}
const GREEN = [0x1b, 0x7a, 0x33] as const; // an exit 0
const RED = [0xb3, 0x26, 0x1e] as const; // a kill; a non-finite point

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
  it('writes runtime/report.html that renders its charts offline in headless Chromium, with no console errors; a diverging, killed run gets a log axis, NaN markers and the kill marked', async () => {
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
      expect(await page.$$eval('#provenance tbody tr td:nth-child(2)', (tds) => tds.map((t) => t.textContent))).toEqual(['interpreter', 'pythonpath', 'module json', 'driver']); // pythonpath: run.sh puts the contract's helper on it
      expect(await page.textContent('.verdict')).toContain('healthy');
      expect(errors).toEqual([]);
      expect(requests.filter((u) => !u.startsWith('file:') && !u.startsWith('data:'))).toEqual([]);
      // The GPU charts mark the exit (runtime.log's `exit code=0` line) where its time falls.
      const exit = JSON.parse((await page.textContent('#report-data'))!) as { gpuMarks: { x: number; label: string }[] };
      expect(exit.gpuMarks.map((m) => m.label)).toEqual(['exit 0']);
      expect(await page.$$eval('#chart-gpu-mem .run-mark', (els) => els.map((e) => e.textContent))).toEqual(['exit 0']);
      const line = await columnsOf(page, 'chart-gpu-mem', exit.gpuMarks[0]!.x, GREEN, 0.5);
      expect(line.hits.length).toBeGreaterThan(0);
      for (const x of line.hits) expect(Math.abs(x - line.expected)).toBeLessThanOrEqual(2);
      await page.screenshot({ path: join(OUTPUT, 'report.png'), fullPage: true });

      // A loss that diverges to 1e12, then inf and NaN; the task killed by SIGKILL at 14.5 s (a fixture, no run).
      const killed = await chartBundle(join(await tempDir(), 'killed'), KILLED);
      const said: string[] = [];
      expect(await main(['report', killed], (l) => said.push(l))).toBe(0);
      expect(said[0]).toBe(`report written: ${join(killed, 'runtime/report.html')}`);
      await page.goto(pathToFileURL(join(killed, 'runtime/report.html')).href);
      await page.waitForSelector('#chart-gpu-util canvas');
      const loss = await page.evaluate(() => {
        const u = (globalThis as unknown as { orbitCharts: Record<string, PlotLike> }).orbitCharts['chart-loss']!;
        return { distr: u.scales['y']!.distr, min: u.scales['y']!.min, max: u.scales['y']!.max, ticks: u.axes[1]!._values };
      });
      expect(loss).toEqual({ distr: 3, min: 1, max: 1e12, ticks: ['1', '100', '1e4', '1e6', '1e8', '1e10', '1e12'] });
      expect(await page.$$eval('#chart-loss .nonfinite-mark', (els) => els.map((e) => e.textContent))).toEqual(['inf at step 50', 'NaN at steps 51-60 (10 points)']);
      // A red marker at the top edge over step 55 (NaN), none over step 45 (finite).
      for (const [step, marked] of [[55, true], [45, false]] as const) {
        const top = await columnsOf(page, 'chart-loss', step, RED, 0.02);
        expect(top.hits.some((x) => Math.abs(x - top.expected) <= 2), `step ${step}`).toBe(marked);
      }
      expect(await page.$$eval('.chart .run-mark', (els) => els.map((e) => [e.closest('.chart')!.id, e.textContent]))).toEqual([
        ['chart-gpu-mem', 'killed (SIGKILL) 137'],
        ['chart-gpu-util', 'killed (SIGKILL) 137'],
      ]);
      for (const id of ['chart-gpu-mem', 'chart-gpu-util']) {
        const kill = await columnsOf(page, id, (T0 + 14_500) / 1000, RED, 0.5);
        expect(kill.hits.length, id).toBeGreaterThan(0);
        for (const x of kill.hits) expect(Math.abs(x - kill.expected), id).toBeLessThanOrEqual(2);
      }
      expect(errors).toEqual([]);
      await page.screenshot({ path: join(OUTPUT, 'report-diverging-killed.png'), fullPage: true });
    } finally {
      await context.close();
    }
  });
});
