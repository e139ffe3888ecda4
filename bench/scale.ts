/**
 * Figure 4, scale: N concurrent runs of a short job (sleep 10 s) spread over several real sshd
 * hosts, served by ONE worker process (`bin/orbit worker`, as deployed) on this machine. Prints the
 * time until the last run completed, failures, the worker's peak resident memory, CPU use, and the
 * Temporal history events per run; then the events of a 10 s and a 10 min job with the default
 * progressEveryMs (on a host of their own, started before the burst and running through it), and of
 * a 10 s and a 60 s job with progressEveryMs 30 s, to show what the count depends on.
 *
 *   npx tsx bench/scale.ts [--tiny] [--n 500] [--hosts 5] [--job SECONDS] [--poll MS] [--long SECONDS] [--no-events] [--no-raw] [--temporal HOST:PORT]
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { openSync, readFileSync } from 'node:fs';
import { cp, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { runBundle, type RunBundleInput, type RunResult } from '../src/workflows';
import type { RunTuning } from '../src/common/run';
import { DEFAULT_MONITOR_SLOTS, DEFAULT_TRANSFER_SLOTS } from '../src/common/task-queues';
import { scriptBundle, tempDir } from '../test/helpers/bundles';
import { startSshd, writeHostsFile, type SshdServer } from '../test/helpers/sshd';
import { eventTypes, killRun, line, machine, median, memorySampler, parseArgs, percentile, rawScp, rawSsh, REPO, run, runMain, s, sleep, target, temporal, timeline, verdict } from './lib';

/** The slots the spawned worker gets: `orbit worker` reads these variables (commander `.env`), so the settings line says what ran. */
function slotSettings(): string {
  const monitors = process.env.ORBIT_WORKER_MONITOR_SLOTS;
  const transfers = process.env.ORBIT_WORKER_TRANSFER_SLOTS;
  return `${monitors ? `${monitors} monitors (ORBIT_WORKER_MONITOR_SLOTS)` : `default ${DEFAULT_MONITOR_SLOTS} monitors`}, ${transfers ? `${transfers} transfers (ORBIT_WORKER_TRANSFER_SLOTS)` : `default ${DEFAULT_TRANSFER_SLOTS} transfers`}`;
}

const B = 'scale';

/** Busy and total jiffies of the whole machine (/proc/stat). */
function cpuTimes(): { busy: number; total: number } {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** User + system CPU seconds of a process and its children so far (/proc/<pid>/stat). */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      ticks += Number(rest[11]) + Number(rest[12]);
    } catch {
      /* gone */
    }
  }
  return ticks / 100;
}

