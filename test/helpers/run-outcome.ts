import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { runResultOf } from '../../src/common/failures';
import type { RunResult } from '../../src/common/run';

/** A run's RunResult however it ended: returned on success, read from the failure's details otherwise. */
export async function runOutcome(handle: WorkflowHandle): Promise<RunResult> {
  try {
    return (await handle.result()) as RunResult;
  } catch (e) {
    const verdict = e instanceof WorkflowFailedError ? runResultOf(e) : undefined;
    if (verdict?.result) return verdict.result;
    throw e;
  }
}
