/**
 * A run as `orbit logs` needs it: its start input (the task log's name, its store or folder), whether
 * it still runs, and where its job is now (host and phase: the status query, else the search
 * attributes the workflow keeps).
 */
import { WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { isOutcome, type Phase, type RunBundleInput } from '../common/run';
import { SA_HOST, SA_PHASE } from '../common/search-attributes';
import { CliError, temporalCliError, type TemporalWhere } from './errors';
import { queryStatus } from './status-query';

/** How long the status query may take before the search attributes answer instead (no worker polls, say). */
const QUERY_TIMEOUT_MS = 5_000;

export interface LoggedRun {
  client: Client;
  runId: string;
  input: RunBundleInput;
  handle: WorkflowHandle;
}

/** Where the run stands now. */
export interface RunNow {
  running: boolean;
  phase?: Phase;
  /** The host the job is on (undefined while the run waits for a lease). */
  host?: string;
  /** When the workflow closed (the job ended before: a bound on the log's last write). */
  closeTime?: Date;
}

/** Finds the run and reads its start input; an unknown id is a usage error (exit 2), a Temporal failure exit 3. */
export async function findRun(client: Client, target: TemporalWhere, runId: string): Promise<LoggedRun> {
  const handle = client.workflow.getHandle(runId);
  const fail = (e: unknown): never => {
    if (e instanceof WorkflowNotFoundError) throw new CliError(`run ${runId} does not exist in namespace "${target.namespace}" (orbit list shows the runs)`, 2);
    throw temporalCliError(e, target) ?? e;
  };
  const d = await handle.describe().catch(fail);
  if (d.type !== 'runBundle') throw new CliError(`${runId} is a ${d.type} workflow, not a run; orbit logs takes a run id`, 2);
  const history = await client.workflowService
    .getWorkflowExecutionHistory({ namespace: client.options.namespace, execution: { workflowId: runId, runId: d.runId }, maximumPageSize: 1 })
    .catch(fail);
  const payload = history.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) throw new CliError(`run ${runId}: its start event carries no input`, 1);
  const input = await decodeInput(client, payload);
  if (typeof input?.logFile !== 'string') throw new CliError(`run ${runId}: its input names no task log`, 1);
  return { client, runId, input, handle };
}

async function decodeInput(client: Client, payload: Payload): Promise<RunBundleInput | undefined> {
  const converter = client.options.loadedDataConverter;
  let payloads = [payload];
  for (const codec of [...converter.payloadCodecs].reverse()) payloads = await codec.decode(payloads);
  return payloads[0] ? converter.payloadConverter.fromPayload<RunBundleInput>(payloads[0]) : undefined;
}

/** Whether the run still runs, its phase and host: from the status query when a worker answers, else its search attributes. */
export async function runNow(run: LoggedRun): Promise<RunNow> {
  const d = await run.handle.describe();
  const running = d.status.name === 'RUNNING';
  const status = running ? await queryStatus(run.client, run.runId, QUERY_TIMEOUT_MS) : undefined;
  const phase = status?.phase ?? (d.typedSearchAttributes.get(SA_PHASE) as Phase | undefined);
  const host = status?.host ?? d.typedSearchAttributes.get(SA_HOST) ?? run.input.host;
  const placed = host && host !== 'auto' && phase !== 'pending' && phase !== 'queued' ? host : undefined;
  return { running, phase, host: placed, closeTime: d.closeTime };
}

/** The job has ended (or never will run again): what its log holds now is all it will hold. */
export function jobEnded(now: RunNow): boolean {
  return !now.running || now.phase === 'collecting' || (now.phase !== undefined && isOutcome(now.phase));
}
