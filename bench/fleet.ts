/**
 * Figure 6, fleet: N jobs of one GPU each, all submitted at once with host "auto", on sshd hosts
 * that each declare G GPUs to the fleet (slots = hosts x G), served by one in-process worker. Each
 * job writes its own record (host, CUDA_VISIBLE_DEVICES, start and end times) into its artifacts.
 * Measured in the same run: Orbit's single-run overhead (one leased job alone), the makespan against
 * the ideal (waves x job + that overhead), slot utilization while the fleet's queue is non-empty,
 * overlapping GPU use (from the jobs' own records), the time from a slot freeing to the next job
 * starting on it (split: detection, release, the fleet's grant, the next run's stage and launch),
 * and the history of the fleet workflow (its continued-as-new runs) and of the runs.
 *
 *   npx tsx bench/fleet.ts [--tiny] [--n 200] [--hosts 5] [--gpus 8] [--job SECONDS] [--poll MS] [--reps 3]
 *                          [--reconcile MS] [--max-history EVENTS] [--temporal HOST:PORT]
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { cp, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { fleetWorkflowId, type FleetHostSpec } from '../src/common/fleet';
import { FLEET_DEFAULTS } from '../src/common/fleet-activities';
import type { LeaseRecord } from '../src/common/run';
import { runBundle, type RunBundleInput, type RunResult } from '../src/workflows';
import { scriptBundle, tempDir } from '../test/helpers/bundles';
import { startSshd, type SshdServer } from '../test/helpers/sshd';
import { HostRegistry, inProcessWorker, killRun, line, machine, median, orbitHost, parseArgs, runMain, s, temporal, timeline, verdict, type Timeline } from './lib';

const B = 'fleet';
const RESOURCES = { gpus: 1, cpus: 1, memoryGb: 1 };

const load = () => `load average ${loadavg().map((l) => l.toFixed(2)).join(', ')}`;

/** The job: its own record of where (host, GPU) and when it ran, in its artifacts. */
const jobBody = (seconds: number) => `echo "$ORBIT_HOST $CUDA_VISIBLE_DEVICES start $(date +%s.%N)" >> artifacts/gpu.txt
sleep ${seconds}
echo "$ORBIT_HOST $CUDA_VISIBLE_DEVICES end $(date +%s.%N)" >> artifacts/gpu.txt`;

interface JobRecord {
  host: string;
  gpu: string;
  /** Epoch ms. */
  start: number;
  end: number;
}

async function readRecord(bundleDir: string): Promise<JobRecord> {
  const lines = (await readFile(join(bundleDir, 'artifacts/gpu.txt'), 'utf8')).trim().split('\n');
  const [host, gpu, what, at] = (lines[0] ?? '').split(' ');
  const endLine = (lines[1] ?? '').split(' ');
  if (lines.length !== 2 || what !== 'start' || endLine[2] !== 'end' || endLine[0] !== host || endLine[1] !== gpu) throw new Error(`bad job record in ${bundleDir}: ${lines.join(' | ')}`);
  return { host: host!, gpu: gpu!, start: Number(at) * 1000, end: Number(endLine[3]) * 1000 };
}

/** Runs `fn` over `items`, at most `limit` at once. */
async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!, i);
    }),
  );
  return out;
}

const pct = (xs: number[], p: number) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length ? v[Math.min(v.length - 1, Math.floor(p * v.length))]! : NaN;
};

/** Merges intervals [a, b) into disjoint ones, sorted. */
function union(intervals: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (const [a, b] of [...intervals].filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0])) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

const overlap = (a: number, b: number, window: [number, number][]) => window.reduce((sum, [x, y]) => sum + Math.max(0, Math.min(b, y) - Math.max(a, x)), 0);
const inside = (t: number, window: [number, number][]) => window.some(([x, y]) => t >= x && t < y);

/** The last activity of a type in a run's timeline. */
const lastActivity = (tl: Timeline, type: string) => tl.activities.filter((a) => a.type === type).pop();

