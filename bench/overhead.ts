/**
 * Figure 1, per-run overhead: a bundle whose job sleeps 5 s, run through Orbit (workflow start ->
 * completed and collected; in-process worker, SSH host) and by hand against the same sshd
 * (`scp` the bundle up, `ssh` its scripts/orbit/run.sh, `scp` runtime/ and artifacts/ back). Both run
 * the same generated run.sh. Prints the times, the ratio, the fixed overhead and Orbit's phases.
 *
 *   npx tsx bench/overhead.ts [--tiny] [--reps N] [--sleep SECONDS] [--poll MS] [--temporal HOST:PORT]
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runBundle, type RunBundleInput, type RunResult } from '../src/workflows';
import { scriptBundle, tempDir } from '../test/helpers/bundles';
import { startSshd } from '../test/helpers/sshd';
import { closeMux, HostRegistry, inProcessWorker, line, machine, median, orbitHost, parseArgs, rawScp, rawSsh, runMain, runtimeLogSpan, s, ShellHost, SshTransport, target, temporal, timeline, transportOptions, verdict, withNoDelay } from './lib';

const B = 'overhead';

async function main(): Promise<void> {
  const args = parseArgs();
  const sleepS = args.num('sleep', args.tiny ? 0.5 : 5);
  const reps = args.num('reps', args.tiny ? 1 : 5);
  const pollIntervalMs = args.num('poll', 250);
  line(B, `machine: ${await machine()}`);
  line(B, `settings: job "sleep ${sleepS}", ${reps} rep(s) each, pollIntervalMs ${pollIntervalMs}, heartbeatTimeoutMs 10000, syncIntervalMs 30000 (job.json default), progressEveryMs not set (the workflow's default)`);

  const tmp = await tempDir('orbit-bench-overhead-');
  const t = await temporal(args);
  const sshd = await startSshd({ name: 'bench-overhead' });
  const host = orbitHost(sshd);
  // The same sshd under a second name, through a transport with the TCP_NODELAY prototype (bench/lib.ts withNoDelay).
  const fast = withNoDelay(new ShellHost({ name: `${sshd.name}-nodelay`, workRoot: sshd.workRoot, transport: new SshTransport(transportOptions(sshd)) }));
  const taskQueue = `bench-overhead-${randomUUID().slice(0, 8)}`;
  const worker = await inProcessWorker(t.address, taskQueue, new HostRegistry([host, fast]));
  const body = `echo "job starts"; sleep ${sleepS}; echo done > artifacts/out.txt; echo "job ends"`;

  let n = 0;
  const makeBundle = async () => {
    const dir = join(tmp.dir, `b${++n}`);
    const { bundle, digest } = await scriptBundle(dir, body);
    return { dir, bundle, digest, id: `ovh-${n}-${randomUUID().slice(0, 6)}` };
  };

  /** scp up, ssh run.sh, scp back; with `mux`, the three share one multiplexed connection (opened by the first). */
  const raw = async (mux?: string) => {
    const b = await makeBundle();
    const remote = `${sshd.workRoot}/${b.id}`;
    const back = join(tmp.dir, `${b.id}-back`);
    await mkdir(back);
    const t0 = Date.now();
    const up = await rawScp(sshd, [b.dir], `${target(sshd)}:${remote}`, { mux });
    const runR = await rawSsh(sshd, `bash ${remote}/scripts/orbit/run.sh`, { mux });
    const down = await rawScp(sshd, [`${target(sshd)}:${remote}/runtime`, `${target(sshd)}:${remote}/artifacts`], back, { mux });
    const total = Date.now() - t0;
    if (mux) await closeMux(sshd, mux);
    const span = runtimeLogSpan(await readFile(join(back, 'runtime/runtime.log'), 'utf8'));
    if ((await readFile(join(back, 'artifacts/out.txt'), 'utf8')) !== 'done\n') throw new Error('raw run lost its artifact');
    return { total, up: up.ms, run: runR.ms, down: down.ms, jobMs: span.last - span.first, before: span.first - t0, after: t0 + total - span.last };
  };

  const orbit = async (cold: boolean, via: ShellHost = host) => {
    const b = await makeBundle();
    if (cold) await via.transport.close();
    const input: RunBundleInput = {
      runId: b.id,
      bundleDir: b.dir,
      digest: b.digest,
      host: via.name,
      logFile: b.bundle.spec.entrypoint.logFile,
      timeouts: b.bundle.spec.timeouts,
      syncIntervalMs: b.bundle.spec.sync.intervalSeconds * 1000,
      tuning: { pollIntervalMs, heartbeatTimeoutMs: 10_000 },
    };
    const t0 = Date.now();
    const handle = await t.client.workflow.start(runBundle, { taskQueue, workflowId: b.id, args: [input] });
    const result = (await handle.result()) as RunResult;
    const total = Date.now() - t0;
    if (result.status !== 'succeeded' || !result.collect.verified) throw new Error(`orbit run ${b.id} ended ${result.status}`);
    const span = runtimeLogSpan(await readFile(join(b.dir, 'runtime/runtime.log'), 'utf8'));
    const tl = await timeline(handle);
    const act = (type: string) => tl.activities.find((a) => a.type === type)!;
    const [stage, launch, monitor, collect] = ['stage', 'launch', 'monitor', 'collect'].map(act) as [typeof tl.activities[number], typeof tl.activities[number], typeof tl.activities[number], typeof tl.activities[number]];
    return {
      total,
      events: tl.events,
      jobMs: span.last - span.first,
      before: span.first - t0,
      after: t0 + total - span.last,
      phases: {
        'start->stage scheduled': stage.scheduled - t0,
        'stage queue': stage.started! - stage.scheduled,
        'stage run': stage.completed! - stage.started!,
        'stage->launch': launch.scheduled - stage.completed!,
        'launch queue': launch.started! - launch.scheduled,
        'launch run': launch.completed! - launch.started!,
        'launch done->job first log line': span.first - launch.completed!,
        'launch->monitor': monitor.started! - launch.completed!,
        'job last log line->monitor done': monitor.completed! - span.last,
        'monitor->collect started': collect.started! - monitor.completed!,
        'collect run': collect.completed! - collect.started!,
        'collect->workflow completed': tl.endMs - collect.completed!,
        'workflow completed->client has result': t0 + total - tl.endMs,
      } as Record<string, number>,
    };
  };

  try {
    // Warm-up (not counted): worker caches, python byte code, the page cache, sshd's first fork.
    if (!args.tiny) {
      await raw();
      await orbit(false);
    }
    const raws: Awaited<ReturnType<typeof raw>>[] = [];
    const muxes: Awaited<ReturnType<typeof raw>>[] = [];
    const colds: Awaited<ReturnType<typeof orbit>>[] = [];
    const warms: Awaited<ReturnType<typeof orbit>>[] = [];
    const fasts: Awaited<ReturnType<typeof orbit>>[] = [];
    for (let i = 0; i < reps; i++) {
      const r = await raw();
      const m = await raw(join(tmp.dir, `mux-${i}`));
      muxes.push(m);
      const c = await orbit(true);
      const w = await orbit(false);
      const f = await orbit(true, fast);
      fasts.push(f);
      raws.push(r);
      colds.push(c);
      warms.push(w);
      line(
        B,
        `rep ${i + 1}: raw ${s(r.total)} (scp up ${s(r.up)}, ssh run.sh ${s(r.run)}, scp back ${s(r.down)}) | raw multiplexed ${s(m.total)} | orbit new connection ${s(c.total)} | orbit open connection ${s(w.total)} | orbit new connection + TCP_NODELAY prototype ${s(f.total)}`,
      );
    }
    const rawT = median(raws.map((r) => r.total));
    const coldT = median(colds.map((r) => r.total));
    const warmT = median(warms.map((r) => r.total));
    const muxT = median(muxes.map((r) => r.total));
    line(B, `per-run time (median of ${reps}): raw scp+ssh+scp ${s(rawT)} (${s(muxT)} over one multiplexed connection), orbit ${s(coldT)} (new SSH connection), orbit ${s(warmT)} (worker's connection already open)`);
    line(B, `job itself (run.sh first to last log line, median): raw ${s(median(raws.map((r) => r.jobMs)))}, orbit ${s(median(colds.map((r) => r.jobMs)))}`);
    line(B, `before the job starts (median): raw ${s(median(raws.map((r) => r.before)))}, orbit ${s(median(colds.map((r) => r.before)))}; after it ends: raw ${s(median(raws.map((r) => r.after)))}, orbit ${s(median(colds.map((r) => r.after)))}`);
    const ratio = coldT / rawT;
    line(B, `ratio orbit/raw ${ratio.toFixed(3)} (target <= 1.10) ${verdict(ratio <= 1.1)}; with the connection open ${(warmT / rawT).toFixed(3)}; against raw multiplexed ${(coldT / muxT).toFixed(3)}`);
    const fixed = coldT - rawT;
    line(B, `fixed overhead orbit-raw ${s(fixed)} (target <= 0.5 s) ${verdict(fixed <= 500)}; with the connection open ${s(warmT - rawT)}; against raw multiplexed ${s(coldT - muxT)}; orbit outside the job ${s(median(colds.map((c) => c.total - c.jobMs)))} vs raw ${s(median(raws.map((r) => r.total - r.jobMs)))}`);
    const keys = Object.keys(colds[0]!.phases);
    line(B, `phases of an orbit run (median, new connection): ${keys.map((k) => `${k} ${s(median(colds.map((c) => c.phases[k]!)))}`).join(', ')}`);
    line(B, `history events per run: ${colds[0]!.events}`);
    const fastT = median(fasts.map((r) => r.total));
    line(B, `experiment: orbit with the TCP_NODELAY prototype (new connection) ${s(fastT)}: ratio ${(fastT / rawT).toFixed(3)}, overhead ${s(fastT - rawT)}; phases ${keys.map((k) => `${k} ${s(median(fasts.map((c) => c.phases[k]!)))}`).join(', ')}`);
  } finally {
    await worker.stop();
    await sshd.stop();
    await t.close();
    await tmp.cleanup();
  }
}

runMain(main);
