/**
 * The steps of runBundle, one function each over the RunContext. Each does its work and names the
 * step that comes next; runBundle loops over them until the verdict. The order of activities, timers
 * and search-attribute updates here is what recorded histories replay against: change it only with
 * patched().
 */
import type { Duration } from '@temporalio/common';
import { isCancellation, log, patched } from '@temporalio/workflow';
import { ENV } from '../common/protocol';
import { HOST_LOST_POLICIES } from './host-lost';
import { acquireLease, leaseEnv, releaseLease, reportHostLost } from './lease';
import type { RunContext } from './run-context';

export type Step = 'queue' | 'launch' | 'monitor' | 'relaunch' | 'recover' | 'stop' | 'health-stop' | 'collect' | 'give-up' | 'verdict';

/** The patch that records the health rules' verdicts and acts on them (runs started before it have none). */
export const HEALTH_VERDICTS = 'health-verdicts';

/** The patch that schedules monitors on the monitors' own task queue (runs before it watched theirs on the run's queue). */
export const MONITOR_QUEUE = 'monitor-queue';

const seconds = (s: number): Duration => `${s}s`;

/** Stages the bundle on the current host and starts it (again, after a relaunch, with its resume env). */
async function stageAndLaunch(ctx: RunContext, resumeEnv?: Record<string, string>): Promise<void> {
  const { input, status, acts } = ctx;
  const env = { ...leaseEnv(status.lease), ...resumeEnv };
  ctx.setPhase('staging');
  status.stage = await acts.control.stage.executeWithOptions({ startToCloseTimeout: seconds(input.timeouts.stageSeconds), summary: `stage on ${status.host}` }, [
    { ...ctx.ref(), ...ctx.bundleAt(), digest: input.digest },
  ]);
  ctx.setPhase('launching');
  ctx.launchAttempted = true;
  status.launch = await acts.control.launch.executeWithOptions({ startToCloseTimeout: '2m', summary: `launch on ${status.host}` }, [
    { ...ctx.ref(), ...ctx.bundleAt(), env: Object.keys(env).length ? env : undefined },
  ]);
  ctx.setPhase('running');
}

/** Waits, queued, for a lease on the pinned host or any that fits; the run moves to the granted host. */
export async function queue(ctx: RunContext): Promise<Step> {
  await acquireLease(ctx, { hosts: ctx.pinned });
  return 'launch';
}

export async function launch(ctx: RunContext): Promise<Step> {
  await stageAndLaunch(ctx);
  ctx.runDeadlineMs = Date.now() + ctx.input.timeouts.runSeconds * 1000;
  return 'monitor';
}

/** Watches the job until it ends, times out, or its host is lost. */
export async function monitor(ctx: RunContext): Promise<Step> {
  const { input, status, acts, tuning } = ctx;
  for (;;) {
    const proxy = patched(MONITOR_QUEUE) ? acts.monitorOwnQueue : acts.monitor;
    const m = await proxy.monitor.executeWithOptions(
      { startToCloseTimeout: tuning.progressEveryMs + tuning.hostLostAfterMs + 10 * 60_000, summary: `monitor on ${status.host}` },
      [
        {
          ...ctx.ref(),
          ...ctx.bundleAt(),
          logFile: input.logFile,
          pollIntervalMs: tuning.pollIntervalMs,
          deadlineMs: ctx.runDeadlineMs!,
          killGraceSeconds: input.timeouts.killGraceSeconds,
          chunkMs: tuning.progressEveryMs,
          syncIntervalMs: input.syncIntervalMs ?? 30_000,
          hostLostAfterMs: tuning.hostLostAfterMs,
          probeTimeoutMs: tuning.probeTimeoutMs,
          hostState: status.hostState,
          unreachableSince: ctx.unreachableSince,
          ...(ctx.health ? { health: ctx.health } : {}),
        },
      ],
    );
    ctx.unreachableSince = m.unreachableSince;
    if (m.probe) status.probe = m.probe;
    status.synced.files += m.synced.files;
    status.synced.bytes += m.synced.bytes;
    ctx.setHostState(m.hostState);
    if (m.hostLost) {
      reportHostLost(ctx, status.host);
      return HOST_LOST_POLICIES[ctx.onHostLost].onLost(ctx);
    }
    if (m.health && patched(HEALTH_VERDICTS)) {
      ctx.health = m.health;
      if (m.health.report) {
        ctx.setHealth(m.health.report);
        if (!m.finished) {
          const next = actOnHealth(ctx);
          if (next) return next;
        }
      }
    }
    if (m.finished) {
      // The job no longer runs: its GPUs go back before collection.
      releaseLease(ctx);
      status.exitCode = m.probe?.exitCode ?? null;
      if (m.timedOut) ctx.timedOut = true;
      return 'collect';
    }
  }
}

