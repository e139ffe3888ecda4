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
 *                          [--reconcile MS] [--max-history EVENTS] [--metrics URL] [--temporal HOST:PORT]
 *
 * --metrics: the Temporal server's Prometheus endpoint (a dev server prints it at start: "Temporal Metrics:");
 * adds the server's count of signal-delivery attempts refused as BusyWorkflow during the burst.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { cp, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { fleetWorkflowId, type FleetHostSpec } from '../src/common/fleet';
import { FLEET_DEFAULTS } from '../src/common/fleet-activities';
import type { LeaseRecord } from '../src/common/run';
import { runBundle, type RunBundleInput, type RunResult } from '../src/workflows';
import { scriptBundle, tempDir } from '../test/helpers/bundles';
import { startSshd, type SshdServer } from '../test/helpers/sshd';
import { HostRegistry, inProcessWorker, killRun, line, machine, median, orbitHost, parseArgs, percentile, run, runMain, runtimeLogSpan, s, temporal, verdict } from './lib';

const B = 'fleet';

/** Busy and total jiffies of the whole machine (/proc/stat). */
function cpuTimes(): { busy: number; total: number } {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: f.reduce((a, b) => a + b, 0) - idle, total: f.reduce((a, b) => a + b, 0) };
}

/**
 * User + system CPU seconds of a process tree so far, the children it has reaped included (utime, stime,
 * cutime, cstime of /proc/<pid>/stat; live children via /proc/<pid>/task/<pid>/children).
 */
function treeCpuSeconds(root: number): number {
  const pids = [root];
  let ticks = 0;
  for (let i = 0; i < pids.length; i++) {
    try {
      const f = readFileSync(`/proc/${pids[i]}/stat`, 'utf8');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      ticks += Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14]);
      const children = readFileSync(`/proc/${pids[i]}/task/${pids[i]}/children`, 'utf8').trim();
      if (children) pids.push(...children.split(/\s+/).map(Number));
    } catch {
      /* gone */
    }
  }
  return ticks / 100;
}

/** The pid of the process listening on a loopback TCP port (the Temporal server), if any. */
async function listenerPid(port: number): Promise<number | undefined> {
  const r = await run('ss', ['-ltnpH', `sport = :${port}`], { allowFail: true, quiet: true });
  const m = /pid=(\d+)/.exec(r.stdout);
  return m ? Number(m[1]) : undefined;
}
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

const at = (t: unknown): number => {
  const ts = t as { seconds?: { toNumber?: () => number } | number | string; nanos?: number } | null | undefined;
  if (!ts) return NaN;
  const sec = typeof ts.seconds === 'object' && ts.seconds?.toNumber ? ts.seconds.toNumber() : Number(ts.seconds ?? 0);
  return sec * 1000 + (ts.nanos ?? 0) / 1e6;
};

interface History {
  events: number;
  startedAt: number;
  workflowTasks: { scheduled: number; started?: number; completed?: number }[];
  /** Workflow tasks that failed or timed out, by cause. */
  taskFailures: string[];
  activities: { type: string; scheduled: number; started?: number; completed?: number }[];
  /** Signals received, with their first argument. */
  signals: { name: string; at: number; arg: unknown }[];
  /** Signals sent to other workflows: when the command was recorded and when the server had delivered it. */
  sent: { workflowId: string; initiated: number; delivered?: number }[];
}

