/**
 * The activities of a run: stage, launch, monitor, probe, cancel, collect. They know bundles and
 * hosts, never tasks. Built by a factory so the worker injects its host registry; each activity's
 * work is a function of its own (./monitor.ts, ./collection.ts), sharing ./support.ts.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { BundleStateError, BundleTamperedError, UnsafeEntryError } from '../bundle';
import type { ReportLocalInput, CancelInput, CollectInput, LaunchInput, LaunchResult, MonitorInput, Probe, ProbeInput, ResumeInput, StageInput, StageResult } from '../common/activities';
import { ERROR } from '../common/errors';
import { RunNotStagedError } from '../hosts/shell-host';
import { collectRun, reportLocal, stageResume } from './collection';
import { monitorRun } from './monitor';
import { ActivityKit, withHeartbeat, type ActivityDeps } from './support';

export * from '../common/activities';
export { NON_RETRYABLE_ERRORS } from '../common/errors';
export { newestCompleteUnit } from './collection';
export { parsePauseAfter, type ActivityDeps } from './support';

export function createActivities(deps: ActivityDeps) {
  const kit = new ActivityKit(deps);
  const secrets = deps.secretSource ?? process.env;

  return {
    /** Verifies the frozen bundle and uploads it to the host; skips what is already there. */
    async stage(input: StageInput): Promise<StageResult> {
      const bundle = await kit.bundle(input);
      try {
        await bundle.assertDigest(input.digest);
      } catch (e) {
        if (e instanceof BundleTamperedError || e instanceof BundleStateError || e instanceof UnsafeEntryError) throw ApplicationFailure.nonRetryable(e.message, e.name);
        throw e;
      }
      const signal = Context.current().cancellationSignal;
      return kit.pause('stage', await withHeartbeat(() => kit.host(input.host).stage(input.runId, bundle.dir, { signal })));
    },

    /** Starts the staged bundle detached; a repeated call finds the running one and starts nothing. Secrets are resolved here, by name. */
    async launch(input: LaunchInput): Promise<LaunchResult> {
      const bundle = await kit.bundle(input);
      const values: Record<string, string> = {};
      for (const name of bundle.spec.secretEnv) {
        const value = secrets[name];
        if (value === undefined) {
          throw ApplicationFailure.nonRetryable(
            `secret ${name} (job.json secretEnv) is not set in the worker's environment; export ${name} where the worker runs and retry`,
            ERROR.secretMissing,
          );
        }
        values[name] = value;
      }
      try {
        return await kit.pause('launch', await kit.host(input.host).launch(input.runId, { secrets: values, env: input.env }));
      } catch (e) {
        if (e instanceof RunNotStagedError) throw ApplicationFailure.nonRetryable(e.message, e.name);
        throw e;
      }
    },

    /** See ./monitor.ts. */
    monitor: (input: MonitorInput) => monitorRun(kit, input),

    /** One probe, for a host that was lost: does it answer again, and what does the run do? Throws when it does not answer. */
    async probeOnce(input: ProbeInput): Promise<Probe> {
      return kit.host(input.host).probe(input.runId, input.logFile, { timeoutMs: input.probeTimeoutMs });
    },

    stageResume: (input: ResumeInput) => stageResume(kit, input),

    reportLocal: (input: ReportLocalInput) => reportLocal(kit, input),

    /** Stops a run: TERM to its process group, KILL after the grace period. */
    async cancelRun(input: CancelInput): Promise<'stopped' | 'killed' | 'not-running'> {
      return withHeartbeat(() => kit.host(input.host).cancel(input.runId, input.killGraceSeconds, input.why));
    },

    collect: (input: CollectInput) => collectRun(kit, input),
  };
}

export type OrbitActivities = ReturnType<typeof createActivities>;
