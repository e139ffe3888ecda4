import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { runResultOf } from '../../src/common/failures';
import type { RunResult, RunStatus } from '../../src/common/run';
import { statusQuery } from '../../src/workflows';

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

/** Queries the run's status every 200 ms until `ok` holds; throws with the last status after `timeoutMs`. */
export async function waitForStatus(handle: WorkflowHandle, ok: (s: RunStatus) => boolean, timeoutMs = 60_000): Promise<RunStatus> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await handle.query(statusQuery).catch(() => undefined);
    if (s && ok(s)) return s;
    if (Date.now() > end) throw new Error(`timed out waiting for ${handle.workflowId}; last status ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
