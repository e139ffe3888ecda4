/**
 * Sweeps on the real dev server: Temporal Schedules whose firings run the generic runSweep workflow,
 * with an in-process worker on its own task queue. Cells are collection jobs (standard-library
 * Python) or the tests' bash "sleeper" task, so a firing takes seconds.
 */
import { ScheduleNotFoundError, WorkflowFailedError, type Client, type ScheduleDescription } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { verifyManifest } from '../../src/bundle';
import { CliError } from '../../src/cli/errors';
import { listQuery, listRuns } from '../../src/cli/list';
import { sweepCommand, type SweepContext } from '../../src/cli/sweep';
import type { FiringResults } from '../../src/cli/sweep-results';
import { temporalTarget } from '../../src/config';
import type { TaskRegistry } from '../../src/plugins/registry';
import type { SweepFiringResult } from '../../src/workflows';
import { tempDir } from '../helpers/bundles';
import { startInProcessWorker, type InProcessWorker } from '../helpers/worker';
import { testRegistry } from '../helpers/sleeper-plugin';

const ROOT = resolve(__dirname, '../..');

async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 250): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A workflow's result, or an error after `timeoutMs` (a stuck run fails the test instead of hanging it). */
async function resultOf<T>(client: Client, workflowId: string, timeoutMs = 60_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${workflowId} did not end within ${timeoutMs} ms`)), timeoutMs)));
  try {
    return await Promise.race([client.workflow.getHandle(workflowId).result() as Promise<T>, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('orbit sweep on Temporal Schedules', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let worker: InProcessWorker;
  let client: Client;
  let registry: TaskRegistry;
  let ctx: SweepContext;
  const taskQueue = `sweep-${randomUUID()}`;
  const tag = randomUUID().slice(0, 6);
  const created: string[] = [];

  beforeAll(async () => {
    tmp = await tempDir('orbit-sweep-');
    const address = inject('temporalAddress');
    worker = await startInProcessWorker({ address, taskQueue, orbitHome: join(tmp.dir, 'home') });
    client = worker.client;
    registry = await testRegistry();
    const target = temporalTarget({ ORBIT_TEMPORAL_PORT: address.split(':')[1], TEMPORAL_UI_URL: inject('temporalUiUrl') });
    ctx = { client, registry, home: join(tmp.dir, 'home'), taskQueue, target };
  });

  afterAll(async () => {
    for (const name of created) await client.schedule.getHandle(name).delete().catch(() => undefined);
    await worker.stop();
    await tmp.cleanup();
  });

  /** Runs `orbit sweep ...` in this process with the test registry; returns what it printed. */
  async function orbitSweep(...argv: string[]): Promise<string> {
    const lines: string[] = [];
    const code = await sweepCommand(argv, (s) => lines.push(s), { registry: async () => registry, context: async () => ctx });
    expect(code).toBe(0);
    return lines.join('\n');
  }

  async function sweepFile(name: string, body: string): Promise<string> {
    const file = join(tmp.dir, `${name}.yaml`);
    await writeFile(file, `name: ${name}\n${body}`);
    return file;
  }

  async function create(name: string, body: string): Promise<string> {
    created.push(name);
    return orbitSweep('create', await sweepFile(name, body));
  }

  const describeSchedule = (name: string): Promise<ScheduleDescription> => client.schedule.getHandle(name).describe();

  /** The fan-out workflow ids the schedule started, oldest first. */
  async function firings(name: string): Promise<string[]> {
    return (await describeSchedule(name)).info.recentActions.map((a) => a.action.workflow.workflowId);
  }

  it('refuses an invalid cron or an empty matrix, naming the field, before anything is created', async () => {
    const name = `t${tag}-bad`;
    const base = 'base: { task: sleeper, score: 1 }\nmatrix: { s: { field: score, values: { a: 1 } } }\n';
    for (const [body, field] of [
      [`${base}schedule: { cron: "0 0 32 * *" }\n`, /schedule\.cron: schedule\.cron "0 0 32 \* \*": day of month "32" is not in range 1-31/],
      ['base: { task: sleeper, score: 1 }\nmatrix: {}\nschedule: { cron: "@daily" }\n', /matrix: is empty: name at least one axis/],
      [`${base}schedule: { interval: 1h, overlap: sometimes }\n`, /schedule\.overlap: schedule\.overlap "sometimes" is not one of skip, buffer-one/],
    ] as const) {
      const err = await sweepCommand(['create', await sweepFile(name, body)], () => {}, { registry: async () => registry, context: async () => ctx }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CliError);
      expect((err as CliError).exitCode).toBe(2);
      expect((err as CliError).message).toMatch(field);
    }
    expect(existsSync(join(ctx.home, 'sweeps', name))).toBe(false);
    await expect(describeSchedule(name)).rejects.toBeInstanceOf(ScheduleNotFoundError);

    // The same through bin/orbit: exit code 2, the field on stderr.
    const run = promisify(execFile);
    const port = inject('temporalAddress').split(':')[1]!;
    const env: NodeJS.ProcessEnv = { ...process.env, ORBIT_HOME: ctx.home, ORBIT_TEMPORAL_PORT: port, ORBIT_TASK_QUEUE: taskQueue };
    delete env.TEMPORAL_ADDRESS;
    const bad = await sweepFile(name, `base: { task: collection, source: { kind: synthetic, rows: 5 }, output: data/x.csv }\nmatrix: { seed: { field: source.seed, values: { a: 1 } } }\nschedule: { cron: "0 25 * * *" }\n`);
    const r = await run(join(ROOT, 'bin/orbit'), ['sweep', 'create', bad], { env }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${bad}: schedule.cron: schedule.cron "0 25 * * *": hour "25" is not in range 0-23`);
    expect(existsSync(join(ctx.home, 'sweeps', name))).toBe(false);
  });

  it('a firing runs every cell as a child runBundle in its own folder, at most maxConcurrent at once; results summarize each cell', async () => {
    const name = `t${tag}-collect`;
    const out = await create(
      name,
      `base:
  task: collection
  source: { kind: synthetic, rows: 10, features: 2, seed: 0 }
  output: data/table.csv
matrix:
  seed: { field: source.seed, values: { s1: 1, s2: 2 } }
  size:
    - { name: small, set: { source: { rows: 30 } } }
    - { name: large, set: { source: { rows: 60 } } }
schedule: { cron: "0 0 1 1 *", timezone: Europe/Paris, overlap: skip }
maxConcurrent: 2
pollInterval: 200ms
`,
    );
    expect(out).toContain(`created sweep ${name}: 4 collection cells on auto (seed x2, size x2)`);
    expect(out).toContain('schedule: cron 0 0 1 1 * (Europe/Paris); overlap skip');
    expect(out).toMatch(/next firing: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+/);
    const dir = join(ctx.home, 'sweeps', name);
    expect(readdirSync(join(dir, 'cells')).sort()).toEqual(['s1.large', 's1.small', 's2.large', 's2.small']);
    expect(await orbitSweep('list')).toMatch(new RegExp(`${name}\\s+active\\s+cron 0 0 1 1 \\* \\(Europe/Paris\\)\\s+4`));

    const started = Date.now();
    expect(await orbitSweep('trigger', name)).toContain(`sweep ${name}: fired now (overlap skip)`);
    const [firingWorkflow] = await waitFor('the first firing', async () => (await firings(name)).length === 1 && firings(name));
    expect(firingWorkflow).toMatch(new RegExp(`^${name}-\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`));
    const result: SweepFiringResult = await resultOf(client, firingWorkflow!);
    const firingSeconds = (Date.now() - started) / 1000;
    expect(result.phase).toBe('succeeded');
    expect(result.firingId).toMatch(/^\d{8}-\d{6}$/);
    expect(result.cells.map((c) => [c.cell, c.state, c.workflowId])).toEqual(
      ['s1.small', 's1.large', 's2.small', 's2.large'].map((c) => [c, 'succeeded', `${name}-${result.firingId}-${c}`]),
    );

    // Each child runs its cell straight from the store (no clone): its own run folder on the worker,
    // verified artifacts, its artifacts recorded in the store, searchable by sweep; the frozen cells untouched.
    const windows: [number, number][] = [];
    const store = join(ctx.home, 'store');
    for (const c of result.cells) {
      expect(c.bundleDir).toBeUndefined();
      expect((await verifyManifest(join(ctx.home, 'runs', c.workflowId))).verified).toBe(true);
      expect(existsSync(join(store, 'runs', c.workflowId, 'artifacts.json'))).toBe(true);
      const d = await client.workflow.getHandle(c.workflowId).describe();
      const sa = Object.fromEntries(d.typedSearchAttributes.getAll().map((p) => [p.key.name, p.value]));
      expect(sa).toMatchObject({ OrbitSweep: name, OrbitTaskType: 'collection', OrbitJobKind: 'collect', OrbitHost: 'local', OrbitPhase: 'succeeded' });
      expect(d.memo).toMatchObject({ sweep: name, firing: result.firingId, cell: c.cell, store: `file://${store}` });
      windows.push([d.startTime.getTime(), d.closeTime!.getTime()]);
    }
    for (const c of readdirSync(join(dir, 'cells'))) expect(readdirSync(join(dir, 'cells', c, 'artifacts'))).toEqual([]);
    const overlapping = Math.max(...windows.map(([s]) => windows.filter(([a, b]) => a <= s && s < b).length));
    expect(overlapping).toBeLessThanOrEqual(2);
    const fanOut = await client.workflow.getHandle(firingWorkflow!).describe();
    expect(Object.fromEntries(fanOut.typedSearchAttributes.getAll().map((p) => [p.key.name, p.value]))).toMatchObject({
      OrbitSweep: name,
      OrbitJobKind: 'sweep',
      OrbitPhase: 'succeeded',
      TemporalScheduledById: name,
    });

    // Results: every cell through the collection plugin's summary.
    const json = JSON.parse(await orbitSweep('results', name, '--format', 'json')) as FiringResults;
    expect(json.firingId).toBe(result.firingId);
    expect(json.cells.map((c) => [c.cell, c.status, c.metrics.rows])).toEqual([
      ['s1.small', 'succeeded', 30],
      ['s1.large', 'succeeded', 60],
      ['s2.small', 'succeeded', 30],
      ['s2.large', 'succeeded', 60],
    ]);
    const table = await orbitSweep('results', name);
    expect(table).toContain(`sweep ${name}, firing ${result.firingId} (1 firing; --firing ID for another): 4/4 cells succeeded`);
    expect(table).toMatch(/CELL\s+SEED\s+SIZE\s+STATUS\s+HOST\s+ROWS\s+COLUMNS\s+DROPPED/);
    expect(table).toMatch(/s2\.large\s+s2\s+large\s+succeeded\s+local\s+60\s+3\s+0/);
    const csv = await orbitSweep('results', name, '--format', 'csv');
    expect(csv.split('\n')[0]).toBe('cell,seed,size,status,host,rows,columns,dropped');
    expect(csv.split('\n')).toContain('s1.small,s1,small,succeeded,local,30,3,0');

    // A second firing claims its own id in the store; the first one's results stay.
    await sleep(1100); // a new second: firing ids are the scheduled time to the second
    await orbitSweep('trigger', name);
    const second = await waitFor('the second firing', async () => (await firings(name)).length === 2 && (await firings(name))[1]);
    const result2: SweepFiringResult = await resultOf(client, second);
    expect(result2.firingId).not.toBe(result.firingId);
    expect(readdirSync(join(store, 'sweeps', name, 'firings')).sort()).toEqual([`${result.firingId}.json`, `${result2.firingId}.json`].sort());
    expect((await verifyManifest(join(ctx.home, 'runs', `${name}-${result.firingId}-s1.small`))).verified).toBe(true);
    expect(await orbitSweep('results', name, '--firing', result.firingId)).toContain(`firing ${result.firingId} (2 firings`);
    await expect(orbitSweep('results', name, '--firing', '20000101-000000')).rejects.toThrow(/has no firing 20000101-000000; its firings:/);

    // Every run of the sweep is found by its search attribute, as in the Web UI.
    const runs = await waitFor('visibility of 10 runs', async () => {
      const r = await listRuns(client, listQuery({ sweep: name }), 50);
      return r.length === 10 && r;
    });
    expect(runs.filter((r) => r.jobKind === 'sweep')).toHaveLength(2);
    expect((await listRuns(client, listQuery({ sweep: name, task: 'collection', phase: 'succeeded' }), 50)).length).toBe(8);

    // The fan-out's history replays against the workflow code.
    await Worker.runReplayHistory({ workflowsPath: require.resolve('../../src/workflows/index.ts') }, await client.workflow.getHandle(firingWorkflow!).fetchHistory(), firingWorkflow);

    const described = await orbitSweep('describe', name);
    expect(described).toContain(`sweep ${name}: active`);
    expect(described).toContain('firings: 2 taken, 0 skipped (overlap)');
    expect(described).toContain(`Web UI: ${inject('temporalUiUrl')}/namespaces/default/schedules/${name}`);

    expect(await orbitSweep('delete', name, '--purge')).toContain(`sweep ${name}: schedule deleted`);
    await expect(describeSchedule(name)).rejects.toBeInstanceOf(ScheduleNotFoundError);
    expect(existsSync(dir)).toBe(false);
    expect(existsSync(join(store, 'sweeps', name, 'sweep.json'))).toBe(false); // purged from the store too: gc may drop its cells
    console.log(`timing: one firing of 4 collection cells (2 at once) took ${firingSeconds.toFixed(1)} s from trigger to result`);
  });

  it('pause stops the firings, unpause resumes them, delete removes the schedule', async () => {
    const name = `t${tag}-pause`;
    await create(name, 'base: { task: sleeper, score: 1 }\nmatrix: { s: { field: score, values: { one: 1 } } }\nschedule: { interval: 2s, paused: true }\npollInterval: 200ms\n');
    expect((await describeSchedule(name)).state.paused).toBe(true);
    await sleep(3000); // more than one interval
    expect((await describeSchedule(name)).info.numActionsTaken).toBe(0);

    expect(await orbitSweep('unpause', name)).toBe(`sweep ${name} unpaused`);
    await waitFor('a firing after unpause', async () => (await describeSchedule(name)).info.numActionsTaken >= 1, 15_000);

    expect(await orbitSweep('pause', name, '--note', 'maintenance')).toBe(`sweep ${name} paused`);
    const paused = await describeSchedule(name);
    expect(paused.state).toMatchObject({ paused: true, note: 'maintenance' });
    await sleep(1000);
    const before = await describeSchedule(name);
    await sleep(4000); // two intervals
    const after = await describeSchedule(name);
    expect(after.info.numActionsTaken).toBe(before.info.numActionsTaken);
    expect(after.info.numActionsSkippedOverlap).toBe(before.info.numActionsSkippedOverlap);
    expect(await orbitSweep('list')).toMatch(new RegExp(`${name}\\s+paused\\s+every 2s`));

    // A backfill takes the firings of a past range at once, paused or not.
    const taken = after.info.numActionsTaken;
    expect(await orbitSweep('backfill', name, '--start=-7s', '--end=now', '--overlap', 'allow-all')).toMatch(/backfilling .* \(overlap allow-all\)/);
    const backfilled = await waitFor('the backfilled firings', async () => {
      const n = (await describeSchedule(name)).info.numActionsTaken - taken;
      return n >= 3 && n;
    }, 15_000);
    expect(backfilled).toBeLessThanOrEqual(4);

    // Let the last firing end, then delete.
    for (const id of await firings(name)) await resultOf(client, id);
    expect(await orbitSweep('delete', name)).toContain('bundles and firing results stay in');
    await expect(describeSchedule(name)).rejects.toBeInstanceOf(ScheduleNotFoundError);
    expect(await orbitSweep('list')).not.toContain(name);
    await expect(orbitSweep('trigger', name)).rejects.toThrow(`no sweep named ${name}`);
  });

  it('honours the overlap policy: skip drops a firing while one runs, buffer-one starts it after', async () => {
    const name = `t${tag}-overlap`;
    await create(name, 'base: { task: sleeper, seconds: 4, score: 7 }\nmatrix: { s: { field: score, values: { seven: 7 } } }\nschedule: { cron: "0 0 1 1 *", overlap: skip }\npollInterval: 200ms\n');
    await orbitSweep('trigger', name);
    const [first] = await waitFor('the first firing to run', async () => {
      const d = await describeSchedule(name);
      return d.info.runningActions.length === 1 && d.info.runningActions.map((a) => a.workflow.workflowId);
    });

    await orbitSweep('trigger', name); // the sweep's policy: skip
    await waitFor('the skip to be counted', async () => (await describeSchedule(name)).info.numActionsSkippedOverlap === 1, 10_000);
    expect(await firings(name)).toEqual([first]);

    await sleep(1100);
    expect(await orbitSweep('trigger', name, '--overlap', 'buffer-one')).toContain('(overlap buffer-one)');
    const second = await waitFor('the buffered firing', async () => (await firings(name)).length === 2 && (await firings(name))[1], 20_000);
    await resultOf(client, second);
    const a = await client.workflow.getHandle(first!).describe();
    const b = await client.workflow.getHandle(second).describe();
    expect(b.startTime.getTime()).toBeGreaterThanOrEqual(a.closeTime!.getTime());
    const d = await describeSchedule(name);
    expect(d.info.numActionsTaken).toBe(2);
    expect(d.info.numActionsSkippedOverlap).toBe(1);
    const r = JSON.parse(await orbitSweep('results', name, '--format', 'json')) as FiringResults;
    expect(r.cells[0]).toMatchObject({ cell: 'seven', status: 'succeeded', metrics: { score: 7 } });
    expect(JSON.parse(await readFile(join(ctx.home, 'sweeps', name, 'sweep.json'), 'utf8'))).toMatchObject({ schedule: { overlap: 'skip' } });
  });

  it('a failing cell fails the firing, not its siblings; results and orbit list show which', async () => {
    const name = `t${tag}-fail`;
    await create(
      name,
      'base: { task: sleeper, score: 1 }\nmatrix:\n  case:\n    - { name: ok, set: { score: 5 } }\n    - { name: bad, set: { fail: true } }\nschedule: { interval: 1d }\npollInterval: 200ms\n',
    );
    await orbitSweep('trigger', name);
    const [id] = await waitFor('the firing', async () => (await firings(name)).length === 1 && firings(name));
    const err = await resultOf(client, id!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const failure = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(failure.type).toBe('SweepCellsFailed');
    expect(failure.message).toMatch(/1 of 2 cells did not succeed \(bad failed\)/);
    const details = failure.details?.[0] as SweepFiringResult;
    expect(details.cells.map((c) => [c.cell, c.state])).toEqual([
      ['ok', 'succeeded'],
      ['bad', 'failed'],
    ]);
    expect(details.cells[1]!.error).toMatch(/entrypoint exited with code 3/);
    const r = JSON.parse(await orbitSweep('results', name, '--format', 'json')) as FiringResults;
    expect(r.cells.map((c) => [c.cell, c.status, c.metrics.score])).toEqual([
      ['ok', 'succeeded', 5],
      ['bad', 'failed', null],
    ]);
    expect(r.workflowId).toBe(id);
    const failed = await waitFor('visibility of the failed cell', async () => {
      const runs = await listRuns(client, listQuery({ sweep: name, phase: 'failed' }), 10);
      return runs.length === 2 && runs;
    });
    expect(failed.map((x) => x.workflowId).sort()).toEqual([id, `${name}-${r.firingId}-bad`].sort());
  });
});