/** The step an unhealthy verdict leads to (its first finding whose policy is not warn), if any. */
function actOnHealth(ctx: RunContext): Step | undefined {
  const report = ctx.status.health;
  const acted = report?.findings.find((f) => f.level === 'unhealthy' && ctx.policyOf(f) !== 'warn');
  if (!acted) return undefined;
  const reason = `unhealthy: ${acted.rule}: ${acted.summary}`;
  if (ctx.policyOf(acted) === 'relaunch' && ctx.healthRelaunches < (ctx.input.maxRelaunches ?? 1) && ctx.relaunchTargets.length > 0) {
    ctx.healthRelaunches++;
    ctx.pendingHealthRelaunch = reason;
    return 'health-stop';
  }
  ctx.pendingHealthRelaunch = undefined;
  ctx.reasons.push(
    ctx.policyOf(acted) === 'relaunch' ? `${reason}; stopped: no relaunch left (${ctx.healthRelaunches} of ${ctx.input.maxRelaunches ?? 1} used, ${ctx.relaunchTargets.length} host(s) left)` : `${reason}; stopped (onUnhealthy stop)`,
  );
  return 'health-stop';
}

/** Stops an unhealthy job (TERM, then KILL): then collects and fails, or relaunches it on another host from its newest synced checkpoint. */
export async function healthStop(ctx: RunContext): Promise<Step> {
  await stopJob(ctx);
  const relaunchWhy = ctx.pendingHealthRelaunch;
  ctx.pendingHealthRelaunch = undefined;
  if (relaunchWhy) {
    log.warn(`run ${ctx.input.runId}: ${relaunchWhy}; relaunching elsewhere`);
    // The next host starts with a fresh verdict: its job has not shown anything yet.
    ctx.health = undefined;
    return 'relaunch';
  }
  releaseLease(ctx);
  // How the stopped job ended, for the verdict (a stop answers with how it stopped, not the exit code).
  try {
    const p = await ctx.acts.probe.probeOnce.executeWithOptions({ startToCloseTimeout: ctx.tuning.probeTimeoutMs + 10_000, summary: `probe ${ctx.status.host}` }, [
      { ...ctx.ref(), logFile: ctx.input.logFile, probeTimeoutMs: ctx.tuning.probeTimeoutMs },
    ]);
    ctx.status.probe = p;
    ctx.status.exitCode = p.exitCode;
  } catch (err) {
    if (isCancellation(err)) throw err;
    // No answer: the collection that follows retries the host, and the verdict has the rule as its reason.
  }
  return 'collect';
}

/**
 * Moves the run to another relaunch host with the newest synced unit folder, and starts it there: a
 * leased run gives back its lease on the lost host and queues for one on the others.
 */
export async function relaunch(ctx: RunContext): Promise<Step> {
  const { input, status, acts } = ctx;
  const from = status.host;
  let to: string;
  if (ctx.leased) {
    releaseLease(ctx);
    to = (await acquireLease(ctx, { hosts: [...ctx.relaunchTargets], avoid: [from] })).host;
    ctx.relaunchTargets.splice(ctx.relaunchTargets.indexOf(to), 1);
  } else {
    to = ctx.relaunchTargets.shift()!;
    ctx.moveTo(to);
  }
  const resume = await acts.control.stageResume.executeWithOptions(
    { startToCloseTimeout: seconds(input.timeouts.stageSeconds), summary: `stage resume state on ${to}` },
    [{ ...ctx.ref(), ...ctx.bundleAt() }],
  );
  status.relaunches.push({ from, to, resumeFrom: resume.localPath, at: new Date().toISOString() });
  await stageAndLaunch(ctx, resume.remotePath ? { [ENV.resumeFrom]: resume.remotePath } : undefined);
  return 'monitor';
}

