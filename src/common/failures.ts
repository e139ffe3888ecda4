/**
 * How a run that did not succeed fails. A run's verdict travels
 * as an ApplicationFailure whose type names the outcome and whose first detail is the RunResult;
 * runResultOf() reads it back wherever the failure is seen (client, parent workflow). Node-free.
 */
export { ERROR, NON_RETRYABLE_ERRORS } from './errors';
import { ApplicationFailure } from '@temporalio/common';
import type { RunResult, RunVerdictStatus } from './run';

/** The ApplicationFailure type of each unsuccessful verdict. */
export const RUN_FAILURE_TYPE = {
  failed: 'RunFailed',
  'timed-out': 'RunTimedOut',
  lost: 'RunLost',
} as const satisfies Record<Exclude<RunVerdictStatus, 'succeeded'>, string>;

export type RunFailureType = (typeof RUN_FAILURE_TYPE)[keyof typeof RUN_FAILURE_TYPE];

const STATUS_OF_TYPE = new Map<string, Exclude<RunVerdictStatus, 'succeeded'>>(
  Object.entries(RUN_FAILURE_TYPE).map(([status, type]) => [type, status as Exclude<RunVerdictStatus, 'succeeded'>]),
);

/** The failure runBundle throws for an unsuccessful verdict. */
export function runFailure(result: RunResult, message: string): ApplicationFailure {
  if (result.status === 'succeeded') throw new Error('a succeeded run has no failure');
  return ApplicationFailure.create({ message, type: RUN_FAILURE_TYPE[result.status], nonRetryable: true, details: [result] });
}

/**
 * The verdict inside a failure, if there is one: walks the cause chain (WorkflowFailedError,
 * ChildWorkflowFailure, ActivityFailure wrap it) to the run's ApplicationFailure.
 */
export function runResultOf(err: unknown): { status: Exclude<RunVerdictStatus, 'succeeded'>; result?: RunResult; message: string } | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (!(e instanceof ApplicationFailure) || !e.type) continue;
    const status = STATUS_OF_TYPE.get(e.type);
    if (!status) continue;
    const result = e.details?.[0] as RunResult | undefined;
    return { status, result: result && typeof result === 'object' ? result : undefined, message: e.message };
  }
  return undefined;
}