function descendants(root: number): number[] {
  const out = [root];
  for (let i = 0; i < out.length; i++) {
    try {
      const children = readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, 'utf8').trim();
      if (children) out.push(...children.split(/\s+/).map(Number));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** The pid of the process listening on a loopback TCP port (the Temporal server), if any. */
async function listenerPid(port: number): Promise<number | undefined> {
  const r = await run('ss', ['-ltnpH', `sport = :${port}`], { allowFail: true });
  const m = /pid=(\d+)/.exec(r.stdout);
  return m ? Number(m[1]) : undefined;
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

/** Waits for every run: how many did not succeed and why (counted by message), and each one's time from its start. */
async function outcomes(
  handles: WorkflowHandle[],
  startedAt: number[] = [],
): Promise<{ failures: number; reasons: Map<string, number>; durations: number[]; results: { result: RunResult; startedAt: number }[] }> {
  let failures = 0;
  const reasons = new Map<string, number>();
  const results: { result: RunResult; startedAt: number }[] = [];
  const durations = await Promise.all(
    handles.map(async (h, i) => {
      try {
        const r = (await h.result()) as RunResult;
        results.push({ result: r, startedAt: startedAt[i] ?? 0 });
        if (r.status !== 'succeeded') throw new Error(r.status);
      } catch (e) {
        failures++;
        const why = String((e as Error).message).slice(0, 120);
        reasons.set(why, (reasons.get(why) ?? 0) + 1);
      }
      return Date.now() - (startedAt[i] ?? 0);
    }),
  );
  return { failures, reasons, durations, results };
}

/**
 * Where a run's time went: from its start (the client's workflow.start returning) to its first phase,
 * then each phase until the next one was entered (from the phases the result records), as median and
 * p95 over the runs. Names the step a slower burst spends its time in.
 */
function phaseBreakdown(runs: { result: RunResult; startedAt: number }[]): string {
  const spans = new Map<string, number[]>();
  const add = (k: string, ms: number) => spans.set(k, [...(spans.get(k) ?? []), ms]);
  for (const { result, startedAt } of runs) {
    const at = result.phases.map((p) => ({ phase: p.phase, t: Date.parse(p.at) }));
    if (!at.length) continue;
    if (startedAt) add('start->first phase', Math.max(0, at[0]!.t - startedAt));
    for (let i = 0; i + 1 < at.length; i++) add(at[i]!.phase, at[i + 1]!.t - at[i]!.t);
  }
  return [...spans].map(([k, xs]) => `${k} median ${s(median(xs))} p95 ${s(percentile(xs, 0.95))}`).join('; ');
}

async function main(): Promise<void> {
  const args = parseArgs();
  const part = args.str('part', 'all');
  if (!['all', 'burst', 'long', 'handover'].includes(part)) throw new Error(`--part ${part}: one of all, burst, long, handover`);
  if (part === 'burst' || part === 'all') await burst(args);
  if (part === 'long' || part === 'all') await longRuns(args, false);
  if (part === 'handover' || part === 'all') await longRuns(args, true);
}

async function burst(args: ReturnType<typeof parseArgs>): Promise<void> {
  const n = args.num('n', args.tiny ? 6 : 500);
  const hostCount = args.num('hosts', args.tiny ? 2 : 5);
  const jobS = args.num('job', args.tiny ? 1 : 10);
  const longS = args.num('long', args.tiny ? 3 : 600);
  const mediumS = args.tiny ? 3 : 60;
  const pollIntervalMs = args.num('poll', args.tiny ? 500 : 5_000);
  const progressShortMs = args.tiny ? 1_500 : 30_000;
  line(B, `machine: ${await machine()}`);
  line(B, `settings: N ${n} runs of "sleep ${jobS}" over ${hostCount} sshd hosts, one worker process (bin/orbit worker, slots: ${slotSettings()}); pollIntervalMs ${pollIntervalMs}, heartbeatTimeoutMs 30000, syncIntervalMs 30000, progressEveryMs not set (the workflow's default); the rest defaults but the poll`);

  const tmp = await tempDir('orbit-bench-scale-');
  const t = await temporal(args);
  const port = t.address.split(':').pop()!;
  const hosts: SshdServer[] = await Promise.all(Array.from({ length: hostCount }, (_, i) => startSshd({ name: `scale-${i + 1}` })));
  const eventsHost = await startSshd({ name: 'scale-events' });
  const hostsFile = join(tmp.dir, 'hosts.yaml');
  // Room for every run on every host: the figure is about the worker, not the fleet's packing.
  await writeHostsFile(hostsFile, [], [...hosts, eventsHost].map((h) => h.hostsEntry({ resources: { cpus: 4 * n, memoryGb: 4 * n } })));
  const taskQueue = `bench-scale-${randomUUID().slice(0, 8)}`;
  const started: { id: string; host: SshdServer }[] = [];

  // The worker, as deployed: its own process (tsx runs it in a child: the whole tree is measured).
  const logFile = join(tmp.dir, 'worker.log');
  const worker = spawn(join(REPO, 'bin/orbit'), ['worker'], {
    env: { ...process.env, ORBIT_HOME: join(tmp.dir, 'home'), ORBIT_TEMPORAL_PORT: port, ORBIT_TASK_QUEUE: taskQueue, ORBIT_HOSTS: hostsFile },
    stdio: ['ignore', openSync(logFile, 'a'), openSync(logFile, 'a')],
    detached: true,
  });
  const stopWorker = async () => {
    if (worker.exitCode !== null || worker.signalCode !== null) return;
    const gone = new Promise<void>((r) => worker.once('exit', () => r()));
    process.kill(-worker.pid!, 'SIGTERM');
    await Promise.race([gone, sleep(15_000)]);
    try {
      process.kill(-worker.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  };

  try {
    for (let i = 0; !readFileSync(logFile, 'utf8').includes('orbit worker: task queue'); i++) {
      if (worker.exitCode !== null || i > 1200) throw new Error(`worker did not start:\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
      await sleep(100);
    }
    const template = join(tmp.dir, 'template');
    const { bundle, digest } = await scriptBundle(template, `echo "job on $(hostname)"; sleep "\${ORBIT_BENCH_SLEEP:-${jobS}}"; echo ok > artifacts/out.txt`);
    const inputFor = async (name: string, host: SshdServer, tuning: RunTuning = {}, body?: string): Promise<RunBundleInput> => {
      const bundleDir = join(tmp.dir, 'bundles', name);
      let d = digest;
      if (body) d = (await scriptBundle(bundleDir, body)).digest;
      else await cp(template, bundleDir, { recursive: true });
      return {
        runId: name,
        bundleDir,
        digest: d,
        host: host.name,
        logFile: bundle.spec.entrypoint.logFile,
        timeouts: bundle.spec.timeouts,
        syncIntervalMs: bundle.spec.sync.intervalSeconds * 1000,
        tuning: { pollIntervalMs, heartbeatTimeoutMs: 30_000, ...tuning },
      };
    };
    await mkdir(join(tmp.dir, 'bundles'));
    const inputs = await pool(
      Array.from({ length: n }, (_, i) => i),
      16,
      (i) => inputFor(`scale-${String(i).padStart(4, '0')}-${randomUUID().slice(0, 4)}`, hosts[i % hostCount]!),
    );

    // ---------------------------------------------------------------- events against duration: started now
    // On a host of their own; the 10 min job runs through the burst and the raw baseline.
    const sleepBody = (sec: number) => `sleep ${sec}; echo ok > artifacts/out.txt`;
    const cases = [
      { label: `${jobS} s job, progressEveryMs not set (default)`, sec: jobS, extra: {} },
      { label: `${longS >= 60 ? `${longS / 60} min` : `${longS} s`} job, progressEveryMs not set (default)`, sec: longS, extra: {} },
      { label: `${jobS} s job, progressEveryMs ${progressShortMs}`, sec: jobS, extra: { progressEveryMs: progressShortMs } },
      { label: `${mediumS} s job, progressEveryMs ${progressShortMs}`, sec: mediumS, extra: { progressEveryMs: progressShortMs } },
    ];
    const events = args.flag('no-events')
      ? undefined
      : Promise.all(
          cases.map(async (c, i) => {
            const input = await inputFor(`events-${i}-${randomUUID().slice(0, 6)}`, eventsHost, c.extra, sleepBody(c.sec));
            const h: WorkflowHandle = await t.client.workflow.start(runBundle, { taskQueue, workflowId: input.runId, args: [input] });
            started.push({ id: input.runId, host: eventsHost });
            await h.result();
            return { ...c, types: await eventTypes(h), monitors: (await timeline(h)).activities.filter((a) => a.type === 'monitor').length };
          }),
        );
    events?.catch(() => undefined);
    const reportEvents = (runs: { label: string; types: Map<string, number>; monitors: number }[]) => {
      const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
      for (const r of runs) line(B, `history events, ${r.label}: ${total(r.types)} (${r.monitors} monitor call${r.monitors > 1 ? 's' : ''})`);
      const diff = (a: Map<string, number>, b: Map<string, number>) =>
        [...new Set([...a.keys(), ...b.keys()])]
          .map((k) => [k, (b.get(k) ?? 0) - (a.get(k) ?? 0)] as const)
          .filter(([, v]) => v)
          .map(([k, v]) => `${v > 0 ? '+' : ''}${v} ${k}`)
          .join(', ');
      const [short, long, shortP, longP] = runs as [(typeof runs)[number], (typeof runs)[number], (typeof runs)[number], (typeof runs)[number]];
      const extraReturns = longP.monitors - shortP.monitors;
      if (extraReturns > 0) {
        const perReturn = (total(longP.types) - total(shortP.types)) / extraReturns;
        line(B, `each extra monitor return (one per progressEveryMs of run time) adds ${perReturn} events: ${diff(shortP.types, longP.types) || 'none'}`);
      } else {
        line(B, `each extra monitor return: not measured, the ${longP.label.split(',')[0]} made ${longP.monitors} monitor call${longP.monitors > 1 ? 's' : ''}, so there is no extra return to measure`);
      }
      const flat = total(short.types) === total(long.types);
      line(
        B,
        `history events flat in job duration (default progressEveryMs): ${cases[0]!.label.split(',')[0]} ${total(short.types)}, ${cases[1]!.label.split(',')[0]} ${total(long.types)}: ` +
          `${flat ? 'flat' : `${total(long.types) - total(short.types) > 0 ? '+' : ''}${total(long.types) - total(short.types)}`} (target flat) ${verdict(flat)}; <= 60 ${verdict(Math.max(total(short.types), total(long.types)) <= 60)}`,
      );
    };

    // ---------------------------------------------------------------- the burst
    const mem = memorySampler(worker.pid!, 250);
    const cpu0 = cpuTimes();
    const workerCpu0 = cpuSeconds(descendants(worker.pid!));
    const temporalPid = await listenerPid(Number(port));
    const temporalCpu0 = temporalPid ? cpuSeconds(descendants(temporalPid)) : 0;
    const t0 = Date.now();
    const handles = await pool(inputs, 32, async (input, i) => {
      const h = await t.client.workflow.start(runBundle, { taskQueue, workflowId: input.runId, args: [input] });
      started.push({ id: input.runId, host: hosts[i % hostCount]! });
      return { h, startedAt: Date.now() };
    });
    const allStarted = Date.now() - t0;
    const { failures, reasons, durations, results } = await outcomes(handles.map((x) => x.h), handles.map((x) => x.startedAt));
    const total = Date.now() - t0;
    const cpu1 = cpuTimes();
    const workerCpu = cpuSeconds(descendants(worker.pid!)) - workerCpu0;
    const peak = mem.stop();
    line(B, `N ${n}: all started in ${s(allStarted)}; last completed after ${s(total)}; per run (start -> result) median ${s(median(durations))}, p95 ${s(percentile(durations, 0.95))}, max ${s(Math.max(...durations))} for a ${jobS} s job`);
    line(B, `where a run's time went (phases from its result): ${phaseBreakdown(results)}`);
    line(B, `failures ${failures} of ${n} (target 0 at N = 500) ${verdict(failures === 0)}${reasons.size ? `: ${[...reasons].map(([k, v]) => `${v}x ${k}`).join('; ')}` : ''}`);
    line(B, `worker peak RSS ${(peak.peakRssKb / 1024).toFixed(0)} MiB (process tree; largest process VmHWM ${(peak.peakHwmKb / 1024).toFixed(0)} MiB) (target <= 1024 MiB) ${verdict(peak.peakRssKb <= 1024 * 1024)}`);
    line(B, `cpu during the burst: machine ${((100 * (cpu1.busy - cpu0.busy)) / (cpu1.total - cpu0.total)).toFixed(0)}% busy of 2 cores; worker ${workerCpu.toFixed(1)} cpu-s = ${((1000 * workerCpu) / n).toFixed(0)} ms per run`);

    if (temporalPid) line(B, `temporal dev server cpu during the burst: ${(cpuSeconds(descendants(temporalPid)) - temporalCpu0).toFixed(1)} cpu-s; the rest (sshd sessions, the jobs' run.sh with its python precheck, audit and manifest, this client) ${((cpu1.busy - cpu0.busy) / 100 - workerCpu - (cpuSeconds(descendants(temporalPid)) - temporalCpu0)).toFixed(1)} cpu-s`);

    const counts = await pool(handles, 16, async ({ h }) => (await h.fetchHistory()).events?.length ?? 0);
    line(B, `history events per run (${jobS} s job, N ${n}): min ${Math.min(...counts)}, median ${median(counts)}, max ${Math.max(...counts)} (target <= 60) ${verdict(Math.max(...counts) <= 60)}`);

    // ---------------------------------------------------------------- the raw tools, the same N runs
    // scp up, ssh run.sh, scp back, as a shell loop would with xargs -P: 10 at a time per host
    // (sshd's MaxStartups starts refusing beyond 10 handshakes in progress).
    if (!args.flag('no-raw')) {
      const parallel = Math.min(n, 10 * hostCount);
      let rawFailures = 0;
      const r0 = Date.now();
      await pool(
        Array.from({ length: n }, (_, i) => i),
        parallel,
        async (i) => {
          const host = hosts[i % hostCount]!;
          const id = `raw-${i}-${randomUUID().slice(0, 4)}`;
          const remote = `${host.workRoot}/${id}`;
          const back = join(tmp.dir, 'raw', id);
          try {
            await mkdir(back, { recursive: true });
            await rawScp(host, [template], `${target(host)}:${remote}`);
            await rawSsh(host, `bash ${remote}/scripts/orbit/run.sh`);
            await rawScp(host, [`${target(host)}:${remote}/runtime`, `${target(host)}:${remote}/artifacts`], back);
            if (readFileSync(join(back, 'artifacts/out.txt'), 'utf8') !== 'ok\n') throw new Error('no artifact');
          } catch {
            rawFailures++;
          }
        },
      );
      const rawMs = Date.now() - r0;
      line(B, `raw scp+ssh+scp, ${parallel} at a time (xargs -P style): last completed after ${s(rawMs)}, failures ${rawFailures}; ratio orbit/raw completion time ${(total / rawMs).toFixed(3)}`);
    }

    // ---------------------------------------------------------------- events against duration: results
    if (events) await reportEvents(await events);
  } finally {
    await stopWorker();
    for (const r of started) killRun(r.host.workRoot, r.id);
    await Promise.all([...hosts, eventsHost].map((h) => h.stop()));
    await t.close();
    await tmp.cleanup();
  }
}

/**
 * Figure 4b/4c, long runs: N concurrent runs of a job that sleeps for --minutes, touching a heartbeat
 * file every 10 s, over the sshd hosts; one worker (4b), or two with one SIGKILLed at --kill-at
 * minutes after the first submission (4c). Read from the workers' stats lines
 * (ORBIT_WORKER_STATS_SECONDS) and the runs' histories afterwards.
 */
async function longRuns(args: ReturnType<typeof parseArgs>, handover: boolean): Promise<void> {
  const B = handover ? 'scale-handover' : 'scale-long';
  const n = args.num('long-n', args.tiny ? 6 : 1000);
  const hostCount = args.num('hosts', args.tiny ? 2 : 5);
  const minutes = args.num('minutes', args.tiny ? 0.75 : 10);
  const killAtMin = args.num('kill-at', args.tiny ? 0.3 : 3);
  const pollIntervalMs = args.num('poll', args.tiny ? 500 : 5_000);
  const heartbeatTimeoutMs = 30_000;
  const statsSeconds = args.tiny ? 2 : 30;
  line(B, `machine: ${await machine()}`);
  line(
    B,
    `settings: N ${n} runs of a ${minutes} min job (sleep, heartbeat file every 10 s) over ${hostCount} sshd hosts, ${handover ? `two workers, one SIGKILLed ${killAtMin} min after the first submission` : 'one worker'} ` +
      `(bin/orbit worker, slots: ${slotSettings()}); pollIntervalMs ${pollIntervalMs}, heartbeatTimeoutMs ${heartbeatTimeoutMs}, syncIntervalSeconds 30 (the job spec's default)`,
  );
  const tmp = await tempDir(`orbit-bench-${B}-`);
  const t = await temporal(args);
  const port = t.address.split(':').pop()!;
  const hosts: SshdServer[] = await Promise.all(Array.from({ length: hostCount }, (_, i) => startSshd({ name: `long-${i + 1}` })));
  const hostsFile = join(tmp.dir, 'hosts.yaml');
  // Room for every run: the figure is about the worker, not the fleet's packing.
  await writeHostsFile(hostsFile, [], hosts.map((h) => h.hostsEntry({ resources: { cpus: 4 * n, memoryGb: 4 * n } })));
  const taskQueue = `bench-long-${randomUUID().slice(0, 8)}`;
  const started: { id: string; host: SshdServer }[] = [];
  const workers = [0, ...(handover ? [1] : [])].map((i) => {
    const logFile = join(tmp.dir, `worker-${i + 1}.log`);
    const proc = spawn(join(REPO, 'bin/orbit'), ['worker'], {
      env: { ...process.env, ORBIT_HOME: join(tmp.dir, 'home'), ORBIT_TEMPORAL_PORT: port, ORBIT_TASK_QUEUE: taskQueue, ORBIT_HOSTS: hostsFile, ORBIT_WORKER_STATS_SECONDS: String(statsSeconds) },
      stdio: ['ignore', openSync(logFile, 'a'), openSync(logFile, 'a')],
      detached: true,
    });
    return { proc, logFile };
  });
  const kill = async (w: (typeof workers)[number], signal: NodeJS.Signals) => {
    if (w.proc.exitCode !== null || w.proc.signalCode !== null) return;
    const gone = new Promise<void>((r) => w.proc.once('exit', () => r()));
    try {
      process.kill(-w.proc.pid!, signal);
    } catch {
      return;
    }
    await Promise.race([gone, sleep(15_000)]);
  };
  try {
    for (const w of workers) {
      for (let i = 0; !readFileSync(w.logFile, 'utf8').includes('orbit worker: task queue'); i++) {
        if (w.proc.exitCode !== null || i > 1200) throw new Error(`worker did not start:\n${readFileSync(w.logFile, 'utf8').slice(-3000)}`);
        await sleep(100);
      }
    }
    const template = join(tmp.dir, 'template');
    const body = `end=$((SECONDS + ${Math.round(minutes * 60)})); while [ $SECONDS -lt $end ]; do printf '%(%s)T\\n' -1 > artifacts/beat.txt; sleep 10 & wait $!; done; echo ok > artifacts/out.txt`;
    const { bundle, digest } = await scriptBundle(template, body);
    await mkdir(join(tmp.dir, 'bundles'));
    const inputs = await pool(
      Array.from({ length: n }, (_, i) => i),
      16,
      async (i): Promise<RunBundleInput> => {
        const runId = `long-${String(i).padStart(4, '0')}-${randomUUID().slice(0, 4)}`;
        const bundleDir = join(tmp.dir, 'bundles', runId);
        await cp(template, bundleDir, { recursive: true });
        return {
          runId,
          bundleDir,
          digest,
          host: hosts[i % hostCount]!.name,
          logFile: bundle.spec.entrypoint.logFile,
          timeouts: bundle.spec.timeouts,
          syncIntervalMs: bundle.spec.sync.intervalSeconds * 1000,
          tuning: { pollIntervalMs, heartbeatTimeoutMs },
        };
      },
    );
    const mems = workers.map((w) => memorySampler(w.proc.pid!, 1000));
    const cpu0 = workers.map((w) => cpuSeconds(descendants(w.proc.pid!)));
    const t0 = Date.now();
    const handles = await pool(inputs, 32, async (input, i) => {
      const h = await t.client.workflow.start(runBundle, { taskQueue, workflowId: input.runId, args: [input] });
      started.push({ id: input.runId, host: hosts[i % hostCount]! });
      return h;
    });
    line(B, `all ${n} submitted in ${s(Date.now() - t0)}`);
    let killedAt: number | undefined;
    let victimCpu = 0;
    if (handover) {
      await sleep(Math.max(0, t0 + killAtMin * 60_000 - Date.now()));
      victimCpu = cpuSeconds(descendants(workers[0]!.proc.pid!)) - cpu0[0]!;
      await kill(workers[0]!, 'SIGKILL');
      killedAt = Date.now();
      line(B, `worker 1 SIGKILLed at ${s(killedAt - t0)} after the first submission`);
    }
    const { failures, reasons } = await outcomes(handles);
    const total = Date.now() - t0;
    const peaks = mems.map((m) => m.stop());
    const cpus = workers.map((w, i) => (i === 0 && handover ? victimCpu : cpuSeconds(descendants(w.proc.pid!)) - cpu0[i]!));

    // ---------------------------------------------------------------- from the histories
    const timelines = await pool(handles, 16, (h) => timeline(h));
    const launchedAt: number[] = [];
    const gaps: number[] = [];
    let retried = 0;
    const retryWhy = new Map<string, number>();
    const moved: number[] = [];
    for (const tl of timelines) {
      const launch = tl.activities.filter((a) => a.type === 'launch').pop();
      const monitors = tl.activities.filter((a) => a.type === 'monitor');
      if (launch?.completed) launchedAt.push(launch.completed - t0);
      const first = monitors[0];
      if (launch?.completed && first?.started && (first.attempt ?? 1) === 1) gaps.push(first.started - launch.completed);
      if (monitors.some((m) => (m.attempt ?? 1) > 1)) retried++;
      for (const m of monitors) if (m.lastFailure) retryWhy.set(m.lastFailure.slice(0, 100), (retryWhy.get(m.lastFailure.slice(0, 100)) ?? 0) + 1);
      if (killedAt) for (const m of monitors) if ((m.attempt ?? 1) > 1 && m.started && m.started > killedAt) moved.push(m.started - killedAt);
    }
    const events = timelines.map((tl) => tl.events);
    const lastRunning = Math.max(...launchedAt);
    line(B, `N ${n}: last run running ${s(lastRunning)} after the first submission (target <= 300 s) ${verdict(lastRunning <= 300_000)}; all done after ${s(total)} for a ${minutes} min job`);
    line(B, `failures ${failures} of ${n} (target 0) ${verdict(failures === 0)}${reasons.size ? `: ${[...reasons].map(([k, v]) => `${v}x ${k}`).join('; ')}` : ''}`);
    if (!handover) line(B, `monitor retries (a heartbeat time-out or a failed attempt): ${retried} of ${n} runs (target 0) ${verdict(retried === 0)}`);
    else line(B, `monitor retries: ${retried} of ${n} runs (the killed worker's monitors, and any other)`);
    if (retryWhy.size) line(B, `monitor retries, the failure before each: ${[...retryWhy].map(([k, v]) => `${v}x ${k}`).join('; ')}`);
    line(
      B,
      `launch -> monitor started (history, first attempt): median ${s(median(gaps))}, p95 ${s(percentile(gaps, 0.95))}, max ${s(Math.max(...gaps))} (target <= one poll interval, ${s(pollIntervalMs)}) ` +
        `${verdict(Math.max(...gaps) <= pollIntervalMs)}; its first batched probe then comes within one more poll interval`,
    );
    if (killedAt) {
      line(
        B,
        `handover: ${moved.length} monitors restarted on worker 2, ${s(percentile(moved, 0.5))} median, max ${s(Math.max(...moved))} after the kill (target <= heartbeat timeout ${s(heartbeatTimeoutMs)} + first retry 1 s + poll) ` +
          `${verdict(moved.length > 0 && Math.max(...moved) <= heartbeatTimeoutMs + 1000 + pollIntervalMs)}`,
      );
    }
    peaks.forEach((p, i) =>
      line(B, `worker ${i + 1} peak RSS ${(p.peakRssKb / 1024).toFixed(0)} MiB (process tree; target <= 1024 MiB) ${verdict(p.peakRssKb <= 1024 * 1024)}; cpu ${cpus[i]!.toFixed(1)} cpu-s${i === 0 && handover ? ' until killed' : ''}`),
    );
    const workerCpu = cpus.reduce((a, b) => a + b, 0);
    line(B, `worker cpu per run: ${((1000 * workerCpu) / n).toFixed(0)} ms for a ${minutes} min run = ${((1000 * workerCpu) / n / minutes).toFixed(1)} ms per run-minute`);
    line(B, `history events per run: min ${Math.min(...events)}, median ${median(events)}, max ${Math.max(...events)} (target <= 60) ${verdict(Math.max(...events) <= 60)}`);

    // ---------------------------------------------------------------- from the stats lines
    for (const [i, w] of workers.entries()) {
      const stats = readFileSync(w.logFile, 'utf8')
        .split('\n')
        .map((l) => /stats: (\d+) monitors, \d+ other activities; last \d+ s: (\d+) probe batches, (\d+) ssh commands.*rss (\d+) MiB/.exec(l))
        .filter((m): m is RegExpExecArray => !!m)
        .map((m) => ({ monitors: Number(m[1]), batches: Number(m[2]), commands: Number(m[3]), rss: Number(m[4]) }));
      // The steady state: every run launched, none ended yet.
      const steady = stats.filter((x) => x.monitors >= (handover ? n / 4 : n) * 0.98);
      if (!steady.length) {
        line(B, `worker ${i + 1}: no stats line with all its runs monitored (${stats.length} lines)`);
        continue;
      }
      const polls = (statsSeconds * 1000) / pollIntervalMs;
      const perPoll = (k: 'batches' | 'commands') => median(steady.map((x) => x[k])) / polls;
      const probesPerPoll = perPoll('batches');
      line(
        B,
        `worker ${i + 1} steady state (${steady.length} stats lines of ${statsSeconds} s, ${median(steady.map((x) => x.monitors))} monitors): probe commands per poll interval ${probesPerPoll.toFixed(2)} for ${hostCount} hosts ` +
          `(target = hosts) ${verdict(probesPerPoll <= hostCount * 1.05)}; all ssh commands per poll interval ${perPoll('commands').toFixed(1)} (the rest: syncs, every 30 s per run) = ${(perPoll('commands') / (pollIntervalMs / 1000)).toFixed(1)}/s; ` +
          `rss ${median(steady.map((x) => x.rss))} MiB`,
      );
    }
  } finally {
    for (const w of workers) await kill(w, 'SIGTERM');
    for (const w of workers) await kill(w, 'SIGKILL');
    for (const r of started) killRun(r.host.workRoot, r.id);
    await Promise.all(hosts.map((h) => h.stop()));
    await t.close();
    await tmp.cleanup();
  }
}

runMain(main);
