/**
 * Fault injection on the fleet (src/workflows/fleet.ts) with real processes: `bin/orbit worker`
 * processes, two OpenSSH "GPU hosts" of 2 GPUs each, and a dev server of this file's own. Workers and
 * the server are killed hard while leases are granted and released, and a holder is terminated from
 * the CLI. Every case checks, from the jobs' own records after collection, that no two jobs ran on
 * the same GPU of a host at the same time, and that the fleet ends with nothing held or queued.
 */
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { execFile, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fleetWorkflowId } from '../../src/common/fleet';
import { type FleetView } from '../../src/common/fleet-view';
import { fleetQuery, runBundle, statusQuery, type RunBundleInput, type RunResult, type RunStatus } from '../../src/workflows';
import { findTemporalBinary } from '../../temporal/binary';
import { ensureDevServer, type DevServer } from '../../temporal/dev-server';
import { runOutcome } from '../helpers/run-outcome';
import { scriptBundle, tempDir } from '../helpers/bundles';
import { startTestDevServer } from '../helpers/dev-server';
import { WorkerProcesses } from '../helpers/worker-processes';
import { startSshd, writeHostsFile, type SshdServer } from '../helpers/sshd';
import { waitFor, within } from '../helpers/wait';

const execFileAsync = promisify(execFile);

const ONE_GPU = { gpus: 1, cpus: 1, memoryGb: 1 };
const GPU_HOST = { gpus: 2, cpus: 8, memoryGb: 16 };

/** A job that records, in its own artifacts, where it ran (host, GPUs as its env says) and when it started and ended. */
function gpuJob(hold: string): string {
  return `echo "$ORBIT_HOST $CUDA_VISIBLE_DEVICES $ORBIT_LEASE $(date +%s.%N) start" >> artifacts/gpu.txt
${hold}
echo "$ORBIT_HOST $CUDA_VISIBLE_DEVICES $ORBIT_LEASE $(date +%s.%N) end" >> artifacts/gpu.txt`;
}

/** Holds its GPU until `file` exists (at most two minutes). */
const holdUntil = (file: string) => `for i in $(seq 1200); do [ -e ${file} ] && break; sleep 0.1; done`;

interface GpuRecord {
  runId: string;
  host: string;
  gpus: number[];
  token: number;
  start: number;
  end: number;
}

