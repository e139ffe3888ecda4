import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { verifyManifest } from '../../src/bundle';
import { runBundle, statusQuery, type RunBundleInput, type RunResult } from '../../src/workflows';
import type { RunTuning } from '../../src/common/run';
import { scriptBundle, tempDir } from '../helpers/bundles';
import { startInProcessWorker, type InProcessWorker } from '../helpers/worker';
import { recordHistory as record } from '../helpers/histories';
import { processGone } from '../helpers/processes';

describe('runBundle on the real dev server with the local host', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let worker: InProcessWorker;
  let client: Client;
  const taskQueue = `test-${randomUUID()}`;

  beforeAll(async () => {
    tmp = await tempDir();
    worker = await startInProcessWorker({
      address: inject('temporalAddress'),
      taskQueue,
      orbitHome: tmp.dir,
      secretSource: { ORBIT_TEST_TOKEN: 's3cr3t-value' },
    });
    client = worker.client;
  });

  afterAll(async () => {
    await worker.stop();
    await tmp.cleanup();
  });

  async function start(name: string, body: string, tuning: RunTuning = {}, specOverrides = {}) {
    const bundleDir = join(tmp.dir, 'bundles', name);
    const { bundle, digest } = await scriptBundle(bundleDir, body, specOverrides);
    const input: RunBundleInput = {
      runId: `${name}-${randomUUID().slice(0, 8)}`,
      bundleDir,
      digest,
      host: 'local',
      logFile: bundle.spec.entrypoint.logFile,
      timeouts: bundle.spec.timeouts,
      tuning: { pollIntervalMs: 200, progressEveryMs: 1_000, heartbeatTimeoutMs: 10_000, ...tuning },
    };
    const handle = await client.workflow.start(runBundle, { taskQueue, workflowId: input.runId, args: [input] });
    return { handle, bundleDir, input };
  }

  it('runs a bundle to success and collects verified artifacts', async () => {
    const { handle, bundleDir } = await start('ok', 'for i in 1 2 3; do echo "step $i"; echo $i >> artifacts/steps.txt; sleep 0.5; done', {}, {
      expectedOutputs: [{ path: 'steps.txt', required: true }],
      secretEnv: ['ORBIT_TEST_TOKEN'],
    });
    const result: RunResult = await handle.result();
    expect(result.status).toBe('succeeded');
    expect(result.exitCode).toBe(0);
    expect(result.collect.verified).toBe(true);
    expect(result.phases.map((p) => p.phase)).toEqual(['queued', 'staging', 'launching', 'running', 'collecting', 'succeeded']);
    expect(await readFile(join(bundleDir, 'artifacts/steps.txt'), 'utf8')).toBe('1\n2\n3\n');
    expect((await verifyManifest(bundleDir)).verified).toBe(true);
    const status = await handle.query(statusQuery);
    expect(status.phase).toBe('succeeded');
    expect(status.stage?.filesSent).toBe(9); // 5 of the bundle's own + precheck.py, precheck.json, gpu_audit.py, python/orbit_job.py
    const report = JSON.parse(await readFile(join(bundleDir, 'runtime/collection.json'), 'utf8'));
    expect(report.manifest.verified).toBe(true);
    await record('run-bundle-succeeded', handle);
  });

  it('orbit status shows the live task log from the monitor heartbeat between progress returns', async () => {
    // Heartbeat details reach the server at most every ~80% of the heartbeat timeout (the SDK throttles them).
    const { handle } = await start('live', 'for i in $(seq 1 28); do echo "tick $i"; sleep 0.25; done', { progressEveryMs: 600_000, heartbeatTimeoutMs: 2_000 });
    for (let i = 0; i < 50 && (await handle.query(statusQuery)).phase !== 'running'; i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 3_500));
    const lines: string[] = [];
    process.env.ORBIT_TEMPORAL_PORT = inject('temporalAddress').split(':')[1];
    delete process.env.TEMPORAL_ADDRESS;
    const { main } = await import('../../src/cli/main');
    expect(await main(['status', handle.workflowId], (l) => lines.push(l))).toBe(0);
    const text = lines.join('\n');
    expect(text).toContain(`run ${handle.workflowId}: running, phase running on local`);
    expect(text).toMatch(/process: running pid \d+/);
    expect(text).toMatch(/ {4}tick \d+/);
    expect((await handle.query(statusQuery)).probe).toBeUndefined(); // the workflow itself has not heard yet
    expect((await handle.result()).status).toBe('succeeded');
  });

  it('passes secrets by name: the job sees the value, history and bundle never do', async () => {
    const { handle, bundleDir } = await start('secret', 'printf %s "$ORBIT_TEST_TOKEN" | sha256sum | cut -c1-64 > artifacts/token.sha256; echo "token has ${#ORBIT_TEST_TOKEN} chars"', {}, {
      secretEnv: ['ORBIT_TEST_TOKEN'],
    });
    const result: RunResult = await handle.result();
    expect(result.status).toBe('succeeded');
    expect(await readFile(join(bundleDir, 'artifacts/job.log'), 'utf8')).toContain('token has 12 chars');
    const { createHash } = await import('node:crypto');
    expect((await readFile(join(bundleDir, 'artifacts/token.sha256'), 'utf8')).trim()).toBe(createHash('sha256').update('s3cr3t-value').digest('hex'));
    const history = JSON.stringify(await handle.fetchHistory());
    expect(history).not.toContain('s3cr3t-value');
    const { execSync } = await import('node:child_process');
    expect(execSync(`grep -rl s3cr3t-value ${bundleDir} || true`).toString()).toBe('');
  });

  it('ends a failing entrypoint as failed, with its exit code and logs collected', async () => {
    const { handle, bundleDir } = await start('fail', 'echo "loading"; echo "boom: bad things" >&2; exit 7');
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    const failure = cause as ApplicationFailure;
    expect(failure.type).toBe('RunFailed');
    const details = failure.details?.[0] as RunResult;
    expect(details.exitCode).toBe(7);
    expect(details.reasons).toContain('entrypoint exited with code 7');
    expect(details.collect.verified).toBe(true);
    expect(await readFile(join(bundleDir, 'artifacts/job.log'), 'utf8')).toContain('boom: bad things');
    expect((await handle.query(statusQuery)).phase).toBe('failed');
    const described = await handle.describe();
    expect(described.status.name).toBe('FAILED');
    expect(described.typedSearchAttributes.getAll().find((p) => p.key.name === 'OrbitPhase')?.value).toBe('failed');
    await record('run-bundle-failed', handle);
  });

  it('refuses a bundle changed after it was frozen, without retrying', async () => {
    const bundleDir = join(tmp.dir, 'bundles', 'tampered');
    const { bundle, digest } = await scriptBundle(bundleDir, 'echo hi');
    await writeFile(join(bundleDir, 'inputs/data.txt'), 'changed\n');
    const runId = `tampered-${randomUUID().slice(0, 8)}`;
    const handle = await client.workflow.start(runBundle, {
      taskQueue,
      workflowId: runId,
      args: [{ runId, bundleDir, digest, host: 'local', logFile: bundle.spec.entrypoint.logFile, timeouts: bundle.spec.timeouts }],
    });
    const err = (await handle.result().catch((e: unknown) => e)) as WorkflowFailedError;
    expect(err).toBeInstanceOf(WorkflowFailedError);
    // A refusal ends the run as RunFailed with its result, the refusal first among the reasons.
    const failure = err.cause as ApplicationFailure;
    expect(failure.type).toBe('RunFailed');
    expect((failure.details?.[0] as RunResult).reasons[0]).toMatch(/^stage: .*changed after it was frozen/);
    const history = await handle.fetchHistory();
    // The stage was tried once (the lease request before it is its own activity).
    const started = history.events?.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes?.attempt);
    const types = history.events?.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name);
    expect(types).toEqual(['requestLease', 'stage']);
    expect(started).toEqual([1, 1]);
  });

  it('stops a run at its run timeout and reports it as timed out', async () => {
    const { handle } = await start('slow', 'sleep 60', {}, { timeouts: { runSeconds: 1, killGraceSeconds: 1 } });
    const err = (await handle.result().catch((e: unknown) => e)) as WorkflowFailedError;
    const failure = err.cause as ApplicationFailure;
    expect(failure.type).toBe('RunTimedOut');
    expect((failure.details?.[0] as RunResult).status).toBe('timed-out');
  });

  it('cancelling the workflow stops the process group and still collects', async () => {
    const { handle, bundleDir } = await start('cancel', 'echo started; sleep 120 & echo $! > artifacts/child.pid; wait');
    for (let i = 0; i < 100; i++) {
      if ((await handle.query(statusQuery)).phase === 'running') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 500));
    await handle.cancel();
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((await handle.query(statusQuery)).phase).toBe('cancelled');
    const childPid = Number((await readFile(join(bundleDir, 'artifacts/child.pid'), 'utf8')).trim());
    expect(childPid).toBeGreaterThan(0);
    expect(processGone(childPid)).toBe(true);
    expect(await readFile(join(bundleDir, 'runtime/runtime.log'), 'utf8')).toMatch(/cancel requested/);
    await record('run-bundle-cancelled', handle);
  });
});
