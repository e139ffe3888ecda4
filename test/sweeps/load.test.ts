import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Bundle } from '../../src/bundle';
import type { TaskRegistry } from '../../src/plugins/registry';
import { loadSweep, SweepFileError } from '../../src/sweeps/load';
import { scheduleOptions } from '../../src/sweeps/schedule';
import { buildSweep, firingInput, readSweep } from '../../src/sweeps/store';
import { testRegistry } from '../helpers/sleeper-plugin';

const COLLECT = `
base:
  task: collection
  source: { kind: synthetic, rows: 20, features: 2, seed: 0 }
  output: data/out.csv
matrix:
  seed: { field: source.seed, values: { s1: 1, s2: 2 } }
  size:
    - { name: small, set: { source: { rows: 10 } } }
    - { name: large, set: { source: { rows: 40 } } }
schedule:
  cron: "0 3 * * *"
  timezone: Europe/Paris
  overlap: BUFFER_ONE
  catchupWindow: 30m
maxConcurrent: 2
`;

describe('sweep files', () => {
  let registry: TaskRegistry;
  const dirs: string[] = [];
  beforeAll(async () => {
    registry = await testRegistry();
  });
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });
  async function file(text: string, name = 'nightly.yaml'): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'orbit-sweep-'));
    dirs.push(dir);
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  }
  async function problems(text: string): Promise<string[]> {
    const err = await loadSweep(await file(text), registry).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SweepFileError);
    return (err as SweepFileError).problems.map((p) => `${p.path}: ${p.message}`);
  }

  it('loads a matrix of collection requests, each checked by the plugin', async () => {
    const s = await loadSweep(await file(COLLECT), registry);
    expect(s.name).toBe('nightly');
    expect(s.taskType).toBe('collection');
    expect(s.cells.map((c) => [c.name, c.jobId])).toEqual([
      ['s1.small', 'nightly.s1.small'],
      ['s1.large', 'nightly.s1.large'],
      ['s2.small', 'nightly.s2.small'],
      ['s2.large', 'nightly.s2.large'],
    ]);
    expect(s.cells[1]!.request).toMatchObject({ source: { kind: 'synthetic', rows: 40, seed: 1, features: 2 } });
    expect(s.schedule).toMatchObject({ cron: ['0 3 * * *'], timezone: 'Europe/Paris', overlap: 'buffer-one', catchupWindow: 1_800_000, paused: false });
    expect(s.maxConcurrent).toBe(2);
    expect(s.axes).toEqual([
      { name: 'seed', values: ['s1', 's2'] },
      { name: 'size', values: ['small', 'large'] },
    ]);
  });

  it('refuses an invalid cron string, naming schedule.cron', async () => {
    expect(await problems(COLLECT.replace('"0 3 * * *"', '"0 25 * * *"'))).toEqual(['schedule.cron: schedule.cron "0 25 * * *": hour "25" is not in range 0-23']);
  });

  it('refuses an empty matrix, naming matrix', async () => {
    const text = COLLECT.replace(/matrix:[\s\S]*?schedule:/, 'matrix: {}\nschedule:');
    expect(await problems(text)).toEqual([expect.stringMatching(/^matrix: is empty: name at least one axis/)]);
  });

  it('names every schedule problem at once', async () => {
    const text = COLLECT.replace(/schedule:[\s\S]*?maxConcurrent/, 'schedule:\n  interval: 5\n  timezone: Mars/Olympus\n  overlap: sometimes\n  catchupWindow: 1s\nmaxConcurrent');
    expect(await problems(text)).toEqual([
      'schedule.interval: schedule.interval must be a duration with a unit, such as 30s, 5m, 1h30m or 2d (got the bare number 5)',
      'schedule.timezone: schedule.timezone is not a known IANA time zone name; write one such as UTC, Europe/Paris or America/New_York',
      'schedule.overlap: schedule.overlap "sometimes" is not one of skip, buffer-one, buffer-all, cancel-other, terminate-other, allow-all',
      'schedule.catchupWindow: schedule.catchupWindow must be at least 10s (got 1s)',
    ]);
    expect(await problems(COLLECT.replace('cron: "0 3 * * *"\n  timezone: Europe/Paris', 'paused: true'))).toEqual([
      'schedule.cron: schedule needs cron (e.g. cron: "0 3 * * *") or interval (e.g. interval: 6h)',
    ]);
  });

  it('reports a problem every cell shares once, against the base, and the others per cell', async () => {
    const text = COLLECT.replace('output: data/out.csv', 'output: data/out.txt').replace('{ name: large, set: { source: { rows: 40 } } }', '{ name: large, set: { source: { rows: 0 } } }');
    expect(await problems(text)).toEqual([
      'base.output: output must name a .csv file under artifacts/, e.g. data/collected.csv',
      'cells.s1.large.source.rows: source.rows must be at least 1',
      'cells.s2.large.source.rows: source.rows must be at least 1',
    ]);
  });

  it('refuses an unknown task, a jobId in the base, and a bad name', async () => {
    expect(await problems(COLLECT.replace('task: collection', 'task: painting'))).toEqual([
      expect.stringMatching(/^base\.task: unknown task type "painting"; known task types: collection, evaluation, sleeper, training/),
    ]);
    expect(await problems(COLLECT.replace('task: collection', 'task: collection\n  jobId: x'))).toEqual([
      'base.jobId: remove it: each cell gets the job id <sweep name>.<cell name>',
    ]);
    expect(await problems(`name: Bad_Name\n${COLLECT}`)).toEqual(["name: name must be 1-40 chars of a-z, 0-9 and '-', starting with a letter or digit"]);
    const err = await loadSweep(await file(COLLECT, '_.yaml'), registry).catch((e: unknown) => e);
    expect((err as SweepFileError).problems.map((p) => p.path)).toEqual(['name']);
    expect((err as SweepFileError).message).toMatch(/taken from the file name; set name: in the file/);
  });

  it('builds one frozen bundle per cell, records them, and makes the schedule action from the record', async () => {
    const s = await loadSweep(await file(COLLECT), registry);
    const home = await mkdtemp(join(tmpdir(), 'orbit-home-'));
    dirs.push(home);
    const { dir, record } = await buildSweep(s, home);
    expect(dir).toBe(join(home, 'sweeps', 'nightly'));
    expect(existsSync(`${dir}.building`)).toBe(false);
    expect(record.cells).toHaveLength(4);
    for (const c of record.cells) {
      const bundle = await Bundle.open(join(dir, c.bundle));
      expect(await bundle.assertDigest()).toBe(c.digest);
      expect(bundle.spec.jobId).toBe(c.jobId);
      expect(c).toMatchObject({ taskType: 'collection', jobKind: 'collect', logFile: 'collection.log' });
    }
    expect(JSON.parse(await readFile(join(dir, 'config.json').replace('config.json', 'cells/s2.large/inputs/config.json'), 'utf8'))).toMatchObject({
      source: { rows: 40, seed: 2 },
    });
    expect((await readSweep(home, 'nightly')).record).toEqual(record);
    await expect(buildSweep(s, home)).rejects.toThrow(/already exists/);

    const input = firingInput(dir, record);
    expect(input).toMatchObject({ sweep: 'nightly', firingsDir: join(dir, 'firings'), host: 'auto', maxConcurrent: 2 });
    expect(input.cells[0]).toMatchObject({ name: 's1.small', bundleDir: join(dir, 'cells/s1.small'), taskType: 'collection', axes: { seed: 's1', size: 'small' } });
    const opts = scheduleOptions(dir, record, 'q');
    expect(opts.scheduleId).toBe('nightly');
    expect(opts.spec).toEqual({ cronExpressions: ['0 3 * * *'], timezone: 'Europe/Paris' });
    expect(opts.policies).toEqual({ overlap: 'BUFFER_ONE', catchupWindow: 1_800_000, pauseOnFailure: false });
    expect(opts.action).toMatchObject({ type: 'startWorkflow', workflowId: 'nightly', taskQueue: 'q' });
  });

  it('leaves nothing behind when a cell fails to build', async () => {
    const s = await loadSweep(await file(COLLECT), registry);
    const home = await mkdtemp(join(tmpdir(), 'orbit-home-'));
    dirs.push(home);
    const broken = { ...s, cells: [s.cells[0]!, { ...s.cells[1]!, jobId: 'Not A Slug' }] };
    await expect(buildSweep(broken, home)).rejects.toThrow(/jobId/);
    expect(existsSync(join(home, 'sweeps', 'nightly'))).toBe(false);
    expect(existsSync(join(home, 'sweeps', 'nightly.building'))).toBe(false);
  });

  it('examples/sweep-mlp.yaml: 2 checkpoints x 2 evaluation environments, checked and built by the evaluation plugin', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'orbit-example-'));
    dirs.push(dir);
    await cp(join(__dirname, '../../examples'), dir, { recursive: true }); // with the checkpoints it ships in data/checkpoints/
    const s = await loadSweep(join(dir, 'sweep-mlp.yaml'), registry);
    expect(s.name).toBe('nightly-scores');
    expect(s.cells.map((c) => c.name)).toEqual(['step-100.holdout-a', 'step-100.holdout-b', 'step-300.holdout-a', 'step-300.holdout-b']);
    expect(s.cells[1]!.request).toMatchObject({ checkpoint: 'data/checkpoints/step-100', environments: [{ name: 'holdout-b', datasetPath: 'data/holdout-b.csv' }] });
    expect(s.schedule).toMatchObject({ cron: ['0 3 * * *'], timezone: 'Europe/Paris', overlap: 'skip', catchupWindow: 3_600_000 });
    const { record } = await buildSweep(s, join(dir, 'home'));
    expect(record.cells.map((c) => [c.name, c.taskType])).toEqual(s.cells.map((c) => [c.name, 'evaluation']));
  });
});
