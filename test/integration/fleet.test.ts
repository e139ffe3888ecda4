/**
 * The fleet on the real dev server with real sshd hosts: runs queue for leases with exact GPUs, in
 * priority order, never share a GPU, are refused at submit when no host could ever hold them, and a
 * lost host is drained while its run relaunches elsewhere under a new lease.
 */
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { fleetWorkflowId, type FleetHostSpec } from '../../src/common/fleet';
import { type FleetView } from '../../src/common/fleet-view';
import type { RunBundleInput, RunStatus, RunTuning } from '../../src/common/run';
import { HostRegistry } from '../../src/hosts/registry';
import { ShellHost } from '../../src/hosts/shell-host';
import { SshTransport } from '../../src/hosts/ssh';
import { createOrbitWorker, localHost, type OrbitWorker } from '../../src/worker/worker';
import { runSpecOf } from '../../src/common/run-input';
import { fleetQuery, runBundle, runSweep, statusQuery, type SweepCellInput } from '../../src/workflows';
import { runOutcome } from '../helpers/run-outcome';
import { scriptBundle, tempDir } from '../helpers/bundles';
import { recordHistory } from '../helpers/histories';
import { orbit } from '../helpers/orbit-cli';
import { sshOptions, startSshd, type SshdServer } from '../helpers/sshd';
import { until } from '../helpers/wait';

const TUNING: RunTuning = { pollIntervalMs: 200, heartbeatTimeoutMs: 5_000, probeTimeoutMs: 1_500, hostLostAfterMs: 3_000, collectDeadlineMs: 60_000, collectRetryMs: { initial: 500, max: 2_000 } };

/** A job that records, in its own artifacts, where and on which GPUs it ran and when. */
const gpuJob = (seconds: number) => `echo "$ORBIT_HOST [$CUDA_VISIBLE_DEVICES] $ORBIT_GPUS $ORBIT_LEASE start $(date +%s.%N)" >> artifacts/gpu.txt
sleep ${seconds}
echo "$ORBIT_HOST [$CUDA_VISIBLE_DEVICES] $ORBIT_GPUS $ORBIT_LEASE end $(date +%s.%N)" >> artifacts/gpu.txt`;

interface JobRecord {
  run: string;
  host: string;
  gpus: string;
  start: number;
  end: number;
}