describe('the fleet under faults: no lease lost, none given twice, no GPU shared', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let server: DevServer;
  let serverOptions: Parameters<typeof ensureDevServer>[0];
  let hostA: SshdServer;
  let hostB: SshdServer;
  let hosts: Record<string, SshdServer>;
  let client: Client;
  let connection: Connection;
  let hostsFile: string;
  let workerProcs: WorkerProcesses | undefined;

  beforeAll(async () => {
    tmp = await tempDir('orbit-fleet-faults-');
    ({ server, options: serverOptions } = await startTestDevServer({ dataDir: join(tmp.dir, 'temporal') }));
    [hostA, hostB] = await Promise.all([startSshd({ name: 'gpu-a' }), startSshd({ name: 'gpu-b' })]);
    hosts = { [hostA.name]: hostA, [hostB.name]: hostB };
    hostsFile = join(tmp.dir, 'hosts.yaml');
    await writeHostsFile(hostsFile, [], [hostA.hostsEntry({ resources: GPU_HOST }), hostB.hostsEntry({ resources: GPU_HOST })]);
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

  afterEach(async () => {
    await workerProcs?.killAll();
  });

  /** Starts `bin/orbit worker` as its own process group on `taskQueue`, reconciling the fleet every second. */
  function startWorker(taskQueue: string, extraEnv: Record<string, string> = {}): Promise<ChildProcess> {
    workerProcs ??= new WorkerProcesses(join(tmp.dir, 'logs'), () => ({
      ...process.env,
      ORBIT_HOME: join(tmp.dir, 'home'),
      TEMPORAL_ADDRESS: server.address,
      ORBIT_TEMPORAL_PORT: String(serverOptions!.port),
      ORBIT_HOSTS: hostsFile,
      ORBIT_FLEET_RECONCILE_SECONDS: '1',
    }));
    return workerProcs.start({ ORBIT_TASK_QUEUE: taskQueue, ...extraEnv }, `worker-${taskQueue}`);
  }

  const killWorker = (proc: ChildProcess) => workerProcs!.kill(proc);

  /** Starts runBundle on `host: 'auto'` asking for one GPU. */
  async function start(taskQueue: string, name: string, body: string): Promise<{ handle: WorkflowHandle; bundleDir: string; input: RunBundleInput }> {
    const bundleDir = join(tmp.dir, 'bundles', taskQueue, name);
    const { bundle, digest } = await scriptBundle(bundleDir, body, { resources: ONE_GPU });
    const runId = `${name}-${randomUUID().slice(0, 6)}`;
    const input: RunBundleInput = {
      runId,
      bundleDir,
      digest,
      host: 'auto',
      resources: ONE_GPU,
      logFile: bundle.spec.entrypoint.logFile,
      timeouts: { ...bundle.spec.timeouts, killGraceSeconds: 2 },
      syncIntervalMs: 0,
      tuning: {
        pollIntervalMs: 300,
        progressEveryMs: 2_000,
        heartbeatTimeoutMs: 3_000,
        probeTimeoutMs: 4_000,
        hostLostAfterMs: 60_000,
        collectRetryMs: { initial: 500, max: 2_000 },
      },
    };
    const handle = await client.workflow.start(runBundle, { taskQueue, workflowId: runId, args: [input] });
    return { handle, bundleDir, input };
  }


  const fleetOf = (taskQueue: string) => client.workflow.getHandle(fleetWorkflowId(taskQueue));
  const fleetNow = (taskQueue: string): Promise<FleetView | undefined> =>
    fleetOf(taskQueue)
      .query(fleetQuery)
      .catch(() => undefined);

  async function waitForFleet(taskQueue: string, ok: (v: FleetView) => boolean, timeoutMs: number, what: string): Promise<FleetView> {
    const v = await waitFor(() => fleetNow(taskQueue), (x) => !!x && ok(x), timeoutMs, 100);
    if (!v || !ok(v)) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; fleet: ${JSON.stringify(v)}`);
    return v;
  }

  async function waitForStatus(handle: WorkflowHandle, ok: (s: RunStatus) => boolean, timeoutMs: number): Promise<RunStatus> {
    const s = await waitFor(
      () => handle.query(statusQuery).catch(() => undefined),
      (x) => !!x && ok(x),
      timeoutMs,
      200,
    );
    if (!s || !ok(s)) throw new Error(`timed out waiting for ${handle.workflowId}; last status ${JSON.stringify(s)}`);
    return s;
  }

  /** The job's own record, collected into its bundle: exactly one start and one end, on the GPUs of its lease. */
  async function recordOf(bundleDir: string, result: RunResult): Promise<GpuRecord> {
    const lines = (await readFile(join(bundleDir, 'artifacts/gpu.txt'), 'utf8')).trim().split('\n');
    expect(lines, `${result.runId} started once and ended once`).toHaveLength(2);
    const [s, e] = lines.map((l) => l.split(' '));
    expect(s![4]).toBe('start');
    expect(e![4]).toBe('end');
    const rec: GpuRecord = {
      runId: result.runId,
      host: s![0]!,
      gpus: s![1]!.split(',').map(Number),
      token: Number(s![2]),
      start: Number(s![3]),
      end: Number(e![3]),
    };
    // What the job saw in its environment is the lease the run holds in its result.
    expect(result.leases, `${result.runId} held one lease`).toHaveLength(1);
    const lease = result.leases![0]!;
    expect({ host: rec.host, gpus: rec.gpus, token: rec.token }).toEqual({ host: lease.host, gpus: lease.gpus, token: lease.token });
    expect(result.host).toBe(lease.host);
    expect(lease.releasedAt).toBeDefined();
    return rec;
  }

  /** No two jobs on the same GPU of the same host ran at the same time (by their own clocks: one machine). */
  function expectNoGpuOverlap(records: GpuRecord[]): void {
    const byGpu = new Map<string, GpuRecord[]>();
    for (const r of records) for (const g of r.gpus) byGpu.set(`${r.host}/${g}`, [...(byGpu.get(`${r.host}/${g}`) ?? []), r]);
    for (const [gpu, list] of byGpu) {
      const sorted = [...list].sort((a, b) => a.start - b.start);
      for (let i = 1; i < sorted.length; i++) {
        const prev = sorted[i - 1]!;
        const cur = sorted[i]!;
        expect(cur.start, `${cur.runId} started on ${gpu} at ${cur.start} before ${prev.runId} ended there at ${prev.end}`).toBeGreaterThanOrEqual(prev.end);
      }
    }
    // The jobs ran only on GPUs the fleet has.
    for (const gpu of byGpu.keys()) expect(['gpu-a/0', 'gpu-a/1', 'gpu-b/0', 'gpu-b/1']).toContain(gpu);
  }

  /** The fleet at rest: nothing held, nothing queued; every grant is a lease some run holds in its result, none twice. */
  async function expectFleetSettled(taskQueue: string, results: RunResult[], reclaimed = 0): Promise<FleetView> {
    const view = await waitForFleet(taskQueue, (v) => v.leases.length === 0 && v.queue.length === 0, 15_000, 'the fleet to settle');
    const tokens = results.flatMap((r) => (r.leases ?? []).map((l) => l.token));
    expect(new Set(tokens).size, 'no token held by two runs').toBe(tokens.length);
    expect(view.stats.granted).toBe(tokens.length + reclaimed);
    expect(view.stats.released).toBe(tokens.length);
    expect(view.stats.reclaimed).toBe(reclaimed);
    expect(view.stats.refused).toBe(0);
    for (const h of view.hosts.filter((x) => x.name !== 'local')) {
      expect(h.condition).toBe('ok');
      expect(h.gpus.busy).toEqual([]);
    }
    return view;
  }

  it('a worker SIGKILLed while leases are released and granted: every job runs once, on a GPU of its own', async () => {
    const taskQueue = `fleet-kill-worker-${randomUUID().slice(0, 8)}`;
    const first = await startWorker(taskQueue);
    const runs = [];
    for (let i = 0; i < 6; i++) runs.push(await start(taskQueue, `w${i}`, gpuJob('sleep 3')));
    // 4 GPUs: 4 run, 2 wait.
    await waitForFleet(taskQueue, (v) => v.leases.length === 4 && v.queue.length === 2, 60_000, '4 leases and 2 queued');
    // The first job is done and its lease is back with the fleet: the queued ones are being granted,
    // the other three finishing jobs being released. Kill the worker right then.
    const atKill = await waitForFleet(taskQueue, (v) => v.stats.released >= 1, 60_000, 'the first release');
    await killWorker(first);
    console.log(`fleet-faults: worker killed with ${atKill.leases.length} leases, ${atKill.queue.length} queued, stats ${JSON.stringify(atKill.stats)}`);
    await new Promise((r) => setTimeout(r, 500));
    await startWorker(taskQueue);
    const results = await within(150_000, 'the 6 runs', Promise.all(runs.map((r) => runOutcome(r.handle))));
    for (const r of results) expect(r.status, `${r.runId}: ${r.reasons.join('; ')}`).toBe('succeeded');
    const records = await Promise.all(runs.map((r, i) => recordOf(r.bundleDir, results[i]!)));
    expectNoGpuOverlap(records);
    const view = await expectFleetSettled(taskQueue, results);
    expect(view.stats.granted).toBe(6);
  });

  it('a worker SIGKILLed during the reconciliation: the queued jobs are granted within seconds, not after the check times out', async () => {
    const taskQueue = `fleet-kill-check-${randomUUID().slice(0, 8)}`;
    const first = await startWorker(taskQueue);
    const runs = [];
    for (let i = 0; i < 6; i++) runs.push(await start(taskQueue, `c${i}`, gpuJob('sleep 3')));
    await waitForFleet(taskQueue, (v) => v.leases.length === 4 && v.queue.length === 2, 60_000, '4 leases and 2 queued');
    // The fleet grants nothing while its fleetCheck is out: kill the worker while one has started on it
    // (PENDING_ACTIVITY_STATE_STARTED = 2). It ran every second here, so this takes a few polls.
    const fleetHandle = fleetOf(taskQueue);
    const checking = await waitFor(
      async () => ((await fleetHandle.describe()).raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'fleetCheck' && a.state === 2),
      (started) => started,
      30_000,
      20,
    );
    expect(checking, 'a fleetCheck seen started').toBe(true);
    await killWorker(first);
    const killedAt = Date.now();
    await startWorker(taskQueue);
    // The check lost with the worker is retried once its 10 s heartbeat timeout passes (it was only the
    // 2 min start-to-close timeout before): the two queued runs get the GPUs the first four free.
    await waitForFleet(taskQueue, (v) => v.stats.granted === 6, 60_000, 'the two queued runs granted');
    expect(Date.now() - killedAt).toBeLessThan(60_000);
    const results = await within(90_000, 'the 6 runs', Promise.all(runs.map((r) => runOutcome(r.handle))));
    for (const r of results) expect(r.status, `${r.runId}: ${r.reasons.join('; ')}`).toBe('succeeded');
    expectNoGpuOverlap(await Promise.all(runs.map((r, i) => recordOf(r.bundleDir, results[i]!))));
    await expectFleetSettled(taskQueue, results);
  });

  it('the dev server SIGKILLed with 4 jobs running and 8 queued, then restarted: all 12 run, nothing leaks', async () => {
    const taskQueue = `fleet-kill-server-${randomUUID().slice(0, 8)}`;
    await startWorker(taskQueue);
    const runs = [];
    for (let i = 0; i < 12; i++) runs.push(await start(taskQueue, `s${i}`, gpuJob('sleep 3')));
    await waitForFleet(taskQueue, (v) => v.leases.length === 4 && v.queue.length === 8, 60_000, '4 leases and 8 queued');
    await Promise.all(
      runs.map((r) => r.handle.query(statusQuery).then((s) => (s.phase === 'queued' ? undefined : waitForStatus(r.handle, (x) => x.phase === 'running', 60_000)))),
    );
    server.kill();
    await new Promise((r) => setTimeout(r, 2_000));
    server = await ensureDevServer(serverOptions);
    expect(server.started).toBe(true);
    // The worker is kept: it reconnects to the restarted server on its own.
    const results = await within(200_000, 'the 12 runs', Promise.all(runs.map((r) => runOutcome(client.workflow.getHandle(r.input.runId)))));
    for (const r of results) expect(r.status, `${r.runId}: ${r.reasons.join('; ')}`).toBe('succeeded');
    const records = await Promise.all(runs.map((r, i) => recordOf(r.bundleDir, results[i]!)));
    expectNoGpuOverlap(records);
    const view = await expectFleetSettled(taskQueue, results);
    expect(view.stats.granted).toBe(12);
  });

  it('a holder terminated from the CLI: its lease is reclaimed within 15 s and the queued job runs on its GPU', async () => {
    const taskQueue = `fleet-terminate-${randomUUID().slice(0, 8)}`;
    const releaseFile = join(tmp.dir, `${taskQueue}.release`);
    await startWorker(taskQueue);
    const holders = [];
    for (let i = 0; i < 4; i++) holders.push(await start(taskQueue, `h${i}`, gpuJob(holdUntil(releaseFile))));
    await waitForFleet(taskQueue, (v) => v.leases.length === 4, 60_000, '4 leases');
    const waiting = await start(taskQueue, 'queued', gpuJob('sleep 2'));
    const before = await waitForFleet(taskQueue, (v) => v.queue.some((q) => q.workflowId === waiting.input.runId), 30_000, 'the fifth run queued');
    expect(before.leases).toHaveLength(4);
    await Promise.all(holders.map((h) => waitForStatus(h.handle, (s) => s.phase === 'running', 60_000)));

    const victim = holders[1]!;
    const victimLease = before.leases.find((l) => l.holder.workflowId === victim.input.runId)!;
    expect(victimLease).toBeDefined();
    // Phase `running` means the wrapper started; its job writes its start line a moment later (after the precheck).
    const victimRecord = join(hosts[victimLease.host]!.workRoot, victim.input.runId, 'artifacts/gpu.txt');
    for (const end = Date.now() + 30_000; !existsSync(victimRecord) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 100));
    const terminating = Date.now();
    await execFileAsync(findTemporalBinary(), ['workflow', 'terminate', '--address', server.address, '--workflow-id', victim.input.runId, '--reason', 'fleet-faults test']);
    const terminatedAt = Date.now();
    // Nobody stops the terminated run's job (its workflow is gone): it would go on holding the GPU
    // the fleet is about to give away. Kill its process group here, as an operator would.
    const pid = Number((await readFile(join(hosts[victimLease.host]!.workRoot, victim.input.runId, 'runtime/pid'), 'utf8')).trim());
    process.kill(-pid, 'SIGKILL');

    const after = await waitForFleet(
      taskQueue,
      (v) => v.stats.reclaimed === 1 && v.leases.some((l) => l.holder.workflowId === waiting.input.runId),
      15_000,
      'the lease reclaimed and given to the queued run',
    );
    expect(Date.now() - terminatedAt).toBeLessThan(15_000);
    expect(after.leases.some((l) => l.holder.workflowId === victim.input.runId)).toBe(false);
    expect(after.queue).toEqual([]);
    const given = after.leases.find((l) => l.holder.workflowId === waiting.input.runId)!;
    // The only free GPU was the terminated run's.
    expect({ host: given.host, gpus: given.gpus }).toEqual({ host: victimLease.host, gpus: victimLease.gpus });
    expect(given.token).toBeGreaterThan(victimLease.token);
    expect((await victim.handle.describe()).status.name).toBe('TERMINATED');

    const queuedResult = await within(60_000, 'the queued run', runOutcome(waiting.handle));
    expect(queuedResult.status, queuedResult.reasons.join('; ')).toBe('succeeded');
    await writeFile(releaseFile, '');
    const others = holders.filter((h) => h !== victim);
    const otherResults = await within(60_000, 'the other holders', Promise.all(others.map((h) => runOutcome(h.handle))));
    for (const r of otherResults) expect(r.status, `${r.runId}: ${r.reasons.join('; ')}`).toBe('succeeded');
    const records = await Promise.all([
      recordOf(waiting.bundleDir, queuedResult),
      ...others.map((h, i) => recordOf(h.bundleDir, otherResults[i]!)),
    ]);
    expectNoGpuOverlap(records);
    // The terminated run's job started once (and was killed, so never ended); the queued job started on its GPU only after the termination.
    const victimLines = (await readFile(join(hosts[victimLease.host]!.workRoot, victim.input.runId, 'artifacts/gpu.txt'), 'utf8')).trim().split('\n');
    expect(victimLines).toHaveLength(1);
    expect(victimLines[0]).toMatch(new RegExp(`^${victimLease.host} ${victimLease.gpus.join(',')} ${victimLease.token} \\S+ start$`));
    expect(records[0]!.start * 1000).toBeGreaterThan(terminating);
    // 5 grants: the 4 results' leases and the one reclaimed from the terminated run.
    await expectFleetSettled(taskQueue, [queuedResult, ...otherResults], 1);
  });
});
