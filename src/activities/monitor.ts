/**
 * The monitor activity: watches a run through its host's batched probe (one command per host per
 * pollIntervalMs for all the worker's monitors there, ./probes.ts), heartbeating on a timer of its own;
 * copies new and grown files back every syncIntervalMs; marks the host unreachable when a probe gets
 * no answer and returns it lost after hostLostAfterMs. Returns when the run ends, its deadline passes
 * (the run is stopped), the host is lost, the host state changes, or chunkMs elapse. A retried call
 * resumes from the last heartbeat (the loss clock keeps running). Cancelled, it stops the run first.
 */
import { CancelledFailure, Context, log } from '@temporalio/activity';
import type { MonitorHeartbeat, MonitorInput, MonitorResult } from '../common/activities';
import type { JobSpec } from '../bundle';
import { sameHealth } from '../common/health';
import { STOP_REASON } from '../common/protocol';
import { HealthWatch } from '../health/watch';
import type { ShellHost } from '../hosts/shell-host';
import type { ProbeSubscription } from './probes';
import type { ActivityKit } from './support';

export async function monitorRun(kit: ActivityKit, input: MonitorInput): Promise<MonitorResult> {
  const ctx = Context.current();
  const h = kit.host(input.host);
  const started = Date.now();
  const beat: MonitorHeartbeat = (ctx.info.heartbeatDetails as MonitorHeartbeat | undefined) ?? {
    hostState: input.hostState === 'unreachable' ? 'unreachable' : 'reachable',
    unreachableSince: input.hostState === 'unreachable' ? input.unreachableSince : undefined,
  };
  // Heartbeat all along, not only between probes: a probe or a sync to a frozen host can take longer
  // than the heartbeat timeout, and a monitor that falls silent then is retried over and over. The
  // pulse starts before the bundle is opened: a worker that takes a moved monitor over may first
  // fetch the run's bundle from the store, and a busy one may take seconds to open it.
  const every = Math.max(200, Math.min(10_000, (ctx.info.heartbeatTimeoutMs ?? 30_000) / 3));
  ctx.heartbeat(beat);
  const pulse = setInterval(() => ctx.heartbeat(beat), every);
  try {
    return await watchRun(kit, h, input, beat, started);
  } finally {
    clearInterval(pulse);
  }
}

async function watchRun(kit: ActivityKit, h: ShellHost, input: MonitorInput, beat: MonitorHeartbeat, started: number): Promise<MonitorResult> {
  const ctx = Context.current();
  const bundle = await kit.bundle(input);
  const spec = bundle.spec;
  const initialState = beat.hostState;
  const synced = { files: 0, bytes: 0 };
  // The health rules, on what the syncs bring; the workflow hears of every change of verdict at once.
  const known = input.health?.report;
  const watch = HealthWatch.wanted(spec) ? new HealthWatch(bundle.dir, spec, beat.health ?? input.health) : undefined;
  const result = (finished: boolean, extra: Partial<MonitorResult> = {}): MonitorResult => ({
    finished,
    timedOut: false,
    hostLost: false,
    hostState: beat.hostState,
    probe: beat.probe,
    synced,
    unreachableSince: beat.unreachableSince,
    ...(watch ? { health: watch.state() } : {}),
    ...extra,
  });
  const probes = kit.probes.of(h).subscribe({ runId: input.runId, taskLogFile: input.logFile, pollIntervalMs: input.pollIntervalMs, probeTimeoutMs: input.probeTimeoutMs });
  try {
    for (;;) {
      // No sleep between rounds: next() waits for the host's next batch (at most one poll interval).
      const answered = await probeInto(beat, probes, input);
      ctx.heartbeat(beat);
      if (!answered && Date.now() - beat.unreachableSince! >= input.hostLostAfterMs) {
        beat.hostState = 'lost';
        return result(true, { hostLost: true, hostState: 'lost' });
      }
      if (beat.hostState !== initialState) return result(false);
      if (answered) {
        const p = beat.probe!;
        // After the launch, a run folder without its launch marker lost its runtime/ (the job deleted it): an end too.
        if (p.state === 'exited' || p.state === 'vanished' || p.state === 'missing' || p.state === 'not-launched') return result(true);
        if (Date.now() >= input.deadlineMs) {
          await h.cancel(input.runId, input.killGraceSeconds, STOP_REASON.timedOut);
          return result(true, { timedOut: true, probe: await h.probe(input.runId, input.logFile) });
        }
        let fetched = false;
        if (input.syncIntervalMs > 0 && Date.now() - (beat.lastSyncAt ?? 0) >= input.syncIntervalMs) {
          const r = await syncOnce(kit, h, input, bundle.dir, spec, beat);
          synced.files += r.files;
          synced.bytes += r.bytes;
          fetched = r.files > 0;
        }
        if (watch) {
          const report = await watch.check(p, fetched);
          beat.health = watch.state();
          if (!sameHealth(report, known)) return result(false);
        }
      }
      if (Date.now() - started >= input.chunkMs) return result(false);
    }
  } catch (e) {
    // Only a cancel the workflow asked for stops the job. A timed-out attempt (this worker was too slow
    // to heartbeat) or a worker shutdown leaves it running for the next attempt to watch.
    if ((e instanceof CancelledFailure || ctx.cancellationSignal.aborted) && ctx.cancellationDetails?.cancelRequested) {
      await h.cancel(input.runId, input.killGraceSeconds, STOP_REASON.cancelled).catch((err: Error) => log.warn('stop after cancel failed', { error: err.message }));
    }
    throw e;
  } finally {
    probes.close();
  }
}