/** The most jobs running at one instant, from their start and end times. */
function mostAtOnce(recs: JobRecord[]): number {
  const events = recs.flatMap((r) => [[r.start, 1] as const, [r.end, -1] as const]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let most = 0;
  for (const [, d] of events) most = Math.max(most, (now += d));
  return most;
}

describe('the fleet: leases with exact GPUs over two sshd hosts of 2 GPUs each', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let hosts: SshdServer[];
  let worker: OrbitWorker;
  let running: Promise<void>;
  let nativeConnection: NativeConnection;
  let connection: Connection;
  let client: Client;
  let hostsFile: string;
  const taskQueue = `fleet-${randomUUID().slice(0, 8)}`;
  // gpu-a is rented at 36 per hour (0.01 a second): its runs carry a cost.
  const spec = (name: string): FleetHostSpec => ({ name, gpus: [0, 1], cpus: 8, memoryGb: 16, labels: [], ...(name === 'gpu-a' ? { pricePerHour: 36 } : {}) });

  beforeAll(async () => {
    tmp = await tempDir('orbit-fleet-');
    hosts = await Promise.all([startSshd({ name: 'gpu-a' }), startSshd({ name: 'gpu-b' })]);
    const registry = new HostRegistry([localHost(join(tmp.dir, 'home'))]);
    for (const h of hosts) registry.add(new ShellHost({ name: h.name, transport: new SshTransport(sshOptions(h, { readyTimeoutMs: 2_000 })), workRoot: h.workRoot }));
    nativeConnection = await NativeConnection.connect({ address: inject('temporalAddress') });
    worker = await createOrbitWorker({
      connection: nativeConnection,
      namespace: 'default',
      taskQueue,
      hosts: registry,
      fleetHosts: async () => [{ name: 'local', gpus: [], cpus: 64, memoryGb: 256, labels: [] }, ...hosts.map((h) => spec(h.name))],
      // A small history bound, so the fleet continues as new several times under this suite's load.
      fleetSettings: { reconcileEveryMs: 1_000, maxHistoryEvents: 120 },
    });
    running = worker.run();
    connection = await Connection.connect({ address: inject('temporalAddress') });
    client = new Client({ connection });
    hostsFile = join(tmp.dir, 'hosts.yaml');
    await writeFile(hostsFile, stringify({ hosts: hosts.map((h) => h.hostsEntry({ resources: { gpus: 2, cpus: 8, memoryGb: 16 } })) }));
  });

  afterAll(async () => {
    worker?.shutdown();
    await running;
    await connection?.close();
    await nativeConnection?.close();
    await Promise.all((hosts ?? []).map((h) => h.stop()));
    await tmp?.cleanup();
  });

  const fleetView = (): Promise<FleetView> => client.workflow.getHandle(fleetWorkflowId(taskQueue)).query(fleetQuery);

  async function start(name: string, body: string, extra: Partial<RunBundleInput> = {}) {
    const runId = `${name}-${randomUUID().slice(0, 6)}`;
    const { bundle, digest } = await scriptBundle(join(tmp.dir, 'bundles', runId), body, { resources: { gpus: 1, cpus: 1, memoryGb: 1 } });
    const input: RunBundleInput = {
      runId,
      bundleDir: bundle.dir,
      digest,
      host: 'auto',
      resources: { gpus: 1, cpus: 1, memoryGb: 1 },
      logFile: 'task.log',
      timeouts: { stageSeconds: 60, runSeconds: 300, collectSeconds: 60, killGraceSeconds: 2 },
      tuning: TUNING,
      ...extra,
    };
    const handle = await client.workflow.start(runBundle, { taskQueue, workflowId: runId, args: [input] });
    return { handle, bundleDir: bundle.dir, input };
  }


  async function records(run: string, bundleDir: string): Promise<JobRecord[]> {
    const lines = (await readFile(join(bundleDir, 'artifacts/gpu.txt'), 'utf8')).trim().split('\n');
    const out: JobRecord[] = [];
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const [host, gpus, , , , start] = lines[i]!.split(' ');
      const end = lines[i + 1]!.split(' ')[5];
      out.push({ run, host: host!, gpus: gpus!, start: Number(start), end: Number(end) });
    }
    return out;
  }

  const statusOf = (h: WorkflowHandle): Promise<RunStatus> => h.query(statusQuery);

  it('12 one-GPU jobs: at most 4 at once, never two on one GPU, all succeed, higher priority first and FIFO within one', async () => {
    // Four fillers take every GPU; then four of priority 0 and four of priority 5 queue behind them.
    const fillers = await Promise.all([0, 1, 2, 3].map((i) => start(`fill${i}`, gpuJob(3))));
    await until('the fillers to hold all 4 GPUs', async () => (await fleetView()).leases.length === 4, 60_000);
    const low: Awaited<ReturnType<typeof start>>[] = [];
    for (let i = 0; i < 4; i++) low.push(await start(`low${i}`, gpuJob(1.5)));
    const high: Awaited<ReturnType<typeof start>>[] = [];
    for (let i = 0; i < 4; i++) high.push(await start(`high${i}`, gpuJob(1.5), { priority: 5 }));

    // While they wait, the queue and each run's status say where they stand.
    await until('8 queued', async () => (await fleetView()).queue.length === 8, 30_000);
    const view = await fleetView();
    expect(view.queue.map((q) => q.workflowId)).toEqual([...high, ...low].map((r) => r.input.runId));
    expect(view.queue[0]!.waitingFor).toMatch(/1 gpu.*gpu-a: 0 of 2 gpus free.*gpu-b: 0 of 2 gpus free/);
    const queued = await statusOf(low[0]!.handle);
    expect(queued.phase).toBe('queued');
    expect(queued.queued).toMatchObject({ requestId: 'launch', resources: { gpus: 1 }, priority: 0 });

    let most = 0;
    const all = [...fillers, ...low, ...high];
    const sampling = (async () => {
      for (;;) {
        const v = await fleetView().catch(() => undefined);
        if (v) most = Math.max(most, v.leases.length);
        if (v && v.leases.length === 0 && v.queue.length === 0) return;
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    const results = await Promise.all(all.map((r) => runOutcome(r.handle)));
    await sampling;
    expect(results.map((r) => r.status)).toEqual(all.map(() => 'succeeded'));
    expect(most).toBeLessThanOrEqual(4);

    // From the jobs' own records: never more than 4 at once, never two on one GPU of one host at once.
    const recs = (await Promise.all(all.map((r) => records(r.input.runId, r.bundleDir)))).flat();
    expect(recs).toHaveLength(12);
    expect(mostAtOnce(recs)).toBeLessThanOrEqual(4);
    for (const a of recs) {
      expect(a.gpus).toMatch(/^\[[01]\]$/);
      const clash = recs.filter((b) => b !== a && b.start < a.end && a.start < b.end && b.host === a.host && b.gpus === a.gpus);
      expect(clash, `${a.run} on ${a.host} ${a.gpus} overlaps ${clash.map((c) => c.run).join(', ')}`).toEqual([]);
    }
    // Each result names its one lease, released, on the host and GPU the job saw.
    for (const [i, r] of results.entries()) {
      expect(r.leases).toHaveLength(1);
      const rec = recs.find((x) => x.run === all[i]!.input.runId)!;
      expect([r.leases![0]!.host, `[${r.leases![0]!.gpus.join(',')}]`]).toEqual([rec.host, rec.gpus]);
      expect(r.leases![0]!.releasedAt).toBeDefined();
      // Priced on gpu-a only: 0.01 a second of lease (job time plus the detection of its end).
      if (r.host === 'gpu-a') expect(r.cost).toBeGreaterThan(0.01);
      else expect(r.cost).toBeUndefined();
    }
    // Grants: every priority-5 job before any priority-0 one; FIFO within each.
    const grantedAt = (rs: typeof low) => rs.map((r) => Date.parse(results[all.indexOf(r)]!.leases![0]!.grantedAt));
    const [hi, lo] = [grantedAt(high), grantedAt(low)];
    expect(Math.max(...hi)).toBeLessThanOrEqual(Math.min(...lo));
    expect(hi).toEqual([...hi].sort((a, b) => a - b));
    expect(lo).toEqual([...lo].sort((a, b) => a - b));
    const end = await fleetView();
    expect([end.leases.length, end.queue.length]).toEqual([0, 0]);
    expect(end.stats.granted).toBeGreaterThanOrEqual(12);

    // The fleet's history stayed bounded: it continued as new, carrying its state, each run under the bound.
    const fleetId = fleetWorkflowId(taskQueue);
    const closed = await until('a fleet run closed by continue-as-new', async () => {
      const runs = [];
      for await (const w of client.workflow.list({ query: `WorkflowId = '${fleetId}'` })) if (w.status.name === 'CONTINUED_AS_NEW') runs.push(w);
      return runs.length > 0 ? runs : undefined;
    }, 30_000);
    for (const w of closed) expect(w.historyLength).toBeLessThan(120 + 60);
    await recordHistory('fleet-continued', client.workflow.getHandle(fleetId, closed[0]!.runId));
    await recordHistory('run-bundle-leased', high[0]!.handle);
  }, 240_000);

  it('a sweep firing of 8 one-GPU cells over the fleet runs 4 at a time on both hosts', async () => {
    const cells: SweepCellInput[] = [];
    for (let i = 0; i < 8; i++) {
      // Long enough that the first four overlap even when staging is slow under load (2 s was not, in CI).
      const { bundle, digest } = await scriptBundle(join(tmp.dir, 'sweep-cells', `c${i}`), gpuJob(5), { resources: { gpus: 1, cpus: 1, memoryGb: 1 } });
      cells.push({ name: `c${i}`, bundleDir: bundle.dir, digest, axes: { i: String(i) }, ...runSpecOf(bundle.spec) });
    }
    const sweep = `fleet-sweep-${randomUUID().slice(0, 6)}`;
    const handle = await client.workflow.start(runSweep, {
      taskQueue,
      workflowId: `${sweep}-firing`,
      args: [{ sweep, firingsDir: join(tmp.dir, 'firings'), host: 'auto', maxConcurrent: 8, cells, tuning: TUNING, firingId: '20261201-000000' }],
    });
    const firing = await handle.result();
    expect(firing.cells.map((c) => c.state)).toEqual(cells.map(() => 'succeeded'));
    const recs = (await Promise.all(firing.cells.map((c) => records(c.cell, c.bundleDir!)))).flat();
    expect(new Set(recs.map((r) => r.host))).toEqual(new Set(['gpu-a', 'gpu-b']));
    expect(mostAtOnce(recs)).toBe(4);
    for (const a of recs) expect(recs.filter((b) => b !== a && b.start < a.end && a.start < b.end && b.host === a.host && b.gpus === a.gpus)).toEqual([]);
  }, 180_000);

  it('a job asking for 3 GPUs is refused at submit, naming what each host lacks; nothing is queued', async () => {
    const job = join(tmp.dir, 'big.yaml');
    await writeFile(job, `task: collection\nsource: {kind: synthetic, rows: 10}\noutput: data/x.csv\nresources: {gpus: 3}\n`);
    const port = inject('temporalAddress').split(':')[1];
    const env: NodeJS.ProcessEnv = { ...process.env, ORBIT_HOME: join(tmp.dir, 'cli-home'), ORBIT_TEMPORAL_PORT: port, ORBIT_TASK_QUEUE: taskQueue, ORBIT_HOSTS: hostsFile };
    delete env.TEMPORAL_ADDRESS;
    const before = (await fleetView()).stats;
    const r = await orbit(['submit', job], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/needs 3 gpus[\s\S]*gpu-a: needs 3 gpus, has 2[\s\S]*gpu-b: needs 3 gpus, has 2/);
    expect(r.stderr.trim().split('\n').some((l) => /^\s+at /.test(l))).toBe(false);
    expect((await fleetView()).stats).toEqual(before);
  });

  it('a host lost mid-run (relaunch): drained, the run resumes on the other host under a new lease, new jobs avoid it until it answers', async () => {
    const first = await start('lost', gpuJob(12), { onHostLost: 'relaunch', relaunchHosts: ['gpu-a', 'gpu-b'] });
    const s = await until('the first run to run', async () => {
      const st = await statusOf(first.handle);
      return st.phase === 'running' ? st : undefined;
    }, 60_000);
    const lostName = s.host;
    const lost = hosts.find((h) => h.name === lostName)!;
    const other = hosts.find((h) => h.name !== lostName)!;
    lost.pause();
    try {
      // The run gives the lost host's lease back and queues for the other host.
      const moved = await until('the run to move to the other host', async () => {
        const st = await statusOf(first.handle);
        return st.host === other.name && st.phase === 'running' ? st : undefined;
      }, 60_000);
      expect(moved.leases!.map((l) => l.host)).toEqual([lostName, other.name]);
      expect(moved.leases![0]!.releasedAt).toBeDefined();
      const view = await fleetView();
      expect(view.hosts.find((h) => h.name === lostName)).toMatchObject({ condition: 'lost', gpus: { busy: [] } });
      // New jobs go to the other host only, while the lost one stays silent.
      const next = await Promise.all([0, 1].map((i) => start(`avoid${i}`, gpuJob(1))));
      const results = await Promise.all(next.map((r) => runOutcome(r.handle)));
      expect(results.map((r) => [r.status, r.host])).toEqual([
        ['succeeded', other.name],
        ['succeeded', other.name],
      ]);
    } finally {
      lost.resume();
    }
    // It answers again: the fleet's probe undrains it.
    await until('the lost host to be undrained', async () => (await fleetView()).hosts.find((h) => h.name === lostName)?.condition === 'ok', 30_000);
    const r = await runOutcome(first.handle);
    expect([r.status, r.host, r.leases!.length]).toEqual(['succeeded', other.name, 2]);
    await recordHistory('run-bundle-leased-relaunched', first.handle);
  }, 240_000);

  it('orbit hosts drain / undrain: a drained host gets no new lease; orbit queue and hosts list show the fleet', async () => {
    const port = inject('temporalAddress').split(':')[1];
    const env: NodeJS.ProcessEnv = { ...process.env, ORBIT_HOME: join(tmp.dir, 'cli-home'), ORBIT_TEMPORAL_PORT: port, ORBIT_TASK_QUEUE: taskQueue, ORBIT_HOSTS: hostsFile };
    delete env.TEMPORAL_ADDRESS;
    const drain = await orbit(['hosts', 'drain', 'gpu-a'], env);
    expect([drain.code, drain.stdout.trim()]).toEqual([0, 'gpu-a: drained: no new leases; its running jobs go on']);
    await until('gpu-a drained', async () => (await fleetView()).hosts.find((h) => h.name === 'gpu-a')?.condition === 'drained', 10_000);
    const jobs = await Promise.all([0, 1, 2].map((i) => start(`drained${i}`, gpuJob(8))));
    await until('2 leases on gpu-b', async () => (await fleetView()).leases.length === 2, 30_000);
    const waiting = (await fleetView()).queue[0]!.workflowId;
    const [queue, list, status] = await Promise.all([orbit(['queue'], env), orbit(['hosts', 'list'], env), orbit(['status', waiting], env)]);
    expect(status.stdout).toContain(`run ${waiting}: running, phase queued on auto`);
    expect(status.stdout).toMatch(/queued \d+s for 1 gpu, 1 cpu, 1 GB: position 1 of 1; waiting for 1 gpu, 1 cpu, 1 GB \(gpu-a: drained \| gpu-b: 0 of 2 gpus free\)/);
    // The counts and the waits-for lines are notes (stderr); the table is the answer (stdout).
    expect(queue.stderr).toMatch(/1 queued, 2 leased/);
    expect(queue.stdout).toMatch(/drained\d-\S+ +leased +- +0 +1 gpu, 1 cpu, 1 GB +gpu-b +[01] /);
    expect(queue.stdout).toMatch(/drained\d-\S+ +queued +1 +0 +1 gpu, 1 cpu, 1 GB +auto/);
    expect(queue.stderr).toMatch(/gpu-a: drained/);
    expect(list.stdout).toMatch(/gpu-a +drained +0 +2\/2/);
    expect(list.stdout).toMatch(/gpu-b +ok +2 \[0,1\] +0\/2/);
    const asJson = await orbit(['queue', '-o', 'json'], env);
    expect(JSON.parse(asJson.stdout)).toMatchObject({ queue: [expect.objectContaining({ workflowId: waiting, position: 1 })], leases: [expect.anything(), expect.anything()] });
    const undrain = await orbit(['hosts', 'undrain', 'gpu-a'], env);
    expect(undrain.code).toBe(0);
    const results = await Promise.all(jobs.map((j) => runOutcome(j.handle)));
    expect(results.map((r) => r.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    // The first two were granted while gpu-a was drained; the third after it came back.
    expect(results.filter((r) => r.host === 'gpu-b').length).toBeGreaterThanOrEqual(2);
    expect(results.filter((r) => r.host === 'gpu-a').length).toBeLessThanOrEqual(1);
    const bad = await orbit(['hosts', 'drain', 'nope'], env);
    expect([bad.code, bad.stderr.trim()]).toEqual([2, expect.stringMatching(/^orbit: no host named "nope" in .*hosts\.yaml; known: local, gpu-a, gpu-b$/)]);
  }, 180_000);
});