/** After loss: probes the host, with backoff, until it answers or the collection deadline passes. */
export async function recover(ctx: RunContext): Promise<Step> {
  const { input, status, acts, tuning } = ctx;
  ctx.setPhase('recovering');
  ctx.setHostState('lost');
  for (;;) {
    try {
      const p = await acts.probe.probeOnce.executeWithOptions({ startToCloseTimeout: tuning.probeTimeoutMs + 10_000, summary: `probe ${status.host}` }, [
        { ...ctx.ref(), logFile: input.logFile, probeTimeoutMs: tuning.probeTimeoutMs },
      ]);
      status.probe = p;
      ctx.recovered();
      if (p.state === 'running' || p.state === 'starting') {
        const next = HOST_LOST_POLICIES[ctx.onHostLost].onStillRunning;
        if (next === 'monitor') ctx.setPhase('running');
        return next;
      }
      status.exitCode = p.exitCode;
      return 'collect';
    } catch (err) {
      if (isCancellation(err)) throw err;
      if (!(await ctx.waitBeforeRetry())) return 'give-up';
    }
  }
}

/** Stops a job whose host came back after it was lost (policy fail). */
export async function stop(ctx: RunContext): Promise<Step> {
  await stopJob(ctx);
  releaseLease(ctx);
  ctx.reasons.push(`host ${ctx.status.host} was lost for more than ${ctx.tuning.hostLostAfterMs / 1000}s; the job was stopped when it answered again`);
  return 'collect';
}

export function stopJob(ctx: RunContext) {
  return ctx.acts.control.cancelRun.executeWithOptions({ startToCloseTimeout: '5m', summary: `stop on ${ctx.status.host}` }, [
    { ...ctx.ref(), killGraceSeconds: ctx.input.timeouts.killGraceSeconds },
  ]);
}

export function collectOnce(ctx: RunContext) {
  return ctx.acts.collect.collect.executeWithOptions(
    { startToCloseTimeout: seconds(ctx.input.timeouts.collectSeconds), summary: `collect from ${ctx.status.host}` },
    [{ ...ctx.ref(), ...ctx.bundleAt() }],
  );
}

/** Collects, retrying with backoff until the host answers or the collection deadline passes. */
export async function collect(ctx: RunContext): Promise<Step> {
  const { status } = ctx;
  ctx.setPhase('collecting');
  for (;;) {
    status.collectAttempts++;
    try {
      status.collect = await collectOnce(ctx);
      ctx.recovered();
      return 'verdict';
    } catch (err) {
      if (isCancellation(err)) throw err;
      ctx.setHostState('unreachable');
      log.warn(`collection from ${status.host} failed; retrying until the deadline`, { error: String(err) });
      if (!(await ctx.waitBeforeRetry())) return 'give-up';
    }
  }
}

/** The host never came back: records what the local bundle holds, and the run ends lost. */
export async function giveUp(ctx: RunContext): Promise<Step> {
  const { input, status } = ctx;
  ctx.lost = true;
  status.collect = await ctx.acts.control.reportLocal.executeWithOptions({ startToCloseTimeout: '10m', summary: 'report what was kept' }, [
    { ...ctx.bundleAt(), runId: input.runId, host: status.host, reason: `host ${status.host} did not answer before the collection deadline` },
  ]);
  return 'verdict';
}

export const STEPS: Record<Exclude<Step, 'verdict'>, (ctx: RunContext) => Promise<Step>> = {
  queue,
  launch,
  monitor,
  relaunch,
  recover,
  stop,
  'health-stop': healthStop,
  collect,
  'give-up': giveUp,
};