/** Event count, activities and received signals (epoch ms) of a workflow execution. */
async function history(handle: WorkflowHandle): Promise<History> {
  const events = (await handle.fetchHistory()).events ?? [];
  const byId = new Map<number, History['activities'][number]>();
  const out: History = { events: events.length, startedAt: NaN, workflowTasks: [], taskFailures: [], activities: [], signals: [], sent: [] };
  const sentById = new Map<number, History['sent'][number]>();
  const wft = new Map<number, History['workflowTasks'][number]>();
  for (const e of events) {
    const t = at(e.eventTime);
    if (e.workflowExecutionStartedEventAttributes) out.startedAt = t;
    if (e.workflowTaskScheduledEventAttributes) {
      const w = { scheduled: t };
      wft.set(Number(e.eventId), w);
      out.workflowTasks.push(w);
    }
    if (e.workflowTaskStartedEventAttributes) {
      const w = wft.get(Number(e.workflowTaskStartedEventAttributes.scheduledEventId));
      if (w) w.started = t;
    }
    if (e.workflowTaskCompletedEventAttributes) {
      const w = wft.get(Number(e.workflowTaskCompletedEventAttributes.scheduledEventId));
      if (w) w.completed = t;
    }
    if (e.workflowTaskFailedEventAttributes) out.taskFailures.push(`failed ${String(e.workflowTaskFailedEventAttributes.cause ?? '?')}`);
    if (e.workflowTaskTimedOutEventAttributes) out.taskFailures.push('timed out');
    if (e.activityTaskScheduledEventAttributes) {
      const a = { type: e.activityTaskScheduledEventAttributes.activityType?.name ?? '?', scheduled: t };
      byId.set(Number(e.eventId), a);
      out.activities.push(a);
    }
    const startedAttrs = e.activityTaskStartedEventAttributes;
    if (startedAttrs) {
      const a = byId.get(Number(startedAttrs.scheduledEventId));
      if (a) a.started = t;
    }
    const done = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes;
    if (done) {
      const a = byId.get(Number(done.scheduledEventId));
      if (a) a.completed = t;
    }
    const init = e.signalExternalWorkflowExecutionInitiatedEventAttributes;
    if (init) {
      const x = { workflowId: init.workflowExecution?.workflowId ?? '?', initiated: t };
      sentById.set(Number(e.eventId), x);
      out.sent.push(x);
    }
    const delivered = e.externalWorkflowExecutionSignaledEventAttributes;
    if (delivered) {
      const x = sentById.get(Number(delivered.initiatedEventId));
      if (x) x.delivered = t;
    }
    const sig = e.workflowExecutionSignaledEventAttributes;
    if (sig) {
      const data = sig.input?.payloads?.[0]?.data;
      let arg: unknown;
      try {
        arg = data ? JSON.parse(Buffer.from(data).toString('utf8')) : undefined;
      } catch {
        arg = undefined;
      }
      out.signals.push({ name: sig.signalName ?? '?', at: t, arg });
    }
  }
  return out;
}

/** The last activity of a type in a history. */
const lastActivity = (h: History, type: string) => h.activities.filter((a) => a.type === type).pop();

/**
 * From a Temporal server's Prometheus /metrics (`--metrics URL`, e.g. a dev server of one's own): how many
 * times the server's signal-delivery tasks were attempted, and how many attempts it refused as BusyWorkflow
 * (the target or source execution's lock was held too long), summed over all label sets.
 */
