/**
 * The health rules live, on real runs of the demo trainer (and a hanging script) through a real
 * worker and dev server on the local host: a NaN loss stopped, a stalled loss raising warning then
 * unhealthy, a hang caught by no-output, GPU idle against the recorded nvidia-smi, and a healthy run
 * that stays ok; afterwards `orbit diagnose` says the same.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Bundle, JobSpecInput } from '../../src/bundle';
import type { HealthReport } from '../../src/common/health';
import type { RunBundleInput, RunResult } from '../../src/common/run';
import { runEnding } from '../../src/cli/run-ending';
import { diagnoseBundle, formatDiagnosis } from '../../src/diagnose';
import { TrainingPlugin } from '../../src/plugins/training/plugin';
import { runBundle, statusQuery } from '../../src/workflows';
import { scriptBundle, tempDir } from '../helpers/bundles';
import { FAKE_GPU_BIN } from '../diagnose/helpers';
import { recordHistory } from '../helpers/histories';
import { runOutcome } from '../helpers/run-outcome';
import { ROOMY_LOCAL, startInProcessWorker, type InProcessWorker } from '../helpers/worker';
import { LocalTransport } from '../../src/hosts/local-transport';
import { HostRegistry } from '../../src/hosts/registry';
import { ShellHost } from '../../src/hosts/shell-host';
import { createOrbitWorker, localHost, type OrbitWorker } from '../../src/worker/worker';

const EXAMPLES = join(__dirname, '../../examples');
const SYNC_MS = 1_000;
const POLL_MS = 300;

describe('health rules, live: the monitor judges what each sync brings', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let worker: InProcessWorker;
  let client: Client;
  const taskQueue = `health-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    tmp = await tempDir('orbit-health-');
    worker = await startInProcessWorker({ address: inject('temporalAddress'), taskQueue, orbitHome: tmp.dir });
    client = worker.client;
  });
  afterAll(async () => {
    await worker?.stop();
    await tmp?.cleanup();
  });

  async function startBundle(bundle: Bundle, digest: string) {
    const input: RunBundleInput = {
      runId: `${bundle.spec.jobId}-${randomUUID().slice(0, 6)}`,
      bundleDir: bundle.dir,
      digest,
      host: 'local',
      logFile: bundle.spec.entrypoint.logFile,
      timeouts: { ...bundle.spec.timeouts, killGraceSeconds: 2 },
      syncIntervalMs: SYNC_MS,
      tuning: { pollIntervalMs: POLL_MS, progressEveryMs: 60_000, heartbeatTimeoutMs: 10_000 },
    };
    const handle = await client.workflow.start(runBundle, { taskQueue, workflowId: input.runId, args: [input] });
    return { handle, input, dir: bundle.dir };
  }

  /** A training run of the demo trainer (examples/train.yaml with `overrides`), its request parsed as the CLI would. */
  async function train(name: string, overrides: Record<string, unknown>) {
    const plugin = new TrainingPlugin();
    const parsed = plugin.parse({ datasetPath: 'data/regression.csv', outputDir: 'checkpoints', syncIntervalSeconds: 1, ...overrides });
    if (!parsed.ok) throw new Error(parsed.problems.map((p) => p.message).join('; '));
    const request = parsed.value;
    const bundle = await plugin.buildBundle(join(tmp.dir, 'bundles', name), { request, baseDir: EXAMPLES, jobId: name });
    return startBundle(bundle, await bundle.freeze());
  }

  /** The OrbitHealth values the run's history set, in order. */
  async function healthTrail(handle: { fetchHistory(): Promise<{ events?: unknown[] | null }> }): Promise<string[]> {
    const history = await handle.fetchHistory();
    const out: string[] = [];
    for (const e of (history.events ?? []) as { upsertWorkflowSearchAttributesEventAttributes?: { searchAttributes?: { indexedFields?: Record<string, { data?: Uint8Array }> } } }[]) {
      const field = e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.['OrbitHealth'];
      if (field?.data) out.push(JSON.parse(Buffer.from(field.data).toString('utf8')) as string);
    }
    return out;
  }

  it('a NaN loss (learningRate 1e20) with onUnhealthy stop: stopped, collected, failed naming the rule and the step; diagnose agrees', async () => {
    const { handle, dir } = await train('nan', {
      learningRate: 1e20,
      steps: 3000,
      secondsPerStep: 0.02,
      health: { rules: [{ rule: 'not-finite', metric: 'loss', onUnhealthy: 'stop' }] },
    });
    const result: RunResult = await runOutcome(handle);
    expect(result.status).toBe('failed');
    expect(result.reasons[0]).toMatch(/^unhealthy: not-finite:loss: loss became inf at step 2 \(it was [\d.]+ at step 1\); stopped \(onUnhealthy stop\)$/);
    expect(result.health?.state).toBe('unhealthy');
    // Stopped long before its 3000 steps, by Orbit (TERM), and everything was collected.
    const runtimeLog = await readFile(join(dir, 'runtime/runtime.log'), 'utf8');
    expect(runtimeLog).toMatch(/ (stop|cancel) /);
    const series = (await readFile(join(dir, 'artifacts/logging.jsonl'), 'utf8')).trim().split('\n');
    expect(series.length).toBeLessThan(2000);
    expect(result.collect.manifestPresent).toBe(true);
    const d = await handle.describe();
    expect(d.searchAttributes['OrbitHealth']).toEqual(['unhealthy']);
    expect((d.memo as { health?: { rule?: string } }).health?.rule).toBe('not-finite:loss');
    const diagnosis = await diagnoseBundle(dir);
    expect(diagnosis.layers.find((l) => l.layer === 'progress')).toMatchObject({ status: 'failed', kind: 'inf' });
    // The stop is explained by the loss, not named as the failure.
    expect(diagnosis.verdict).toMatchObject({ layer: 'progress', kind: 'inf' });
    await recordHistory('run-bundle-health-stopped', handle);
  }, 120_000);

  it('a stalled loss (learningRate 1e-9) raises warning, then unhealthy; with onUnhealthy warn the run goes on to its end; diagnose names the stall', async () => {
    const { handle, dir } = await train('stall', {
      learningRate: 1e-9,
      steps: 400,
      secondsPerStep: 0.03,
      health: { rules: [{ rule: 'stalled', metric: 'loss', patience: 100 }] },
    });
    let seen: HealthReport | undefined;
    for (let i = 0; i < 600 && !seen?.findings.some((f) => f.level === 'unhealthy'); i++) {
      seen = (await handle.query(statusQuery).catch(() => undefined))?.health ?? seen;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen?.findings[0]).toMatchObject({ rule: 'stalled:loss', level: 'unhealthy', onUnhealthy: 'warn' });
    expect(seen?.findings[0]?.summary).toMatch(/^loss has not improved beyond its noise: over steps \d+-\d+/);
    const result = await runOutcome(handle);
    expect(result.status).toBe('succeeded');
    const trail = await healthTrail(handle);
    expect(trail.indexOf('warning')).toBeGreaterThanOrEqual(0);
    expect(trail.indexOf('unhealthy')).toBeGreaterThan(trail.indexOf('warning'));
    const diagnosis = await diagnoseBundle(dir);
    expect(diagnosis.layers.find((l) => l.layer === 'progress')).toMatchObject({ status: 'failed', kind: 'stalled' });
    expect(diagnosis.healthy).toBe(false);
  }, 120_000);

  it('a hang (the job sleeps without output) is caught by no-output and stopped', async () => {
    const spec: Partial<JobSpecInput> = { health: { rules: [{ rule: 'no-output', minutes: 0.05, onUnhealthy: 'stop' }] }, sync: { intervalSeconds: 1, atomicDirs: [] } };
    const { bundle, digest } = await scriptBundle(join(tmp.dir, 'bundles', 'hang'), 'echo "loading data"; sleep 120; echo never', spec);
    const started = Date.now();
    const { handle } = await startBundle(bundle, digest);
    const result = await runOutcome(handle);
    expect(result.status).toBe('failed');
    expect(result.reasons[0]).toMatch(/^unhealthy: no-output: no new task-log line or progress record for [\d.]+ min \(the rule allows 0.05 min\); stopped/);
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(await healthTrail(handle)).toEqual(['ok', 'warning', 'unhealthy']);
  }, 120_000);

  it('GPU idle against the recorded nvidia-smi: every GPU under 5% for the window is unhealthy (warn: the run goes on)', async () => {
    const env = { PATH: process.env.PATH, FAKE_NVIDIA_SMI_CSV: process.env.FAKE_NVIDIA_SMI_CSV, FAKE_NVIDIA_SMI_TICK: process.env.FAKE_NVIDIA_SMI_TICK };
    process.env.PATH = `${FAKE_GPU_BIN}:${process.env.PATH}`;
    process.env.FAKE_NVIDIA_SMI_CSV = join(__dirname, '../fixtures/nvidia-smi/idle-2x-a100.csv');
    process.env.FAKE_NVIDIA_SMI_TICK = '0.1';
    try {
      const spec: Partial<JobSpecInput> = { health: { rules: [{ rule: 'gpu-idle', belowPct: 5, minutes: 0.03 }] }, sync: { intervalSeconds: 1, atomicDirs: [] } };
      const { bundle, digest } = await scriptBundle(join(tmp.dir, 'bundles', 'idle'), 'for i in $(seq 12); do echo "waiting for data $i"; sleep 0.5; done', spec);
      const { handle, dir } = await startBundle(bundle, digest);
      const result = await runOutcome(handle);
      expect(result.status).toBe('succeeded');
      expect(await healthTrail(handle)).toContain('unhealthy');
      expect(result.health?.findings[0]).toMatchObject({ rule: 'gpu-idle', level: 'unhealthy' });
      expect(result.health?.findings[0]?.summary).toMatch(/^GPU 0, 1 under 5% utilization for [\d.]+ min \(at most [0-4]%/);
      // The layers see nothing wrong in the bundle; diagnose with the workflow's verdict does not call it healthy.
      expect((await diagnoseBundle(dir)).healthy).toBe(true);
      const ending = await runEnding(client, handle.workflowId);
      expect(ending.health).toMatchObject({ state: 'unhealthy', rule: 'gpu-idle' });
      const d = await diagnoseBundle(dir, ending);
      expect(d.healthy).toBe(false);
      expect(formatDiagnosis(d).split('\n').slice(0, 3).join('\n')).toMatch(/: UNHEALTHY \(a health rule, live: gpu-idle\)\n {2}GPU 0, 1 under 5%.*\n {2}live health \(the workflow's last verdict, .*\): unhealthy: gpu-idle: /);
    } finally {
      for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
    }
  }, 120_000);

  it('a healthy training run stays ok throughout with the trainer\'s own rules, and diagnose finds it healthy', async () => {
    const { handle, dir } = await train('healthy', { steps: 300, secondsPerStep: 0.02 });
    const result = await runOutcome(handle);
    expect(result.status).toBe('succeeded');
    expect(result.health?.state).toBe('ok');
    expect(result.health?.rules).toBeGreaterThanOrEqual(3);
    expect(await healthTrail(handle)).toEqual(['ok']);
    expect((await diagnoseBundle(dir)).healthy).toBe(true);
  }, 120_000);
});

describe('health rules, live: onUnhealthy relaunch', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let nativeConnection: NativeConnection;
  let connection: Connection;
  let worker: OrbitWorker;
  let running: Promise<void>;
  const taskQueue = `health-relaunch-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    tmp = await tempDir('orbit-health-relaunch-');
    // Two hosts on this machine: the embedded local one and a spare with its own work root.
    const spare = new ShellHost({ name: 'spare', transport: new LocalTransport(), workRoot: join(tmp.dir, 'spare-work') });
    nativeConnection = await NativeConnection.connect({ address: inject('temporalAddress') });
    worker = await createOrbitWorker({
      connection: nativeConnection,
      namespace: 'default',
      taskQueue,
      hosts: new HostRegistry([localHost(join(tmp.dir, 'home')), spare]),
      home: join(tmp.dir, 'home'),
      fleetHosts: async () => [ROOMY_LOCAL, { ...ROOMY_LOCAL, name: 'spare' }],
      fleetSettings: { reconcileEveryMs: 1_000 },
    });
    running = worker.run();
    connection = await Connection.connect({ address: inject('temporalAddress') });
  });
  afterAll(async () => {
    worker?.shutdown();
    await running;
    await connection?.close();
    await nativeConnection?.close();
    await tmp?.cleanup();
  });

  it('a NaN loss is stopped and relaunched on the other host, once (maxRelaunches 1); then stopped for good, naming the rule', async () => {
    const plugin = new TrainingPlugin();
    const parsed = plugin.parse({
      datasetPath: 'data/regression.csv',
      outputDir: 'checkpoints',
      syncIntervalSeconds: 1,
      learningRate: 1e20,
      steps: 3000,
      secondsPerStep: 0.02,
      health: { rules: [{ rule: 'not-finite', metric: 'loss', onUnhealthy: 'relaunch' }] },
    });
    if (!parsed.ok) throw new Error(parsed.problems.map((p) => p.message).join('; '));
    const bundle = await plugin.buildBundle(join(tmp.dir, 'bundles', 'nan-relaunch'), { request: parsed.value, baseDir: EXAMPLES, jobId: 'nan-relaunch' });
    const digest = await bundle.freeze();
    const input: RunBundleInput = {
      runId: `nan-relaunch-${randomUUID().slice(0, 6)}`,
      bundleDir: bundle.dir,
      digest,
      host: 'local',
      relaunchHosts: ['spare'],
      maxRelaunches: 1,
      logFile: bundle.spec.entrypoint.logFile,
      timeouts: { ...bundle.spec.timeouts, killGraceSeconds: 2 },
      syncIntervalMs: SYNC_MS,
      tuning: { pollIntervalMs: POLL_MS, progressEveryMs: 60_000, heartbeatTimeoutMs: 10_000 },
    };
    const client = new Client({ connection });
    const handle = await client.workflow.start(runBundle, { taskQueue, workflowId: input.runId, args: [input] });
    const result = await runOutcome(handle);
    expect(result.status).toBe('failed');
    expect(result.relaunches.map((r) => [r.from, r.to])).toEqual([['local', 'spare']]);
    expect(result.leases?.map((l) => l.host)).toEqual(['local', 'spare']);
    expect(result.host).toBe('spare');
    expect(result.reasons[0]).toMatch(/^unhealthy: not-finite:loss: loss became inf at step 2 .*; stopped: no relaunch left \(1 of 1 used, 0 host\(s\) left\)$/);
    // The job ran on both hosts and was stopped on each.
    expect(await readFile(join(tmp.dir, 'spare-work', input.runId, 'runtime/runtime.log'), 'utf8')).toMatch(/ stop requested/);
    expect(await readFile(join(tmp.dir, 'home', 'work', input.runId, 'runtime/runtime.log'), 'utf8')).toMatch(/ stop requested/);
  }, 180_000);
});
