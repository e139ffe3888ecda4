/**
 * Is a worker there? Asks Temporal which workers polled the task queue lately (DescribeTaskQueue, as
 * `temporal task-queue describe` does), so submit and status can say "no worker" instead of leaving a
 * run pending with no explanation.
 */
import type { Client } from '@temporalio/client';

/** A poller that has not come back within this long is taken as gone (a live worker re-polls within about a minute). */
export const POLLER_FRESH_MS = 90_000;

export interface WorkerPresence {
  /** Workers (their identities) that polled for workflow tasks within POLLER_FRESH_MS. */
  workers: string[];
  /** When asked: undefined when Temporal would not say (the caller then says nothing). */
  known: boolean;
}

function millis(t: { seconds?: unknown; nanos?: number | null } | null | undefined): number | undefined {
  if (!t || t.seconds === undefined || t.seconds === null) return undefined;
  return Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

export async function workerPresence(client: Client, taskQueue: string, now = Date.now()): Promise<WorkerPresence> {
  try {
    const r = await client.workflowService.describeTaskQueue({
      namespace: client.options.namespace,
      taskQueue: { name: taskQueue, kind: 1 /* NORMAL */ },
      taskQueueType: 1 /* WORKFLOW */,
    });
    const workers = (r.pollers ?? [])
      .filter((p) => {
        const at = millis(p.lastAccessTime as { seconds?: unknown; nanos?: number });
        return at === undefined || now - at <= POLLER_FRESH_MS;
      })
      .map((p) => p.identity ?? '?');
    return { workers, known: true };
  } catch {
    return { workers: [], known: false };
  }
}

/** The warning line when no worker polls, naming the command that starts one; undefined when one does (or Temporal would not say). */
export function noWorkerWarning(p: WorkerPresence, taskQueue: string): string | undefined {
  if (!p.known || p.workers.length) return undefined;
  return `warning: no worker is polling task queue "${taskQueue}", so nothing will run until one starts: \`orbit worker\` (same ORBIT_TASK_QUEUE and Temporal settings)`;
}