/** The run's next batched probe into the heartbeat; false when the host did not answer (the loss clock starts). */
async function probeInto(beat: MonitorHeartbeat, probes: ProbeSubscription, input: MonitorInput): Promise<boolean> {
  const ctx = Context.current();
  try {
    beat.probe = await probes.next(ctx.cancellationSignal);
    beat.hostState = 'reachable';
    beat.unreachableSince = undefined;
    return true;
  } catch (e) {
    if (ctx.cancellationSignal.aborted) throw e;
    log.warn('probe got no answer', { host: input.host, error: (e as Error).message });
    beat.hostState = 'unreachable';
    beat.unreachableSince ??= Date.now();
    return false;
  }
}

/**
 * Copies new and grown files back while the job runs. A sync that stalls (the host froze mid-transfer)
 * is abandoned and its connection dropped, so it cannot write later; the next probe tells what happened.
 */
async function syncOnce(kit: ActivityKit, h: ShellHost, input: MonitorInput, dir: string, spec: JobSpec, beat: MonitorHeartbeat): Promise<{ files: number; bytes: number }> {
  const ctx = Context.current();
  const stallMs = input.probeTimeoutMs * 2;
  const stall = new AbortController();
  const onCancel = () => stall.abort(ctx.cancellationSignal.reason);
  ctx.cancellationSignal.addEventListener('abort', onCancel, { once: true });
  let watchdog = setTimeout(() => stall.abort(new Error('sync stalled')), stallMs);
  try {
    const r = await h.collect(input.runId, dir, {
      verify: false,
      atomicDirs: spec.sync.atomicDirs,
      signal: stall.signal,
      execTimeoutMs: stallMs,
      onProgress: () => {
        ctx.heartbeat(beat);
        clearTimeout(watchdog);
        watchdog = setTimeout(() => stall.abort(new Error('sync stalled')), stallMs);
      },
    });
    beat.lastSyncAt = Date.now();
    // What the sync brought goes on to the store, so it outlives this worker's machine; a store that
    // does not answer now is tried again at the next sync (the files wait on this worker's disk).
    if (r.filesFetched > 0) await kit.publish(input, dir).catch((e: Error) => log.warn('store upload after sync failed; will try again', { store: input.store, error: e.message }));
    return { files: r.filesFetched, bytes: r.bytesFetched };
  } catch (e) {
    if (ctx.cancellationSignal.aborted) throw e;
    log.warn('sync failed; will try again', { host: input.host, error: (e as Error).message });
    if (stall.signal.aborted) await h.transport.close().catch(() => undefined);
    return { files: 0, bytes: 0 };
  } finally {
    clearTimeout(watchdog);
    ctx.cancellationSignal.removeEventListener('abort', onCancel);
  }
}
