/**
 * runBundle's state machine, branch by branch, on the real dev server with scripted activities
 * (test/helpers/scripted-activities.ts): host-lost policies, recovery deadlines, collection backoff,
 * retry classes, verdicts, and how the CLI reads each ending. Fast: no host, millisecond tuning.
 */
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { awaitRun, describeRun } from '../../src/cli/outcome';
import type { RunBundleInput, RunTuning } from '../../src/common/run';
import { firingInput, type SweepRecord } from '../../src/sweeps/store';
import { fleetWorkflowId } from '../../src/common/fleet';
import { fleetQuery, retryCollectionSignal, runBundle, runSweep, statusQuery, type RunResult } from '../../src/workflows';
import { finished, hostLost, probe, scriptedActivities, startScriptedWorker, type Script } from '../helpers/scripted-activities';

const FAST: RunTuning = { pollIntervalMs: 50, progressEveryMs: 1_000, heartbeatTimeoutMs: 5_000, probeTimeoutMs: 1_000, collectDeadlineMs: 60_000, collectRetryMs: { initial: 200, max: 800 } };

describe('runBundle branches with scripted activities', () => {
  const taskQueue = `branches-${randomUUID()}`;
  const scripts = new Map<string, Script>();
  let worker: Awaited<ReturnType<typeof startScriptedWorker>>;
  let connection: Connection;
  let client: Client;

  beforeAll(async () => {
    const acts = scriptedActivities(scripts);
    const clone = {
      claimFiring: async (i: { firingId: string }) => ({ firingId: i.firingId }),
      cloneBundle: async (i: { destDir: string; digest: string }) => ({ bundleDir: i.destDir, digest: i.digest, files: 1, bytes: 1 }),
    };
    worker = await startScriptedWorker(inject('temporalAddress'), taskQueue, { ...acts, ...clone });
    connection = await Connection.connect({ address: inject('temporalAddress') });
    client = new Client({ connection });
  });

  afterAll(async () => {
    await worker.stop();
    await connection.close();
  });

  function start(name: string, script: Omit<Script, 'calls'>, extra: Partial<RunBundleInput> = {}, tuning: RunTuning = {}) {
    const runId = `${name}-${randomUUID().slice(0, 8)}`;
    const s: Script = { ...script, calls: [] };
    scripts.set(runId, s);
    const input: RunBundleInput = {
      runId,
      bundleDir: `/nowhere/${runId}`,
      digest: 'd'.repeat(64),
      host: 'host-a',
      logFile: 'task.log',
      timeouts: { stageSeconds: 60, runSeconds: 600, collectSeconds: 60, killGraceSeconds: 1 },
      tuning: { ...FAST, ...tuning },
      ...extra,
    };
    return { handle: client.workflow.start(runBundle, { taskQueue, workflowId: runId, args: [input] }), script: s, input };
  }

  const names = (s: Script) => s.calls.map((c) => c.name);
  const phases = async (h: WorkflowHandle) => (await h.query(statusQuery)).phases.map((p) => p.phase);

  async function scheduled(h: WorkflowHandle) {
    const history = await h.fetchHistory();
    return (history.events ?? [])
      .map((e) => e.activityTaskScheduledEventAttributes)
      .filter((a) => !!a)
      .map((a) => ({ type: a!.activityType!.name!, maximumAttempts: a!.retryPolicy?.maximumAttempts ?? 0 }));
  }

  it('succeeds, with one retry class per activity: monitor unlimited, probe once, collect twice, control ten times', async () => {
    const { handle, script } = start('ok', { monitor: [finished] });
    const h = await handle;
    const result: RunResult = await h.result();
    expect(result.status).toBe('succeeded');
    expect(result.reasons).toEqual([]);
    expect(names(script)).toEqual(['stage', 'launch', 'monitor', 'collect']);
    expect(await phases(h)).toEqual(['queued', 'staging', 'launching', 'running', 'collecting', 'succeeded']);
    const attempts = Object.fromEntries((await scheduled(h)).map((a) => [a.type, a.maximumAttempts]));
    expect(attempts).toEqual({ requestLease: 10, stage: 10, launch: 10, monitor: 0, collect: 2 });
  });

  it('a monitor whose attempts fail (a crash-looping worker) is retried without a cap, and the run goes on', async () => {
    const crash = new Error('worker died');
    const { handle, script } = start('crashloop', { monitor: [crash, crash, finished] });
    const result: RunResult = await (await handle).result();
    expect(result.status).toBe('succeeded');
    expect(names(script).filter((n) => n === 'monitor')).toHaveLength(3);
  });

  it('wait: a lost host is probed with backoff until it answers; the job still runs, so monitoring goes on', async () => {
    const down = new Error('no answer');
    const { handle, script } = start('wait', { monitor: [hostLost, finished], probe: [down, down, { state: 'running' }] });
    const h = await handle;
    const result: RunResult = await h.result();
    expect(result.status).toBe('succeeded');
    expect(names(script)).toEqual(['stage', 'launch', 'monitor', 'probeOnce', 'probeOnce', 'probeOnce', 'monitor', 'collect']);
    expect(await phases(h)).toEqual(['queued', 'staging', 'launching', 'running', 'recovering', 'running', 'collecting', 'succeeded']);
    expect((await h.query(statusQuery)).hostState).toBe('reachable');
  });

  it('wait: a lost host that answers after the job ended goes straight to collection with its exit code', async () => {
    const { handle, script } = start('wait-ended', { monitor: [hostLost], probe: [{ state: 'exited', exitCode: 3 }] });
    const run = await awaitRun(await handle);
    expect(run.status).toBe('failed');
    expect(run.result?.exitCode).toBe(3);
    expect(run.result?.reasons).toContain('entrypoint exited with code 3');
    expect(names(script)).toEqual(['stage', 'launch', 'monitor', 'probeOnce', 'collect']);
  });

  it('fail: the job on a host that comes back is stopped, collected, and the run fails saying why', async () => {
    const { handle, script } = start('fail', { monitor: [hostLost], probe: [{ state: 'running' }] }, { onHostLost: 'fail' });
    const run = await awaitRun(await handle);
    expect(run.status).toBe('failed');
    expect(names(script)).toEqual(['stage', 'launch', 'monitor', 'probeOnce', 'cancelRun', 'collect']);
    expect(run.result?.reasons[0]).toMatch(/host host-a was lost for more than .*s; the job was stopped when it answered again/);
  });

  it('relaunch: the run moves to the next host with the newest synced unit folder, once', async () => {
    const { handle, script } = start('relaunch', { monitor: [hostLost, finished] }, { onHostLost: 'relaunch', relaunchHosts: ['host-a', 'host-b'] });
    const h = await handle;
    const result: RunResult = await h.result();
    expect(result.status).toBe('succeeded');
    expect(result.host).toBe('host-b');
    expect(result.relaunches).toEqual([expect.objectContaining({ from: 'host-a', to: 'host-b', resumeFrom: 'artifacts/ckpt/step-4' })]);
    expect(names(script)).toEqual(['stage', 'launch', 'monitor', 'stageResume', 'stage', 'launch', 'monitor', 'collect']);
    const relaunched = script.calls.filter((c) => c.name === 'launch')[1]!.input;
    expect(relaunched.host).toBe('host-b');
    expect(relaunched.env).toEqual({
      ORBIT_RESUME_FROM: expect.stringMatching(/resume\/artifacts\/ckpt\/step-4$/),
      ORBIT_HOST: 'host-b',
      ORBIT_LEASE: String(result.leases![1]!.token),
      ORBIT_GPUS: '',
      CUDA_VISIBLE_DEVICES: '',
    });
    // The lost host's lease went back before the new one was asked for, on the other host.
    expect(result.leases!.map((l) => l.host)).toEqual(['host-a', 'host-b']);
    expect(result.leases!.every((l) => l.releasedAt)).toBe(true);
    expect(Date.parse(result.leases![0]!.releasedAt!)).toBeLessThanOrEqual(Date.parse(result.leases![1]!.grantedAt));
    const fleetNow = await client.workflow.getHandle(fleetWorkflowId(taskQueue)).query(fleetQuery);
    expect(fleetNow.leases.filter((l) => l.holder.workflowId === h.workflowId)).toEqual([]);
    expect(await phases(h)).toEqual(['queued', 'staging', 'launching', 'running', 'queued', 'staging', 'launching', 'running', 'collecting', 'succeeded']);
  });

  it('relaunch with no relaunch left waits for the host like wait', async () => {
    const { handle, script } = start('relaunch-spent', { monitor: [hostLost, hostLost, finished], probe: [{ state: 'running' }] }, {
      onHostLost: 'relaunch',
      relaunchHosts: ['host-b'],
      maxRelaunches: 1,
    });
    const result: RunResult = await (await handle).result();
    expect(result.status).toBe('succeeded');
    expect(names(script)).toEqual(['stage', 'launch', 'monitor', 'stageResume', 'stage', 'launch', 'monitor', 'probeOnce', 'monitor', 'collect']);
  });

  it('a host that never answers again before the deadline: the run ends lost, and the CLI says lost with its result', async () => {
    const { handle, script } = start('lost', { monitor: [hostLost], probe: [new Error('no answer')] }, {}, { collectDeadlineMs: 1_500 });
    const h = await handle;
    const run = await awaitRun(h);
    expect(run.status).toBe('lost');
    expect(run.result?.status).toBe('lost');
    expect(run.result?.reasons[0]).toMatch(/host host-a was lost and did not come back within 1.5s/);
    expect(names(script).at(-1)).toBe('reportLocal');
    expect(names(script)).not.toContain('collect');
    expect(describeRun(run).split('\n')[0]).toMatch(new RegExp(`^run ${h.workflowId}: lost \\(`));
    expect(await phases(h)).toEqual(['queued', 'staging', 'launching', 'running', 'recovering', 'lost']);
  });

  it('collection is retried with a doubling backoff capped at its maximum, then succeeds', async () => {
    const down = new Error('connection refused');
    const { handle, script } = start('backoff', { monitor: [finished], collect: [down, down, down, down, down, down, down, down, {}] });
    const h = await handle;
    const result: RunResult = await h.result();
    expect(result.status).toBe('succeeded');
    const status = await h.query(statusQuery);
    expect(status.collectAttempts).toBe(5);
    expect(status.hostState).toBe('reachable');
    expect(names(script).filter((n) => n === 'collect')).toHaveLength(9); // two activity attempts per try, then one
    const history = await h.fetchHistory();
    const timers = (history.events ?? []).map((e) => e.timerStartedEventAttributes?.startToFireTimeout).filter((t) => !!t).map((t) => Number(t!.seconds ?? 0) * 1000 + Math.round((t!.nanos ?? 0) / 1e6));
    expect(timers).toEqual([200, 400, 800, 800]);
  });

  it('the retryCollection signal ends a long backoff at once', async () => {
    const { handle } = start('signal', { monitor: [finished], collect: [new Error('down'), new Error('down'), {}] }, {}, { collectRetryMs: { initial: 600_000, max: 600_000 } });
    const h = await handle;
    for (let i = 0; i < 100 && (await h.query(statusQuery)).hostState !== 'unreachable'; i++) await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await h.signal(retryCollectionSignal);
    const result: RunResult = await h.result();
    expect(result.status).toBe('succeeded');
    expect(Date.now() - t0).toBeLessThan(30_000);
  });

  it('a run stopped at its run timeout ends timed-out, and the CLI says so', async () => {
    const { handle } = start('timeout', { monitor: [{ finished: true, timedOut: true, probe: probe({ state: 'exited', exitCode: 143 }) }] });
    const run = await awaitRun(await handle);
    expect(run.status).toBe('timed-out');
    expect(run.result?.reasons).toEqual(['stopped after its run timeout of 600s', 'entrypoint exited with code 143']);
  });

  async function jobState(h: WorkflowHandle): Promise<string | undefined> {
    const d = await h.describe();
    return d.typedSearchAttributes.getAll().find((p) => p.key.name === 'OrbitJobState')?.value as string | undefined;
  }

  it('a step that fails for good after the launch stops the job first, and the result and OrbitJobState say so', async () => {
    const broken = ApplicationFailure.nonRetryable('bundle /b is not on this worker', 'ValidationError');
    const { handle, script } = start('fail-stops', { monitor: [broken], cancel: ['killed'] });
    const h = await handle;
    const run = await awaitRun(h);
    expect(run.status).toBe('failed');
    expect(names(script)).toEqual(['stage', 'launch', 'monitor', 'cancelRun']);
    expect(run.result?.reasons[0]).toBe('monitor: bundle /b is not on this worker');
    expect(run.result?.job).toEqual({ state: 'stopped', detail: 'the job on host-a was stopped (killed) as the run failed' });
    expect(await jobState(h)).toBe('stopped');
    expect(await phases(h)).toEqual(['queued', 'staging', 'launching', 'running', 'failed']);
  });

  it('a job that cannot be stopped as the run fails is recorded as orphaned', async () => {
    const broken = ApplicationFailure.nonRetryable('no such host', 'UnknownHostError');
    const unreachable = ApplicationFailure.nonRetryable('host gone', 'UnknownHostError');
    const { handle } = start('orphaned', { monitor: [broken], cancel: [unreachable] });
    const h = await handle;
    const run = await awaitRun(h);
    expect(run.status).toBe('failed');
    expect(run.result?.job?.state).toBe('orphaned');
    expect(run.result?.reasons.at(-1)).toMatch(/could not be stopped \(host gone\); it may still be running there/);
    expect(await jobState(h)).toBe('orphaned');
  });

  it('a run that fails before its launch has nothing to stop', async () => {
    const { handle, script } = start('no-launch', { monitor: [finished], stage: [ApplicationFailure.nonRetryable('bundle changed after freezing', 'BundleTamperedError')] });
    const h = await handle;
    const run = await awaitRun(h);
    expect(run.status).toBe('failed');
    expect(run.result?.reasons).toEqual(['stage: bundle changed after freezing']);
    expect(run.result?.job).toBeUndefined();
    expect(names(script)).toEqual(['stage']);
  });

  it('a host that never came back leaves its job recorded as orphaned', async () => {
    const { handle } = start('lost-orphan', { monitor: [hostLost], probe: [new Error('no answer')] }, {}, { collectDeadlineMs: 800 });
    const h = await handle;
    const run = await awaitRun(h);
    expect(run.status).toBe('lost');
    expect(run.result?.job?.state).toBe('orphaned');
    expect(await jobState(h)).toBe('orphaned');
  });

  it('a collection that ends for a local reason fails the run at once, saying why, and never counts as host loss', async () => {
    const ended = { verified: false, ended: { class: 'local' as const, reason: 'the worker could not write the collected files (ENOSPC)' } };
    const { handle, script } = start('local-ended', { monitor: [finished], collect: [ended] });
    const h = await handle;
    const run = await awaitRun(h);
    expect(run.status).toBe('failed');
    expect(names(script).filter((n) => n === 'collect')).toHaveLength(1);
    expect(run.result?.reasons).toEqual([
      "collection stopped (the worker's side): the worker could not write the collected files (ENOSPC); what was collected before is kept",
    ]);
    const status = await h.query(statusQuery);
    expect(status.hostState).toBe('reachable');
    expect(status.phases.map((p) => p.phase)).not.toContain('recovering');
  });

  it('a sweep cell runs with the sync interval of its job.json', async () => {
    const sweep = `sw-${randomUUID().slice(0, 6)}`;
    const record: SweepRecord = {
      schemaVersion: 'orbit.sweep.v1',
      name: sweep,
      createdAt: new Date().toISOString(),
      source: 'sweep.yaml',
      host: 'host-a',
      maxConcurrent: 1,
      pollIntervalMs: 50,
      taskType: 'demo',
      axes: [{ name: 'x', values: ['one'] }],
      schedule: { cron: ['0 3 * * *'] } as SweepRecord['schedule'],
      cells: [{ name: 'one', axes: { x: 'one' }, jobId: 'one', taskType: 'demo', jobKind: 'demo', bundle: 'cells/one', digest: 'e'.repeat(64), logFile: 'task.log', timeouts: { stageSeconds: 60, runSeconds: 60, collectSeconds: 60, killGraceSeconds: 1 }, syncIntervalSeconds: 7 }],
    };
    const input = firingInput(`/nowhere/${sweep}`, record);
    const firingId = '20261201-030000';
    const cellRun = `${sweep}-${firingId}-one`;
    const s: Script = { monitor: [finished], calls: [] };
    scripts.set(cellRun, s);
    const h = await client.workflow.start(runSweep, { taskQueue, workflowId: `${sweep}-firing`, args: [{ ...input, firingId }] });
    const result = await h.result();
    expect(result.cells.map((c) => c.state)).toEqual(['succeeded']);
    const monitor = s.calls.find((c) => c.name === 'monitor')!.input;
    expect(monitor.syncIntervalMs).toBe(7_000);
    expect(monitor.pollIntervalMs).toBe(50);
  });
});