async function main(): Promise<void> {
  const args = parseArgs();
  const n = args.num('n', args.tiny ? 12 : 200);
  const hostCount = args.num('hosts', args.tiny ? 2 : 5);
  const gpusPerHost = args.num('gpus', args.tiny ? 2 : 8);
  const jobS = args.num('job', args.tiny ? 2 : 10);
  const pollIntervalMs = args.num('poll', 250);
  const reps = args.num('reps', args.tiny ? 1 : 3);
  const reconcileEveryMs = args.num('reconcile', FLEET_DEFAULTS.reconcileEveryMs);
  const maxHistoryEvents = args.num('max-history', args.tiny ? 150 : 1000);
  const slots = hostCount * gpusPerHost;
  const waves = Math.ceil(n / slots);
  line(B, `machine: ${await machine()}`);
  line(B, `${load()} (start)`);
  line(
    B,
    `settings: N ${n} jobs of "sleep ${jobS}" asking ${RESOURCES.gpus} gpu, ${RESOURCES.cpus} cpu, ${RESOURCES.memoryGb} GB, host "auto", on ${hostCount} sshd hosts declaring ${gpusPerHost} GPUs, 64 cpus, 512 GB each (${slots} slots, ${waves} waves); ` +
      `one in-process worker; pollIntervalMs ${pollIntervalMs}, heartbeatTimeoutMs 30000; fleet reconcileEveryMs ${reconcileEveryMs}${reconcileEveryMs === FLEET_DEFAULTS.reconcileEveryMs ? ' (default)' : ''}, maxHistoryEvents ${maxHistoryEvents} (default ${FLEET_DEFAULTS.maxHistoryEvents})`,
  );

  const tmp = await tempDir('orbit-bench-fleet-');
  const t = await temporal(args);
  const hosts: SshdServer[] = await Promise.all(Array.from({ length: hostCount }, (_, i) => startSshd({ name: `fleet-${i + 1}` })));
  const specs: FleetHostSpec[] = hosts.map((h) => ({ name: h.name, gpus: Array.from({ length: gpusPerHost }, (_, g) => g), cpus: 64, memoryGb: 512, labels: [] }));
  const taskQueue = `bench-fleet-${randomUUID().slice(0, 8)}`;
  const fleetId = fleetWorkflowId(taskQueue);
  const worker = await inProcessWorker(t.address, taskQueue, new HostRegistry(hosts.map((h) => orbitHost(h))), {
    fleetHosts: async () => specs,
    fleetSettings: { reconcileEveryMs, maxHistoryEvents },
  });
  const started: string[] = [];

  try {
    const template = join(tmp.dir, 'template');
    const { bundle, digest } = await scriptBundle(template, jobBody(jobS), { resources: RESOURCES });
    await mkdir(join(tmp.dir, 'bundles'));
    const inputFor = async (name: string, from = template, d = digest): Promise<RunBundleInput> => {
      const bundleDir = join(tmp.dir, 'bundles', name);
      await cp(from, bundleDir, { recursive: true });
      return {
        runId: name,
        bundleDir,
        digest: d,
        host: 'auto',
        resources: RESOURCES,
        logFile: bundle.spec.entrypoint.logFile,
        timeouts: bundle.spec.timeouts,
        syncIntervalMs: bundle.spec.sync.intervalSeconds * 1000,
        tuning: { pollIntervalMs, heartbeatTimeoutMs: 30_000 },
      };
    };
    const startRun = async (input: RunBundleInput) => {
      const h = await t.client.workflow.start(runBundle, { taskQueue, workflowId: input.runId, args: [input] });
      started.push(input.runId);
      return h;
    };
    const succeeded = async (h: WorkflowHandle, input: RunBundleInput): Promise<RunResult> => {
      const r = (await h.result()) as RunResult;
      if (r.status !== 'succeeded' || !r.collect.verified) throw new Error(`run ${input.runId} ended ${r.status}: ${r.reasons.join('; ')}`);
      return r;
    };

    // ---------------------------------------------------------------- Orbit's single-run overhead
    // An untimed warm-up (starts the fleet workflow and its first reconciliation), then one leased job alone at a time.
    const warmDir = join(tmp.dir, 'warm-template');
    const warm = await scriptBundle(warmDir, jobBody(0), { resources: RESOURCES });
    const warmInput = await inputFor(`fleet-warm-${randomUUID().slice(0, 6)}`, warmDir, warm.digest);
    await succeeded(await startRun(warmInput), warmInput);
    const singles: { wallMs: number; jobMs: number }[] = [];
    for (let i = 0; i < reps; i++) {
      const input = await inputFor(`fleet-single-${i}-${randomUUID().slice(0, 6)}`);
      const t0 = Date.now();
      await succeeded(await startRun(input), input);
      const wallMs = Date.now() - t0;
      const rec = await readRecord(input.bundleDir);
      singles.push({ wallMs, jobMs: rec.end - rec.start });
    }
    const overheadMs = median(singles.map((x) => x.wallMs)) - jobS * 1000;
    const idealMs = waves * jobS * 1000 + overheadMs;
    line(
      B,
      `single leased ${jobS} s job alone (median of ${reps}): ${s(median(singles.map((x) => x.wallMs)))} start -> result (job itself ${s(median(singles.map((x) => x.jobMs)))}); Orbit's single-run overhead ${s(overheadMs)}; ` +
        `ideal makespan ${waves} waves x ${jobS} s + overhead = ${s(idealMs)}`,
    );

    // ---------------------------------------------------------------- the burst
    const inputs = await pool(
      Array.from({ length: n }, (_, i) => i),
      16,
      (i) => inputFor(`fleet-${String(i).padStart(4, '0')}-${randomUUID().slice(0, 4)}`),
    );
    const t0 = Date.now();
    const handles = await pool(inputs, 32, (input) => startRun(input));
    const allStarted = Date.now() - t0;
    const results = await Promise.all(
      handles.map(async (h, i) => {
        const r = await succeeded(h, inputs[i]!);
        return { r, at: Date.now() };
      }),
    );
    const makespanMs = Math.max(...results.map((x) => x.at)) - t0;
    line(B, `${load()} (after the burst)`);

    const jobs = await pool(inputs, 16, async (input, i) => {
      const rec = await readRecord(input.bundleDir);
      const lease = (results[i]!.r.leases ?? [])[0] as LeaseRecord | undefined;
      if (!lease?.releasedAt) throw new Error(`run ${input.runId} has no released lease: ${JSON.stringify(results[i]!.r.leases)}`);
      const tl = await timeline(handles[i]!);
      return { id: input.runId, rec, lease, tl, leases: results[i]!.r.leases!.length };
    });
    const mismatched = jobs.filter((j) => j.rec.host !== j.lease.host || j.rec.gpu !== j.lease.gpus.join(',') || j.leases !== 1).length;
    const firstStart = Math.min(...jobs.map((j) => j.rec.start));
    const lastStart = Math.max(...jobs.map((j) => j.rec.start));
    const lastEnd = Math.max(...jobs.map((j) => j.rec.end));
    const ratio = makespanMs / idealMs;
    line(
      B,
      `makespan ${s(makespanMs)} (first start call -> last result; all ${n} started in ${s(allStarted)}; first job began after ${s(firstStart - t0)}, last job ended at ${s(lastEnd - t0)}); ideal ${s(idealMs)}; ` +
        `ratio ${ratio.toFixed(3)} (target <= 1.10) ${verdict(ratio <= 1.1)}`,
    );

    // ---------------------------------------------------------------- utilization while queued
    // The window: the union of every job's wait in the fleet's queue (lease queuedAt -> grantedAt, the
    // fleet's own times), i.e. while the fleet's queue was non-empty. Busy: the jobs' own start -> end.
    const waits = union(jobs.map((j) => [Date.parse(j.lease.queuedAt), Date.parse(j.lease.grantedAt)] as [number, number]));
    const windowMs = waits.reduce((sum, [a, b]) => sum + (b - a), 0);
    const busyMs = jobs.reduce((sum, j) => sum + overlap(j.rec.start, j.rec.end, waits), 0);
    const util = windowMs > 0 ? busyMs / (slots * windowMs) : NaN;
    const simple: [number, number][] = [[firstStart, lastStart]];
    const simpleMs = lastStart - firstStart;
    const simpleUtil = simpleMs > 0 ? jobs.reduce((sum, j) => sum + overlap(j.rec.start, j.rec.end, simple), 0) / (slots * simpleMs) : NaN;
    line(
      B,
      `slot utilization while queued ${(100 * util).toFixed(1)}% (target >= 90%) ${verdict(util >= 0.9)}: job run time (the jobs' records) inside the window / (${slots} slots x window); ` +
        `window = while the fleet's queue was non-empty (union of the leases' queuedAt -> grantedAt) = ${s(windowMs)} in ${waits.length} piece(s); ` +
        `over first job start -> last job start (${s(simpleMs)}) instead: ${(100 * simpleUtil).toFixed(1)}%`,
    );

    // ---------------------------------------------------------------- overlaps
    const bySlot = new Map<string, typeof jobs>();
    for (const j of jobs) bySlot.set(`${j.rec.host}/${j.rec.gpu}`, [...(bySlot.get(`${j.rec.host}/${j.rec.gpu}`) ?? []), j]);
    let overlaps = 0;
    let leaseOverlaps = 0;
    const byLeaseSlot = new Map<string, typeof jobs>();
    for (const j of jobs) for (const g of j.lease.gpus) byLeaseSlot.set(`${j.lease.host}/${g}`, [...(byLeaseSlot.get(`${j.lease.host}/${g}`) ?? []), j]);
    for (const list of bySlot.values()) {
      list.sort((a, b) => a.rec.start - b.rec.start);
      for (let i = 0; i < list.length; i++) for (let k = i + 1; k < list.length && list[k]!.rec.start < list[i]!.rec.end; k++) overlaps++;
    }
    for (const list of byLeaseSlot.values()) {
      const iv = list.map((j) => [Date.parse(j.lease.grantedAt), Date.parse(j.lease.releasedAt!)] as const).sort((a, b) => a[0] - b[0]);
      for (let i = 0; i < iv.length; i++) for (let k = i + 1; k < iv.length && iv[k]![0] < iv[i]![1]; k++) leaseOverlaps++;
    }
    const perHost = hosts.map((h) => jobs.filter((j) => j.rec.host === h.name).length);
    line(
      B,
      `overlapping GPU leases ${overlaps} (target 0) ${verdict(overlaps === 0)}: pairs of jobs whose own records (host, CUDA_VISIBLE_DEVICES, start -> end) overlap on one GPU; ` +
        `${bySlot.size} of ${slots} slots used, jobs per host ${perHost.join('/')}; lease intervals (grantedAt -> releasedAt) overlapping on a GPU: ${leaseOverlaps}; records not matching their lease: ${mismatched}`,
    );

    // ---------------------------------------------------------------- slot free -> next job start
    const gaps: { total: number; detect: number; release: number; fleet: number; toStage: number; stage: number; launch: number }[] = [];
    for (const list of bySlot.values()) {
      for (let i = 0; i + 1 < list.length; i++) {
        const a = list[i]!;
        const b = list[i + 1]!;
        if (!inside(a.rec.end, waits)) continue;
        const monitorDone = lastActivity(a.tl, 'monitor')?.completed ?? NaN;
        const stage = lastActivity(b.tl, 'stage');
        const released = Date.parse(a.lease.releasedAt!);
        const granted = Date.parse(b.lease.grantedAt);
        gaps.push({
          total: b.rec.start - a.rec.end,
          detect: monitorDone - a.rec.end,
          release: released - monitorDone,
          fleet: granted - released,
          toStage: (stage?.started ?? NaN) - granted,
          stage: (stage?.completed ?? NaN) - (stage?.started ?? NaN),
          launch: b.rec.start - (stage?.completed ?? NaN),
        });
      }
    }
    const col = (k: keyof (typeof gaps)[number]) => gaps.map((g) => g[k]);
    const medTotal = median(col('total'));
    line(
      B,
      `slot free -> next job start: median ${s(medTotal)}, p90 ${s(pct(col('total'), 0.9))}, max ${s(Math.max(...col('total')))} over ${gaps.length} hand-overs with a job queued (target median <= 1 s) ${verdict(medTotal <= 1000)}`,
    );
    const part = (k: keyof (typeof gaps)[number]) => `${s(median(col(k)))} (p90 ${s(pct(col(k), 0.9))})`;
    line(
      B,
      `  split (medians): job end -> monitor returns ${part('detect')}; -> lease released ${part('release')}; -> next run granted (fleet) ${part('fleet')}; ` +
        `-> next run's stage starts ${part('toStage')}; stage ${part('stage')}; stage done -> job's first line (launch) ${part('launch')}`,
    );

    // ---------------------------------------------------------------- histories
    const runs: { runId: string; status: string; events: number }[] = [];
    for await (const w of t.client.workflow.list({ query: `WorkflowId = '${fleetId}'` })) runs.push({ runId: w.runId, status: w.status.name, events: 0 });
    for (const r of runs) r.events = (await t.client.workflow.getHandle(fleetId, r.runId).fetchHistory()).events?.length ?? 0;
    const fleetEvents = runs.map((r) => r.events);
    const maxFleet = Math.max(...fleetEvents);
    const continued = runs.filter((r) => r.status === 'CONTINUED_AS_NEW').length;
    const totalFleet = fleetEvents.reduce((a, b) => a + b, 0);
    const leasedRuns = n + reps + 1;
    line(
      B,
      `fleet history: ${runs.length} run(s) of ${fleetId} (${continued} continued-as-new); events per run max ${maxFleet}, median ${median(fleetEvents)}, ` +
        `total ${totalFleet} = ${(totalFleet / leasedRuns).toFixed(1)} per leased run (${leasedRuns}); bound maxHistoryEvents ${maxHistoryEvents} (target: max <= bound + 10% = ${Math.round(maxHistoryEvents * 1.1)}) ${verdict(maxFleet <= maxHistoryEvents * 1.1)}`,
    );
    const counts = jobs.map((j) => j.tl.events);
    line(B, `history events per run (runBundle, leased, ${jobS} s job, N ${n}): min ${Math.min(...counts)}, median ${median(counts)}, max ${Math.max(...counts)} (unleased, figure 4: 34)`);
    line(B, `${load()} (end)`);
  } finally {
    await t.client.workflow
      .getHandle(fleetId)
      .terminate('benchmark over')
      .catch(() => undefined);
    await worker.stop();
    for (const id of started) for (const h of hosts) killRun(h.workRoot, id);
    await Promise.all(hosts.map((h) => h.stop()));
    await t.close();
    await tmp.cleanup();
  }
}

runMain(main);
