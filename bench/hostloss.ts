/**
 * Figure 5, host-loss detection latency: a run's sshd is killed (SIGKILL to sshd and its sessions:
 * the kernel resets the connection) while its job runs; the time until the workflow's status query
 * shows hostState "unreachable". Repeated after the host returns (the same run goes back to
 * "reachable"), then once with the host frozen instead (SIGSTOP: the port still accepts TCP, nothing
 * answers, no reset: a vanished VM or a partition), which only a probe timeout can tell.
 * The raw-tools analogue is printed alongside: how long a plain `ssh` takes to fail against the same
 * dead or frozen host (ConnectTimeout / ServerAlive settings of a typical watchdog loop).
 *
 *   npx tsx bench/hostloss.ts [--tiny] [--reps N] [--temporal HOST:PORT]
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runBundle, statusQuery, type RunBundleInput, type RunStatus } from '../src/workflows';
import { scriptBundle, tempDir } from '../test/helpers/bundles';
import { startSshd } from '../test/helpers/sshd';
import { HostRegistry, inProcessWorker, killRun, line, machine, median, orbitHost, parseArgs, rawSsh, runMain, s, sleep, temporal, verdict } from './lib';
import type { WorkflowHandle } from '@temporalio/client';

const B = 'hostloss';

async function main(): Promise<void> {
  const args = parseArgs();
  const reps = args.num('reps', args.tiny ? 1 : 3);
  const heartbeatTimeoutMs = args.num('heartbeat', args.tiny ? 3_000 : 10_000);
  const pollIntervalMs = args.num('poll', args.tiny ? 300 : 1_000);
  const probeTimeoutMs = args.num('probe-timeout', args.tiny ? 1_500 : 5_000);
  const bound = heartbeatTimeoutMs + pollIntervalMs;
  line(B, `machine: ${await machine()}`);
  line(B, `settings: heartbeatTimeoutMs ${heartbeatTimeoutMs}, pollIntervalMs ${pollIntervalMs}, probeTimeoutMs ${probeTimeoutMs}, hostLostAfterMs 600000; target: detection <= heartbeat timeout + one poll = ${s(bound)}`);

  const tmp = await tempDir('orbit-bench-hostloss-');
  const t = await temporal(args);
  const sshd = await startSshd({ name: 'bench-loss' });
  const taskQueue = `bench-loss-${randomUUID().slice(0, 8)}`;
  const worker = await inProcessWorker(t.address, taskQueue, new HostRegistry([orbitHost(sshd, { readyTimeoutMs: probeTimeoutMs })]));
  let handle: WorkflowHandle | undefined;
  let runId: string | undefined;
  try {
    const bundleDir = join(tmp.dir, 'bundle');
    const { bundle, digest } = await scriptBundle(bundleDir, 'for i in $(seq 3600); do echo "tick $i"; sleep 1; done');
    const input: RunBundleInput = {
      runId: `loss-${randomUUID().slice(0, 8)}`,
      bundleDir,
      digest,
      host: sshd.name,
      logFile: bundle.spec.entrypoint.logFile,
      timeouts: { ...bundle.spec.timeouts, killGraceSeconds: 1 },
      syncIntervalMs: 30_000,
      tuning: { pollIntervalMs, heartbeatTimeoutMs, probeTimeoutMs, hostLostAfterMs: 600_000 },
    };
    runId = input.runId;
    handle = await t.client.workflow.start(runBundle, { taskQueue, workflowId: input.runId, args: [input] });
    const h = handle;
    const waitFor = async (ok: (st: RunStatus) => boolean, timeoutMs: number, what: string) => {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const st = await h.query(statusQuery).catch(() => undefined);
        if (st && ok(st)) return Date.now();
        if (Date.now() > end) throw new Error(`no ${what} within ${timeoutMs} ms; last status ${JSON.stringify(st)?.slice(0, 500)}`);
        await sleep(25);
      }
    };
    // The status shows a probe only when a monitor chunk returns (progressEveryMs); the job's pid file tells it runs.
    await waitFor((st) => st.phase === 'running' && existsSync(join(sshd.workRoot, input.runId, 'runtime/pid')), 60_000, 'running job');

    const killed: number[] = [];
    const back: number[] = [];
    for (let i = 0; i < reps; i++) {
      // Land the death anywhere within a poll interval.
      await sleep((args.tiny ? 200 : 1_000) + Math.random() * pollIntervalMs);
      await sshd.kill();
      const deadAt = Date.now();
      const seenAt = await waitFor((st) => st.hostState === 'unreachable', bound * 3 + 30_000, 'unreachable host');
      killed.push(seenAt - deadAt);
      await sshd.start();
      const upAt = Date.now();
      await waitFor((st) => st.hostState === 'reachable' && st.phase === 'running', 60_000, 'reachable host');
      back.push(Date.now() - upAt);
      line(B, `rep ${i + 1}: sshd killed -> unreachable in ${s(killed[i]!)}; restarted -> reachable again in ${s(back[i]!)}`);
    }
    const k = median(killed);
    line(B, `detection latency, host killed (median of ${reps}, max ${s(Math.max(...killed))}): ${s(k)}; ratio to the bound ${(k / bound).toFixed(3)} (target <= heartbeat timeout + one poll = ${s(bound)}) ${verdict(Math.max(...killed) <= bound)}`);

    await sleep((args.tiny ? 200 : 1_000) + Math.random() * pollIntervalMs);
    sshd.pause();
    const frozenAt = Date.now();
    const frozenSeen = await waitFor((st) => st.hostState === 'unreachable', bound * 3 + 30_000, 'unreachable frozen host');
    const frozen = frozenSeen - frozenAt;
    sshd.resume();
    await waitFor((st) => st.hostState === 'reachable', 60_000, 'reachable host after the freeze');
    line(B, `detection latency, host frozen (SIGSTOP, no reset): ${s(frozen)}; ratio to the bound ${(frozen / bound).toFixed(3)} (target <= ${s(bound)}; probeTimeoutMs ${probeTimeoutMs} + one poll bounds it) ${verdict(frozen <= bound)}`);

    // The raw tools: how fast a plain ssh (a watchdog loop's probe) fails against the same dead and frozen host.
    const connectTimeout = Math.max(1, Math.floor(probeTimeoutMs / 1000));
    const opts = { allowFail: true, sshExtra: ['-o', `ConnectTimeout=${connectTimeout}`] };
    await sshd.kill();
    const rawDead = await rawSsh(sshd, 'true', opts);
    await sshd.start();
    sshd.pause();
    const rawFrozen = await rawSsh(sshd, 'true', opts);
    sshd.resume();
    line(
      B,
      `raw ssh (ConnectTimeout=${connectTimeout}) fails in ${s(rawDead.ms)} against the killed host and ${s(rawFrozen.ms)} against the frozen one: ` +
        `a watchdog loop polling every ${s(pollIntervalMs, 1)} notices within ${s(pollIntervalMs + rawDead.ms)} and ${s(pollIntervalMs + rawFrozen.ms)}`,
    );
  } finally {
    if (handle) await handle.terminate('benchmark over').catch(() => undefined);
    if (runId) killRun(sshd.workRoot, runId);
    await worker.stop();
    await sshd.stop();
    await t.close();
    await tmp.cleanup();
  }
}

runMain(main);
