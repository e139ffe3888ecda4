/**
 * Fault injection with real processes: worker processes (bin/orbit worker), OpenSSH hosts, and a
 * dev server of this suite's own, each killed, paused or restarted while runs are under way. Every
 * case asserts the final status and that what the job wrote before the fault is local and verified.
 */
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JobSpecInput } from '../../src/bundle';
import { retryCollectionSignal, runBundle, statusQuery, type RunBundleInput, type RunResult } from '../../src/workflows';
import type { RunTuning } from '../../src/common/run';
import { ensureDevServer, type DevServer } from '../../temporal/dev-server';
import { runOutcome, waitForStatus } from '../helpers/run-outcome';
import { scriptBundle, tempDir } from '../helpers/bundles';
import { recordHistory } from '../helpers/histories';
import { startTestDevServer } from '../helpers/dev-server';
import { WorkerProcesses } from '../helpers/worker-processes';
import { startSshd, writeHostsFile, type SshdServer } from '../helpers/sshd';


/** A job that records each start, then writes one complete unit folder per step, half a second apart. */
function stepsJob(steps: number): string {
  return `echo "started on $(hostname) pid $$" >> artifacts/starts.txt
first=1
if [ -n "\${ORBIT_RESUME_FROM:-}" ]; then first=$(( $(cat "$ORBIT_RESUME_FROM/state") + 1 )); echo "resumed at step $first from $ORBIT_RESUME_FROM" | tee artifacts/resumed.txt; fi
for i in $(seq "$first" ${steps}); do
  mkdir -p artifacts/ckpt/step-$i
  echo $i > artifacts/ckpt/step-$i/state
  touch artifacts/ckpt/step-$i/DONE
  echo "step $i"
  sleep 0.5
done
echo finished > artifacts/final.txt`;
}

const SYNC: Partial<JobSpecInput> = { sync: { intervalSeconds: 1, atomicDirs: [{ parent: 'ckpt', marker: 'DONE' }] } };

