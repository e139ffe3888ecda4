/** The run's `status` query with a short deadline: shared by status, logs, follow and diagnose. */
import type { Client } from '@temporalio/client';
import type { RunStatus } from '../common/run';

/** How long a status query may take before the caller answers from the workflow's own state instead. */
export const QUERY_DEADLINE_MS = 3000;

/** The run's status query, or undefined when no answer comes within the deadline. */
export async function queryStatus(client: Client, id: string, deadlineMs = QUERY_DEADLINE_MS): Promise<RunStatus | undefined> {
  return client.connection.withDeadline(Date.now() + deadlineMs, () => client.workflow.getHandle(id).query<RunStatus>('status')).catch(() => undefined);
}
