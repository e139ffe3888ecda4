/**
 * runBundle: the one generic workflow. stage -> launch -> monitor -> collect, for any bundle on any
 * host, carried by Temporal's history through dead workers, a restarted server and vanished hosts.
 * It knows bundles, hosts and phases, never what a task is. Deterministic: activities are imported
 * as types only; time and timers come from the workflow sandbox.
 *
 * A state machine: each step (./run-steps.ts) works on one RunContext and names the next, until the
 * verdict (./verdict.ts). The on-host-lost policies are in ./host-lost.ts.
 *
 *   queue -> launch -> monitor -> collect -> verdict     (queue: wait for a lease from the fleet)
 *   monitor, host lost -> relaunch -> monitor            (policy relaunch, hosts left)
 *                      -> recover -> monitor | stop | collect | give-up
 *   collect, deadline passed -> give-up -> verdict (lost)
 */
import { ActivityFailure, CancellationScope, defineQuery, defineSignal, isCancellation, log, patched, setHandler, upsertMemo } from '@temporalio/workflow';
import type { CollectSummary } from '../common/activities';
import { runFailure } from '../common/failures';
import type { OnHostLost, Phase, RunBundleInput, RunResult, RunStatus } from '../common/run';
import { costOf, leaseGrantedSignal, leaseRefusedSignal, releaseEverything } from './lease';
import { RunContext } from './run-context';
import { collectOnce, STEPS, stopJob, type Step } from './run-steps';
import { verdictOf } from './verdict';

export type { OnHostLost, Phase, RunBundleInput, RunResult, RunStatus };

export const statusQuery = defineQuery<RunStatus>('status');
/** Try collecting from a lost host now instead of at the next backoff. */
export const retryCollectionSignal = defineSignal('retryCollection');

export async function runBundle(input: RunBundleInput): Promise<RunResult> {
  const ctx = new RunContext(input);
  setHandler(statusQuery, () => ctx.status);
  setHandler(retryCollectionSignal, () => void (ctx.retryNow = true));
  setHandler(leaseGrantedSignal, (g) => ctx.inbox.onGrant(g));
  setHandler(leaseRefusedSignal, (r) => ctx.inbox.onRefusal(r));
  // Runs started before the fleet go straight to their host, as they did.
  ctx.leased = patched(FLEET_LEASE);
  if (ctx.leased) ctx.status.leases = ctx.leaseRecords;

  try {
    for (let step: Step = ctx.leased ? 'queue' : 'launch'; step !== 'verdict'; ) step = await STEPS[step](ctx);
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(() => cleanUpAfterCancel(ctx));
      throw err;
    }
    ctx.status.error = failureMessage(err);
    // Runs started before this change end as they did: the failure itself, the job left as it was.
    if (!patched(STOP_JOB_ON_FAILURE)) {
      ctx.setPhase('failed');
      throw err;
    }
    await CancellationScope.nonCancellable(async () => {
      await stopAfterFailure(ctx);
      await releaseEverything(ctx);
    });
    ctx.setPhase('failed');
    const result = resultOf(ctx, 'failed', [ctx.status.error, ...(ctx.status.job ? [ctx.status.job.detail] : [])]);
    throw runFailure(result, `run ${input.runId} failed: ${result.reasons.join('; ')}`);
  }
  return conclude(ctx);
}

/** What failed, in one line: the activity's own message (its failure wraps it in a generic one), prefixed by the activity. */
function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return `${err.activityType}: ${err.cause.message}`;
  return err instanceof Error ? err.message : String(err);
}

/** The patch that makes a run take its host as a lease from the fleet (./fleet.ts) before it launches. */
export const FLEET_LEASE = 'fleet-lease';

/** The patch that makes a failing run stop the job it launched (or record that it could not) before it ends. */
export const STOP_JOB_ON_FAILURE = 'stop-job-on-failure';

/** A step failed for good: the job it launched, if any, is stopped first; one that cannot be is recorded as orphaned. */
async function stopAfterFailure(ctx: RunContext): Promise<void> {
  if (!ctx.launchAttempted) return;
  try {
    const how = await stopJob(ctx);
    if (how !== 'not-running') ctx.recordJob({ state: 'stopped', detail: `the job on ${ctx.status.host} was stopped (${how}) as the run failed` });
  } catch (e) {
    const why = e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e);
    ctx.recordJob({ state: 'orphaned', detail: `the job on ${ctx.status.host} could not be stopped (${why}); it may still be running there` });
  }
}

/** A cancelled run stops its job and brings back what it can before it ends cancelled. */
async function cleanUpAfterCancel(ctx: RunContext): Promise<void> {
  if (ctx.leased && !ctx.launchAttempted) {
    // Cancelled while queued: nothing runs anywhere; only the place in the queue goes.
    await releaseEverything(ctx);
    ctx.setPhase('cancelled');
    return;
  }
  await stopJob(ctx).catch((e: unknown) => log.warn('stopping after cancel failed', { error: String(e) }));
  await releaseEverything(ctx);
  await collectOnce(ctx).catch((e: unknown) => log.warn('collection after cancel failed', { error: String(e) }));
  ctx.setPhase('cancelled');
}

/** The verdict: returned when the run succeeded, thrown (with the result in its details) otherwise. */
async function conclude(ctx: RunContext): Promise<RunResult> {
  const { input, status } = ctx;
  await releaseEverything(ctx);
  const collect = status.collect!;
  if (ctx.lost && patched(STOP_JOB_ON_FAILURE)) ctx.recordJob({ state: 'orphaned', detail: `host ${status.host} never answered again: the job may still be running there` });
  const { status: verdict, reasons } = verdictOf({
    lost: ctx.lost,
    timedOut: ctx.timedOut,
    exitCode: status.exitCode,
    probeState: status.probe?.state,
    collect,
    host: status.host,
    runSeconds: input.timeouts.runSeconds,
    collectDeadlineMs: ctx.tuning.collectDeadlineMs,
    earlier: ctx.reasons,
  });
  const result = resultOf(ctx, verdict, reasons);
  if (result.cost !== undefined) upsertMemo({ cost: result.cost });
  if (verdict === 'succeeded') {
    ctx.setPhase('succeeded');
    return result;
  }
  status.error = reasons.join('; ');
  ctx.setPhase(verdict);
  throw runFailure(result, `run ${input.runId} ${verdict}: ${status.error}`);
}

/** The run's result as it stands (a run that failed before collecting has an empty collection summary). */
function resultOf(ctx: RunContext, verdict: RunResult['status'], reasons: string[]): RunResult {
  const { input, status } = ctx;
  return {
    runId: input.runId,
    status: verdict,
    exitCode: status.exitCode,
    host: status.host,
    ...ctx.bundleAt(),
    digest: input.digest,
    collect: status.collect ?? NOTHING_COLLECTED,
    phases: status.phases,
    relaunches: status.relaunches,
    reasons,
    ...(status.job ? { job: status.job } : {}),
    ...(ctx.leased ? { leases: ctx.leaseRecords } : {}),
    ...(costOf(ctx.leaseRecords) !== undefined ? { cost: costOf(ctx.leaseRecords) } : {}),
    ...(status.health ? { health: status.health } : {}),
  };
}

const NOTHING_COLLECTED: CollectSummary = {
  filesFetched: 0,
  bytesFetched: 0,
  filesSkipped: 0,
  manifestPresent: false,
  verified: false,
  verifiedCount: 0,
  missing: [],
  mismatched: [],
  refused: [],
  missingOutputs: [],
  totals: { missing: 0, mismatched: 0, refused: 0 },
};
