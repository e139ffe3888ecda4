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
import { scriptBundle, tempDir } from '../test/helpers/bundles';
import { startSshd, writeHostsFile, type SshdServer } from '../test/helpers/sshd';
import { eventTypes, killRun, line, machine, median, memorySampler, parseArgs, rawScp, rawSsh, REPO, run, runMain, s, sleep, target, temporal, timeline, verdict } from './lib';

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

async function main(): Promise<void> {
  const args = parseArgs();
  const n = args.num('n', args.tiny ? 6 : 500);
  const hostCount = args.num('hosts', args.tiny ? 2 : 5);
  const jobS = args.num('job', args.tiny ? 1 : 10);
  const longS = args.num('long', args.tiny ? 3 : 600);
  const mediumS = args.tiny ? 3 : 60;
  const pollIntervalMs = args.num('poll', args.tiny ? 500 : 5_000);
  const progressShortMs = args.tiny ? 1_500 : 30_000;
  line(B, `machine: ${await machine()}`);
  line(B, `settings: N ${n} runs of "sleep ${jobS}" over ${hostCount} sshd hosts, one worker process (bin/orbit worker, maxConcurrentActivityTaskExecutions 200); pollIntervalMs ${pollIntervalMs}, heartbeatTimeoutMs 30000, syncIntervalMs 30000, progressEveryMs not set (the workflow's default); the rest defaults but the poll`);

  const tmp = await tempDir('orbit-bench-scale-');
  const t = await temporal(args);
  const port = t.address.split(':').pop()!;
  const hosts: SshdServer[] = await Promise.all(Array.from({ length: hostCount }, (_, i) => startSshd({ name: `scale-${i + 1}` })));
  const eventsHost = await startSshd({ name: 'scale-events' });
  const hostsFile = join(tmp.dir, 'hosts.yaml');
  await writeHostsFile(hostsFile, [...hosts, eventsHost]);
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
      const perReturn = extraReturns > 0 ? (total(longP.types) - total(shortP.types)) / extraReturns : NaN;
      line(B, `each extra monitor return (one per progressEveryMs of run time) adds ${perReturn} events: ${diff(shortP.types, longP.types) || 'none'}`);
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
    let failures = 0;
    const reasons = new Map<string, number>();
    const durations = await Promise.all(
      handles.map(async ({ h, startedAt }) => {
        try {
          const r = (await h.result()) as RunResult;
          if (r.status !== 'succeeded') throw new Error(r.status);
        } catch (e) {
          failures++;
          const why = String((e as Error).message).slice(0, 120);
          reasons.set(why, (reasons.get(why) ?? 0) + 1);
        }
        return Date.now() - startedAt;
      }),
    );
    const total = Date.now() - t0;
    const cpu1 = cpuTimes();
    const workerCpu = cpuSeconds(descendants(worker.pid!)) - workerCpu0;
    const peak = mem.stop();
    const sorted = [...durations].sort((a, b) => a - b);
    const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
    line(B, `N ${n}: all started in ${s(allStarted)}; last completed after ${s(total)}; per run (start -> result) median ${s(median(durations))}, p95 ${s(pct(0.95))}, max ${s(sorted[sorted.length - 1]!)} for a ${jobS} s job`);
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

runMain(main);