describe('evaporation: runs survive dead workers, a restarted server and vanished hosts', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let server: DevServer;
  let serverOptions: Parameters<typeof ensureDevServer>[0];
  let hostA: SshdServer;
  let hostB: SshdServer;
  let client: Client;
  let connection: Connection;
  let hostsFile: string;
  let workerProcs: WorkerProcesses | undefined;
  const taskQueue = `faults-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    tmp = await tempDir('orbit-faults-');
    ({ server, options: serverOptions } = await startTestDevServer({ dataDir: join(tmp.dir, 'temporal') }));
    [hostA, hostB] = await Promise.all([startSshd({ name: 'host-a' }), startSshd({ name: 'host-b' })]);
    hostsFile = join(tmp.dir, 'hosts.yaml');
    await writeHostsFile(hostsFile, [hostA, hostB]);
    connection = await Connection.connect({ address: server.address });
    client = new Client({ connection });
  });

  afterAll(async () => {
    await workerProcs?.killAll();
    await connection?.close();
    await server?.stop();
    await Promise.all([hostA?.stop(), hostB?.stop()]);
    if (!process.env.ORBIT_KEEP_TEST_FILES) await tmp?.cleanup();
  });

  // A failed case must not leave workers or frozen hosts behind for the next one.
  afterEach(async () => {
    await workerProcs?.killAll();
    hostB?.resume();
  });

  /** Starts `bin/orbit worker` as its own process group. */
  function startWorker(extraEnv: Record<string, string> = {}): Promise<ChildProcess> {
    workerProcs ??= new WorkerProcesses(join(tmp.dir, 'logs'), () => ({
      ...process.env,
      ORBIT_HOME: join(tmp.dir, 'home'),
      ORBIT_TEMPORAL_PORT: String(serverOptions!.port),
      ORBIT_TASK_QUEUE: taskQueue,
      ORBIT_HOSTS: hostsFile,
    }));
    return workerProcs.start(extraEnv);
  }

  const killWorker = (proc: ChildProcess) => workerProcs!.kill(proc);

  /** `policy` is the run's host-lost policy; the rest is tuning over these tests' fast defaults. */
  async function start(name: string, host: string, body: string, extra: Pick<RunBundleInput, 'onHostLost' | 'relaunchHosts'> & RunTuning = {}) {
    const { onHostLost, relaunchHosts, ...tuning } = extra;
    const bundleDir = join(tmp.dir, 'bundles', name);
    const { bundle, digest } = await scriptBundle(bundleDir, body, SYNC);
    const runId = `${name}-${randomUUID().slice(0, 6)}`;
    const input: RunBundleInput = {
      runId,
      bundleDir,
      digest,
      host,
      logFile: bundle.spec.entrypoint.logFile,
      timeouts: { ...bundle.spec.timeouts, killGraceSeconds: 2 },
      syncIntervalMs: 1_000,
      ...(onHostLost ? { onHostLost, relaunchHosts } : {}),
      tuning: {
        pollIntervalMs: 300,
        progressEveryMs: 2_000,
        heartbeatTimeoutMs: 3_000,
        probeTimeoutMs: 4_000,
        hostLostAfterMs: 30_000,
        collectRetryMs: { initial: 500, max: 2_000 },
        ...tuning,
      },
    };
    const handle = await client.workflow.start(runBundle, { taskQueue, workflowId: runId, args: [input] });
    return { handle, bundleDir, input };
  }



  /** The run folder of a run on a harness host (the "remote" disk is on this machine). */
  const remote = (host: SshdServer, runId: string, rel: string) => join(host.workRoot, runId, rel);

  async function killJob(host: SshdServer, runId: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const pid = Number((await readFile(remote(host, runId, 'runtime/pid'), 'utf8')).trim());
    process.kill(-pid, signal);
  }

  async function waitForFile(path: string, timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!existsSync(path)) {
      if (Date.now() > end) throw new Error(`${path} did not appear within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function expectSingleStart(bundleDir: string): Promise<void> {
    expect((await readFile(join(bundleDir, 'artifacts/starts.txt'), 'utf8')).trim().split('\n')).toHaveLength(1);
  }

  for (const phase of ['stage', 'launch', 'collect'] as const) {
    it(`a worker killed during ${phase} is replaced and the run finishes: no second launch, nothing sent twice`, async () => {
      const first = await startWorker({ ORBIT_TEST_PAUSE_AFTER: `${phase}=20000` });
      const { handle, bundleDir, input } = await start(`kill-${phase}`, 'host-a', stepsJob(3));
      const phaseName = { stage: 'staging', launch: 'launching', collect: 'collecting' }[phase];
      await waitForStatus(handle, (s) => s.phase === phaseName);
      // Wait until the activity's work is visibly done (it then pauses 20 s before returning), and kill.
      const done = {
        stage: () => remote(hostA, input.runId, 'scripts/orbit/run.sh'),
        launch: () => remote(hostA, input.runId, 'runtime/pid'),
        collect: () => join(bundleDir, 'runtime/collection.json'),
      }[phase];
      await waitForFile(done(), 20_000);
      await killWorker(first);
      const second = await startWorker();
      const result = await runOutcome(handle);
      const status = await handle.query(statusQuery); // closed workflows answer queries through a worker
      await killWorker(second);
      expect(result.status).toBe('succeeded');
      expect(result.collect.verified).toBe(true);
      await expectSingleStart(bundleDir);
      if (phase === 'stage') expect(status.stage?.filesSent).toBe(0);
      if (phase === 'launch') expect(status.launch?.alreadyLaunched).toBe(true);
      if (phase === 'collect') expect(status.collect?.filesFetched).toBe(0);
    });
  }

  it('a worker killed during monitor is replaced; the job runs on untouched', async () => {
    const first = await startWorker();
    const { handle, bundleDir } = await start('kill-monitor', 'host-a', stepsJob(8));
    await waitForStatus(handle, (s) => s.phase === 'running');
    await new Promise((r) => setTimeout(r, 1_000));
    await killWorker(first);
    await new Promise((r) => setTimeout(r, 1_000));
    const second = await startWorker();
    const result = await runOutcome(handle);
    await killWorker(second);
    expect(result.status).toBe('succeeded');
    await expectSingleStart(bundleDir);
    expect(await readFile(join(bundleDir, 'artifacts/final.txt'), 'utf8')).toBe('finished\n');
  });

  it('the dev server killed during monitor and restarted on the same database finishes the run', async () => {
    const worker = await startWorker();
    const { handle, bundleDir, input } = await start('kill-server', 'host-a', stepsJob(12));
    await waitForStatus(handle, (s) => s.phase === 'running');
    server.kill();
    await new Promise((r) => setTimeout(r, 2_000));
    server = await ensureDevServer(serverOptions);
    expect(server.started).toBe(true);
    const result = await runOutcome(client.workflow.getHandle(input.runId));
    await killWorker(worker);
    expect(result.status).toBe('succeeded');
    await expectSingleStart(bundleDir);
  });

  it('a partition longer than the heartbeat timeout: the host is unreachable, then the run continues', async () => {
    const worker = await startWorker();
    const { handle, input, bundleDir } = await start('partition', 'host-b', stepsJob(8));
    await waitForStatus(handle, (s) => s.phase === 'running' && (s.probe?.taskLogTail.length ?? 0) > 0);
    hostB.pause();
    await killJob(hostB, input.runId, 'SIGSTOP');
    const during = await waitForStatus(handle, (s) => s.hostState === 'unreachable', 45_000);
    expect(during.phase).toBe('running');
    await new Promise((r) => setTimeout(r, 4_000)); // longer than the 3 s heartbeat timeout
    hostB.resume();
    await killJob(hostB, input.runId, 'SIGCONT');
    const result = await runOutcome(handle);
    const after = await handle.query(statusQuery);
    await killWorker(worker);
    expect(result.status).toBe('succeeded');
    expect(result.relaunches).toEqual([]);
    await expectSingleStart(bundleDir);
    expect(after.hostState).toBe('reachable');
  });

  it('a host that dies and comes back later: what it holds is collected and verified', async () => {
    const worker = await startWorker();
    const { handle, input, bundleDir } = await start('death-return', 'host-a', stepsJob(30), {
      hostLostAfterMs: 2_000,
      collectDeadlineMs: 300_000,
      collectRetryMs: { initial: 120_000, max: 120_000 }, // only the retryCollection signal can bring it back in time
    });
    await waitForStatus(handle, (s) => s.synced.files > 0 && (s.probe?.taskLogTail.join('\n') ?? '').includes('step 3'));
    await hostA.kill();
    await killJob(hostA, input.runId);
    await waitForStatus(handle, (s) => s.phase === 'recovering' && s.hostState === 'lost', 30_000);
    await new Promise((r) => setTimeout(r, 2_000));
    await hostA.start();
    const signalledAt = Date.now();
    await handle.signal(retryCollectionSignal);
    const result = await runOutcome(handle);
    expect(Date.now() - signalledAt).toBeLessThan(60_000);
    await killWorker(worker);
    expect(result.status).toBe('failed');
    expect(result.reasons).toContain('the process disappeared without writing an exit code');
    expect(result.collect.manifestPresent).toBe(true);
    expect(result.collect.verified).toBe(true);
    expect(existsSync(join(bundleDir, 'artifacts/ckpt/step-3/DONE'))).toBe(true);
    expect(await readFile(join(bundleDir, 'runtime/runtime.log'), 'utf8')).toMatch(/vanished without an exit code/);
  });

  it('a host that never comes back: the run ends lost, keeping and listing what was synced', async () => {
    const worker = await startWorker();
    const host = await startSshd({ name: 'host-doomed' });
    const doomedHosts = join(tmp.dir, 'hosts-doomed.yaml');
    await writeHostsFile(doomedHosts, [hostA, hostB, host]);
    const doomedWorker = await startWorker({ ORBIT_HOSTS: doomedHosts });
    await killWorker(worker);
    const { handle, input, bundleDir } = await start('death-forever', 'host-doomed', stepsJob(30), { hostLostAfterMs: 2_000, collectDeadlineMs: 4_000 });
    await waitForStatus(handle, (s) => s.synced.files > 0 && (s.probe?.taskLogTail.join('\n') ?? '').includes('step 2'));
    await host.kill();
    await killJob(host, input.runId);
    const err = await handle.result().catch((e: unknown) => e);
    const final = await handle.query(statusQuery);
    await recordHistory('run-bundle-lost', handle);
    await killWorker(doomedWorker);
    await host.stop();
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const failure = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(failure.type).toBe('RunLost');
    const result = failure.details?.[0] as RunResult;
    expect(result.status).toBe('lost');
    expect(existsSync(join(bundleDir, 'artifacts/ckpt/step-1/DONE'))).toBe(true);
    const report = JSON.parse(await readFile(join(bundleDir, 'runtime/collection.json'), 'utf8'));
    expect(report.partial).toBe(true);
    expect(report.present).toContain('artifacts/ckpt/step-1/state');
    expect(final.phase).toBe('lost');
  });

  it('relaunch on a second host resumes from the newest synced unit folder', async () => {
    const worker = await startWorker();
    const { handle, input, bundleDir } = await start('relaunch', 'host-a', stepsJob(10), {
      hostLostAfterMs: 4_000,
      onHostLost: 'relaunch',
      relaunchHosts: ['host-b'],
    });
    const before = await waitForStatus(handle, (s) => s.synced.files > 0 && (s.probe?.taskLogTail.join('\n') ?? '').includes('step 4'));
    expect(before.host).toBe('host-a');
    await hostA.kill();
    await killJob(hostA, input.runId);
    const result = await runOutcome(handle);
    await recordHistory('run-bundle-relaunched', handle);
    await hostA.start();
    await killWorker(worker);
    expect(result.status, result.reasons.join('; ')).toBe('succeeded');
    expect(result.host).toBe('host-b');
    expect(result.relaunches).toHaveLength(1);
    const resumedFrom = result.relaunches[0]!.resumeFrom!;
    expect(resumedFrom).toMatch(/^artifacts\/ckpt\/step-\d+$/);
    const step = Number(resumedFrom.split('-').at(-1));
    expect(step).toBeGreaterThanOrEqual(2);
    expect(await readFile(join(bundleDir, 'artifacts/resumed.txt'), 'utf8')).toContain(`resumed at step ${step + 1}`);
    expect(existsSync(join(bundleDir, 'artifacts/ckpt/step-10/DONE'))).toBe(true);
    expect(await readFile(join(bundleDir, 'artifacts/final.txt'), 'utf8')).toBe('finished\n');
  });
});
