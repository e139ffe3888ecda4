/**
 * runBundle: the one generic workflow. stage -> launch -> monitor -> collect, for any bundle on any
 * host, carried by Temporal's history through dead workers, a restarted server and vanished hosts.
 * It knows bundles, hosts and phases, never what a task is. Deterministic: activities are imported
 * as types only; time and timers come from the workflow sandbox.
 *
 * A state machine: each step (./run-steps.ts) works on one RunContext and names the next, until the
 * verdict (./verdict.ts). The on-host-lost policies are in ./host-lost.ts.
 *
 *   launch -> monitor -> collect -> verdict
 *   monitor, host lost -> relaunch -> monitor            (policy relaunch, hosts left)
 *                      -> recover -> monitor | stop | collect | give-up
 *   collect, deadline passed -> give-up -> verdict (lost)
 */
import { CancellationScope, defineQuery, defineSignal, isCancellation, log, setHandler } from '@temporalio/workflow';
import { runFailure } from '../common/failures';
import type { OnHostLost, Phase, RunBundleInput, RunResult, RunStatus } from '../common/run';
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

  try {
    for (let step: Step = 'launch'; step !== 'verdict'; ) step = await STEPS[step](ctx);
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(() => cleanUpAfterCancel(ctx));
      throw err;
    }
    ctx.status.error = err instanceof Error ? err.message : String(err);
    ctx.setPhase('failed');
    throw err;
  }
  return conclude(ctx);
}

/** A cancelled run stops its job and brings back what it can before it ends cancelled. */
async function cleanUpAfterCancel(ctx: RunContext): Promise<void> {
  await stopJob(ctx).catch((e: unknown) => log.warn('stopping after cancel failed', { error: String(e) }));
  await collectOnce(ctx).catch((e: unknown) => log.warn('collection after cancel failed', { error: String(e) }));
  ctx.setPhase('cancelled');
}

/** The verdict: returned when the run succeeded, thrown (with the result in its details) otherwise. */
function conclude(ctx: RunContext): RunResult {
  const { input, status } = ctx;
  const collect = status.collect!;
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
  const result: RunResult = {
    runId: input.runId,
    status: verdict,
    exitCode: status.exitCode,
    host: status.host,
    bundleDir: input.bundleDir,
    digest: input.digest,
    collect,
    phases: status.phases,
    relaunches: status.relaunches,
    reasons,
  };
  if (verdict === 'succeeded') {
    ctx.setPhase('succeeded');
    return result;
  }
  status.error = reasons.join('; ');
  ctx.setPhase(verdict);
  throw runFailure(result, `run ${input.runId} ${verdict}: ${status.error}`);
}
