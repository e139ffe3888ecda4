import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { diagnoseBundle, type Diagnosis } from '../../src/diagnose';
import { collectReportData, renderReport, writeReport } from '../../src/report';
import { LOSS_SERIES, makeBundle, runWrapper, useTempDirs } from './helpers';

const tempDir = useTempDirs();
const layer = (d: Diagnosis, id: string) => d.layers.find((l) => l.layer === id)!;

/**
 * A made-up task the core has never heard of: a bandit that logs one JSON line per episode to
 * artifacts/rollouts/metrics.jsonl, with `reward` (higher is better) and `entropy`. Only its
 * job.json declaration tells the core what to read.
 */
const BANDIT_SERIES = { file: 'metrics.jsonl', step: 'episode', metrics: [{ key: 'reward', label: 'mean reward', goal: 'max' as const }, { key: 'entropy' }] };

function banditTask(rewards: string): string {
  return `import json, math, os
rewards = ${rewards}
out = os.path.join(os.environ["ORBIT_ARTIFACTS_DIR"], "rollouts")
os.makedirs(out)
with open(os.path.join(out, "metrics.jsonl"), "w") as f:
    for i, r in enumerate(rewards, 1):
        f.write(json.dumps({"episode": i, "reward": r, "entropy": 1.0 / i}) + "\\n")
print("episodes", len(rewards), flush=True)
`;
}

async function runBandit(rewards: string, progress: Parameters<typeof makeBundle>[1]['progress'] = BANDIT_SERIES) {
  const dir = join(await tempDir(), 'bundle');
  await makeBundle(dir, { command: ['python3', 'scripts/bandit.py'], scripts: { 'bandit.py': banditTask(rewards) }, ...(progress ? { progress } : {}) });
  expect((await runWrapper(dir)).exitCode).toBe(0);
  return { dir, diagnosis: await diagnoseBundle(dir) };
}

describe('a task that declares its own progress series in job.json, unknown to the core', () => {
  it('is diagnosed from its metrics.jsonl: a reward that climbs is progress, by episode', async () => {
    const { dir, diagnosis } = await runBandit('[i / 40 for i in range(40)]');
    expect(diagnosis.healthy).toBe(true);
    expect(layer(diagnosis, 'progress')).toMatchObject({
      status: 'ok',
      summary: 'mean reward 0 -> 0.975, entropy 1 -> 0.025 over 40 points (episode 1 to 40)',
    });
    expect(layer(diagnosis, 'progress').evidence.map((e) => [e.file, e.line])).toEqual([
      ['artifacts/rollouts/metrics.jsonl', 1],
      ['artifacts/rollouts/metrics.jsonl', 40],
    ]);
    expect(JSON.parse(await readFile(join(dir, 'job.json'), 'utf8')).progress).toEqual({
      file: 'metrics.jsonl',
      format: 'jsonl',
      step: 'episode',
      metrics: [{ key: 'reward', label: 'mean reward', goal: 'max' }, { key: 'entropy' }],
    });
  });

  it('stalls when the reward does not rise: the goal gives the direction (the same fall would be progress for a loss)', async () => {
    const falling = '[1.0 - i / 300 for i in range(150)]';
    const { diagnosis } = await runBandit(falling);
    expect(diagnosis.verdict).toMatchObject({ layer: 'progress', kind: 'stalled' });
    expect(diagnosis.verdict?.summary).toMatch(/^mean reward has not improved beyond its noise: over steps \d+-\d+ \(75 points\) its trend moved -0\.247 the right way, .*and so it was 100 points earlier$/);
    const asLoss = await runBandit(falling, { ...BANDIT_SERIES, metrics: [{ key: 'reward', goal: 'min' }] });
    expect(layer(asLoss.diagnosis, 'progress').status).toBe('ok');
  });

  it('fails the progress layer when the reward goes NaN or infinite, naming the episode', async () => {
    const { diagnosis } = await runBandit('[0.1, 0.2, 0.3, float("inf"), float("nan")]');
    expect(diagnosis.verdict).toMatchObject({ layer: 'progress', kind: 'inf' });
    expect(diagnosis.verdict?.summary).toBe('mean reward became inf at episode 4 (it was 0.3 at episode 3); 2 of 5 points are not finite');
    expect(diagnosis.verdict?.evidence.map((e) => e.file)).toEqual(['artifacts/rollouts/metrics.jsonl', 'artifacts/rollouts/metrics.jsonl']);
  });

  it('is charted by the report, one chart per declared metric, drawn offline in headless Chromium', async () => {
    const { dir } = await runBandit('[i / 40 for i in range(40)]');
    const data = await collectReportData(dir);
    expect(data.progress).toMatchObject({ file: 'artifacts/rollouts/metrics.jsonl', step: 'episode' });
    expect(data.progress?.metrics.map((m) => [m.id, m.label, m.steps.length, m.nonFinite])).toEqual([
      ['chart-reward', 'mean reward', 40, 0],
      ['chart-entropy', 'entropy', 40, 0],
    ]);
    const { path } = await writeReport(dir);
    const context = await chromium.launchPersistentContext(await tempDir(), {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(pathToFileURL(path).href);
      await page.waitForSelector('#chart-entropy canvas');
      expect(await page.$$eval('.chart', (els) => els.map((el) => [el.id, el.querySelector('.u-title')?.textContent ?? '']))).toEqual([
        ['chart-reward', 'mean reward by episode'],
        ['chart-entropy', 'entropy by episode'],
      ]);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('gets no progress rules and no chart when job.json declares no series, whatever files it writes', async () => {
    const dir = join(await tempDir(), 'bundle');
    const task = `import json, os\nwith open(os.path.join(os.environ["ORBIT_ARTIFACTS_DIR"], "logging.jsonl"), "w") as f:\n    f.write(json.dumps({"step": 1, "loss": float("nan")}) + "\\n")\n`;
    await makeBundle(dir, { command: ['python3', 'scripts/t.py'], scripts: { 't.py': task } });
    await runWrapper(dir);
    const diagnosis = await diagnoseBundle(dir);
    expect(diagnosis.healthy).toBe(true);
    expect(layer(diagnosis, 'progress')).toMatchObject({ status: 'skipped', summary: 'job.json declares no progress series' });
    const data = await collectReportData(dir);
    expect(data.progress).toBeUndefined();
    const html = renderReport(data, { js: '', css: '' });
    expect(html).toContain('<p class="none">job.json declares no progress series</p>');
    expect(html).not.toContain('class="chart" id="chart-loss"');
  });

  it('says which declared file it looked for when the run wrote none', async () => {
    const dir = join(await tempDir(), 'bundle');
    await makeBundle(dir, { command: ['true'], progress: LOSS_SERIES });
    await runWrapper(dir);
    expect(layer(await diagnoseBundle(dir), 'progress')).toMatchObject({ status: 'skipped', summary: 'no logging.jsonl under artifacts/' });
    expect(renderReport(await collectReportData(dir), { js: '', css: '' })).toContain('no logging.jsonl with a declared metric under artifacts/');
  });
});