async function signalTaskMetrics(url: string): Promise<{ tasks: number; attempts: number; busy: number } | undefined> {
  try {
    const text = await (await fetch(url)).text();
    const sum = (re: RegExp) =>
      text
        .split('\n')
        .filter((l) => re.test(l))
        .reduce((acc, l) => acc + Number(l.split(' ').pop()), 0);
    return {
      tasks: sum(/^task_attempt_count\{.*operation="TransferActiveTaskSignalExecution"/),
      attempts: sum(/^task_requests\{.*operation="TransferActiveTaskSignalExecution"/),
      busy: sum(/^task_errors_throttled\{.*operation="TransferActiveTaskSignalExecution".*resource_exhausted_cause="BusyWorkflow"/),
    };
  } catch {
    return undefined;
  }
}

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
  const metricsUrl = args.str('metrics', '');
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
      const rec = await readRecord(input.bundleDir!);
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
    const temporalPid = await listenerPid(Number(t.address.split(':').pop()));
    const sshdPids = (await Promise.all(hosts.map((h) => listenerPid(h.port)))).filter((p): p is number => p !== undefined);
    const hostSide = () => sshdPids.reduce((sum, p) => sum + treeCpuSeconds(p), 0);
    const cpu0 = { machine: cpuTimes(), self: process.cpuUsage(), temporal: temporalPid ? treeCpuSeconds(temporalPid) : 0, hosts: hostSide() };
    const metrics0 = metricsUrl ? await signalTaskMetrics(metricsUrl) : undefined;
    const lag = monitorEventLoopDelay({ resolution: 20 });
    lag.enable();
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
    lag.disable();
    const cpu1 = { machine: cpuTimes(), self: process.cpuUsage(cpu0.self), temporal: temporalPid ? treeCpuSeconds(temporalPid) : 0, hosts: hostSide() };
    line(B, `${load()} (after the burst)`);
    const selfCpu = (cpu1.self.user + cpu1.self.system) / 1e6;
    const temporalCpu = cpu1.temporal - cpu0.temporal;
    const machineCpu = (cpu1.machine.busy - cpu0.machine.busy) / 100;
    line(
      B,
      `cpu during the burst: machine ${((100 * (cpu1.machine.busy - cpu0.machine.busy)) / (cpu1.machine.total - cpu0.machine.total)).toFixed(0)}% busy of 2 cores (${machineCpu.toFixed(1)} cpu-s, other tenants included); ` +
        `this process (worker + client) ${selfCpu.toFixed(1)} cpu-s; temporal dev server ${temporalPid ? `${temporalCpu.toFixed(1)} cpu-s` : 'not ours'}; ` +
        `the ${sshdPids.length} sshd hosts (probes, stage, collect, run.sh and its python, the jobs) ${(cpu1.hosts - cpu0.hosts).toFixed(1)} cpu-s; the rest (other tenants of the machine) ${(machineCpu - selfCpu - temporalCpu - (cpu1.hosts - cpu0.hosts)).toFixed(1)} cpu-s; ` +
        `this process's event-loop delay p50 ${(lag.percentile(50) / 1e6).toFixed(0)} ms, p99 ${(lag.percentile(99) / 1e6).toFixed(0)} ms, max ${(lag.max / 1e6).toFixed(0)} ms`,
    );

    const jobs = await pool(inputs, 16, async (input, i) => {
      const rec = await readRecord(input.bundleDir!);
      const lease = (results[i]!.r.leases ?? [])[0] as LeaseRecord | undefined;
      if (!lease?.releasedAt) throw new Error(`run ${input.runId} has no released lease: ${JSON.stringify(results[i]!.r.leases)}`);
      const tl = await history(handles[i]!);
      const span = runtimeLogSpan(await readFile(join(input.bundleDir!, "runtime/runtime.log"), 'utf8'));
      return { id: input.runId, rec, lease, tl, span, leases: results[i]!.r.leases!.length };
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

    // ---------------------------------------------------------------- the fleet's own histories (its continued-as-new runs)
    const fleetRuns: { runId: string; status: string; tl: History }[] = [];
    for await (const w of t.client.workflow.list({ query: `WorkflowId = '${fleetId}'` })) fleetRuns.push({ runId: w.runId, status: w.status.name, tl: await history(t.client.workflow.getHandle(fleetId, w.runId)) });
    /** When each release (by token) reached the fleet's history. */
    const releaseSeen = new Map<number, number>();
    for (const r of fleetRuns) for (const sg of r.tl.signals) if (sg.name === 'leaseRelease' && typeof (sg.arg as { token?: number })?.token === 'number') releaseSeen.set((sg.arg as { token: number }).token, sg.at);

    /** When each run's lease request reached the fleet's history, and when the fleet recorded / the server delivered each grant. */
    const requestSeen = new Map<string, number>();
    const grantSent = new Map<string, { initiated: number; delivered?: number }>();
    for (const r of fleetRuns) {
      for (const sg of r.tl.signals) {
        const id = (sg.arg as { holder?: { workflowId?: string } })?.holder?.workflowId;
        if (sg.name === 'leaseRequest' && id && !requestSeen.has(id)) requestSeen.set(id, sg.at);
      }
      for (const x of r.tl.sent) if (!grantSent.has(x.workflowId)) grantSent.set(x.workflowId, x);
    }
    const firstWave = [...jobs].sort((a, b) => a.rec.start - b.rec.start).slice(0, slots);
    const wave = (f: (j: (typeof jobs)[number]) => number) => s(median(firstWave.map(f)));
    const request = (j: (typeof jobs)[number]) => j.tl.activities.find((a) => a.type === 'requestLease');
    line(
      B,
      `  first wave (the first ${firstWave.length} jobs to start), median: workflow started -> requestLease scheduled ${wave((j) => request(j)!.scheduled - j.tl.startedAt)}; -> started ${wave((j) => request(j)!.started! - request(j)!.scheduled)}; ` +
        `-> request signal in the fleet's history ${wave((j) => (requestSeen.get(j.id) ?? NaN) - request(j)!.started!)}; -> queued (fleet's workflow task) ${wave((j) => Date.parse(j.lease.queuedAt) - (requestSeen.get(j.id) ?? NaN))}; ` +
        `-> granted ${wave((j) => Date.parse(j.lease.grantedAt) - Date.parse(j.lease.queuedAt))}; -> job's first line ${wave((j) => j.rec.start - Date.parse(j.lease.grantedAt))}`,
    );

    // ---------------------------------------------------------------- slot free -> next job start
    // Each hand-over on one GPU while a job was queued, split by the clocks that see it: the job's
    // record, its runtime/runtime.log (run.sh), the run's history (monitor, stage), the leases.
    type Gap = Record<'total' | 'epilogue' | 'detect' | 'release' | 'toFleet' | 'fleet' | 'grantTask' | 'deliver' | 'toStage' | 'stage' | 'spawn' | 'prologue', number> & { released: number; granted: number };
    const gaps: Gap[] = [];
    for (const list of bySlot.values()) {
      for (let i = 0; i + 1 < list.length; i++) {
        const a = list[i]!;
        const b = list[i + 1]!;
        if (!inside(a.rec.end, waits)) continue;
        const monitorDone = lastActivity(a.tl, 'monitor')?.completed ?? NaN;
        const stage = lastActivity(b.tl, 'stage');
        const released = Date.parse(a.lease.releasedAt!);
        const seen = releaseSeen.get(a.lease.token) ?? NaN;
        const granted = Date.parse(b.lease.grantedAt);
        const grantSeen = b.tl.signals.find((x) => x.name === 'leaseGranted')?.at ?? NaN;
        gaps.push({
          total: b.rec.start - a.rec.end,
          epilogue: a.span.last - a.rec.end,
          detect: monitorDone - a.span.last,
          release: released - monitorDone,
          toFleet: seen - released,
          fleet: granted - seen,
          grantTask: (grantSent.get(b.id)?.initiated ?? NaN) - granted,
          deliver: grantSeen - (grantSent.get(b.id)?.initiated ?? NaN),
          toStage: (stage?.started ?? NaN) - grantSeen,
          stage: (stage?.completed ?? NaN) - (stage?.started ?? NaN),
          spawn: b.span.first - (stage?.completed ?? NaN),
          prologue: b.rec.start - b.span.first,
          released,
          granted,
        });
      }
    }
    const col = (k: keyof Gap) => gaps.map((g) => g[k]);
    const medTotal = median(col('total'));
    line(
      B,
      `slot free -> next job start: median ${s(medTotal)}, p90 ${s(percentile(col('total'), 0.9))}, max ${s(Math.max(...col('total')))} over ${gaps.length} hand-overs with a job queued (target median <= 1 s) ${verdict(medTotal <= 1000)}`,
    );
    const part = (k: keyof Gap) => `${s(median(col(k)))} (p90 ${s(percentile(col(k), 0.9))})`;
    line(
      B,
      `  split, median (p90): job's end line -> run.sh done (audit stop, manifest) ${part('epilogue')}; -> monitor returns (poll ${pollIntervalMs} ms + probe) ${part('detect')}; ` +
        `-> lease released (run's workflow task) ${part('release')}; -> release signal in the fleet's history ${part('toFleet')}; -> next run granted (fleet's workflow task) ${part('fleet')}; ` +
        `-> grant recorded (fleet's workflow task completes) ${part('grantTask')}; -> grant signal in the next run's history (server delivers it) ${part('deliver')}; -> its stage starts (run's workflow task, activity dispatch) ${part('toStage')}; ` +
        `stage ${part('stage')}; stage done -> run.sh's first line (launch) ${part('spawn')}; -> job's first line (run.sh prologue: host probe, precheck) ${part('prologue')}`,
    );

    // The fleet grants nothing while its reconciliation (the fleetCheck activity) is out.
    const checks = fleetRuns.flatMap((r) => r.tl.activities.filter((a) => a.type === 'fleetCheck' && a.completed !== undefined && a.scheduled >= t0 - 1000 && a.scheduled <= lastEnd));
    const blocked = gaps.filter((g) => checks.some((c) => c.scheduled < g.granted && c.completed! > g.released));
    const free = gaps.filter((g) => !blocked.includes(g));
    line(
      B,
      `  fleet: ${checks.length} reconciliations during the burst, each ${s(median(checks.map((c) => c.completed! - c.scheduled)))} median (max ${s(Math.max(...checks.map((c) => c.completed! - c.scheduled)))}) scheduled -> completed; ` +
        `${blocked.length} of ${gaps.length} hand-overs had one in flight between release and grant: release -> grant ${s(median(blocked.map((g) => g.granted - g.released)))} median for those, ${s(median(free.map((g) => g.granted - g.released)))} for the others`,
    );

    const tasks = (hs: History[]) => {
      const w = hs.flatMap((h) => h.workflowTasks.filter((x) => x.scheduled >= t0 && x.scheduled <= lastEnd));
      const wait = w.filter((x) => x.started !== undefined).map((x) => x.started! - x.scheduled);
      const work = w.filter((x) => x.completed !== undefined).map((x) => x.completed! - x.started!);
      const failures = hs.flatMap((h) => h.taskFailures);
      const causes = new Map<string, number>();
      for (const f of failures) causes.set(f, (causes.get(f) ?? 0) + 1);
      return `${w.length} workflow tasks, scheduled -> started median ${s(median(wait))} (p90 ${s(percentile(wait, 0.9))}, max ${s(Math.max(...wait))}), started -> completed median ${s(median(work))} (p90 ${s(percentile(work, 0.9))}, max ${s(Math.max(...work))}); ${failures.length} failed or timed out${causes.size ? ` (${[...causes].map(([k, v]) => `${v}x ${k}`).join(', ')})` : ''}`;
    };
    line(B, `  fleet workflow during the burst: ${tasks(fleetRuns.map((r) => r.tl))}`);
    // Grant rounds: the grants one fleet workflow task sends (same initiated time); the loop schedules again only once all are delivered.
    const rounds = new Map<number, { initiated: number; delivered: number[] }>();
    for (const r of fleetRuns)
      for (const x of r.tl.sent)
        if (x.delivered !== undefined && x.initiated >= t0 && x.initiated <= lastEnd) {
          const key = Math.round(x.initiated);
          rounds.set(key, { initiated: x.initiated, delivered: [...(rounds.get(key)?.delivered ?? []), x.delivered] });
        }
    const roundList = [...rounds.values()];
    const big = roundList.filter((r) => r.delivered.length >= 5);
    line(
      B,
      `  grant rounds during the burst: ${roundList.length}, grants per round median ${median(roundList.map((r) => r.delivered.length))} (max ${Math.max(...roundList.map((r) => r.delivered.length))}); ` +
        `round sent -> first delivery acknowledged in the fleet's history ${s(median(roundList.map((r) => Math.min(...r.delivered) - r.initiated)))} median, -> last ${s(median(roundList.map((r) => Math.max(...r.delivered) - r.initiated)))} median; ` +
        `in rounds of 5 or more: ${big.length ? `${(median(big.map((r) => (r.delivered.length - 1) / Math.max(1e-3, (Math.max(...r.delivered) - Math.min(...r.delivered)) / 1000)))).toFixed(1)} deliveries/s median between first and last` : 'none'}`,
    );
    line(B, `  runs (runBundle) during the burst: ${tasks(jobs.map((j) => j.tl))}`);
    const metrics1 = metricsUrl ? await signalTaskMetrics(metricsUrl) : undefined;
    if (metrics0 && metrics1) {
      const d = { tasks: metrics1.tasks - metrics0.tasks, attempts: metrics1.attempts - metrics0.attempts, busy: metrics1.busy - metrics0.busy };
      line(
        B,
        `  server (${metricsUrl}): ${d.tasks} signal deliveries between workflows (grants and releases) done in ${d.attempts} attempts = ${(d.attempts / Math.max(1, d.tasks)).toFixed(1)} each; ` +
          `${d.busy} attempts refused as BusyWorkflow (an execution's lock held by other work; every one of these deliveries involves the fleet's execution, as sender or receiver) and retried with backoff`,
      );
    } else if (metricsUrl) line(B, `  server: no metrics from ${metricsUrl}`);

    // ---------------------------------------------------------------- histories
    const runs = fleetRuns.map((r) => ({ runId: r.runId, status: r.status, events: r.tl.events }));
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
