/** `orbit queue`, and the fleet half of `orbit hosts`: what the task queue's fleet workflow holds. */
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { describeResources, fleetWorkflowId } from '../common/fleet';
import { type FleetView } from '../common/fleet-view';
import type { RunStatus } from '../common/run';
import { taskQueue, type TemporalTarget } from '../config';
import { fleet, fleetQuery, hostDrainSignal } from '../workflows/fleet';
import { CliError, EXIT_TEMPORAL, temporalCliError } from './errors';
import { emit, formatTime, type Io, type OutputFormat } from './io';
import { formatTable } from './table';
import { connectClient } from './connect';

/** How long the fleet's query may take: it is answered by a worker, which may be busy or gone. */
const FLEET_QUERY_MS = 5000;
/**
 * grpc-js's deadline timer can tear the call down ("Call cancelled") a few milliseconds before
 * Date.now() reaches the deadline it was given; a CANCELLED this close to it is the deadline.
 */
const DEADLINE_SLACK_MS = 250;

/**
 * The fleet's state, or undefined when no run has started it yet. The fleet is a workflow, so only a
 * worker can answer: when none polls the task queue, a one-line CliError (exit 3) says so and how to
 * start one, rather than a query left to time out.
 */
export async function fleetViewOf(client: Client): Promise<FleetView | undefined> {
  const handle = client.workflow.getHandle(fleetWorkflowId(taskQueue()));
  const deadline = Date.now() + FLEET_QUERY_MS;
  try {
    return await client.connection.withDeadline(deadline, () => handle.query(fleetQuery));
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) return undefined;
    const { noWorkerWarning, workerPresence } = await import('./presence');
    // The server itself may say no worker polled lately (it fails such a query at once), while its
    // task-queue description still lists the one that stopped a moment ago.
    const missing = noWorkerWarning(noRecentPoller(e) ? { known: true, workers: [] } : await workerPresence(client, taskQueue()), taskQueue());
    if (missing) throw new CliError(`the fleet (workflow ${handle.workflowId}) cannot answer: ${missing.replace(/^warning: /, '')}`, EXIT_TEMPORAL);
    const grpc = (e as { code?: unknown; cause?: { code?: unknown } }).cause?.code ?? (e as { code?: unknown }).code;
    // The deadline can surface as DEADLINE_EXCEEDED or, when the call is torn down at it, as CANCELLED ("Call cancelled").
    if (grpc === 4 /* DEADLINE_EXCEEDED */ || (grpc === 1 /* CANCELLED */ && Date.now() >= deadline - DEADLINE_SLACK_MS)) {
      throw new CliError(
        `the fleet (workflow ${handle.workflowId}) did not answer within ${FLEET_QUERY_MS / 1000} s: a worker polled task queue "${taskQueue()}" lately but none answered (busy, or stopped in the last minutes); check \`orbit worker\``,
        EXIT_TEMPORAL,
      );
    }
    throw e;
  }
}

/** Temporal's answer to a query when no worker polled the workflow's task queue lately ("no poller seen for task queue recently"). */
function noRecentPoller(e: unknown): boolean {
  for (let x: unknown = e, depth = 0; x && depth < 5; x = (x as { cause?: unknown }).cause, depth++) {
    const { message, details } = x as { message?: unknown; details?: unknown };
    if (/no poller seen/i.test(`${String(message ?? '')} ${String(details ?? '')}`)) return true;
  }
  return false;
}

const since = (iso: string, now = Date.now()) => {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${(s / 3600).toFixed(1)}h`;
};

/** Where a queued run stands, for `orbit status`. */
export async function queuePlace(client: Client, runId: string, queued: NonNullable<RunStatus['queued']>): Promise<string> {
  const view = await fleetViewOf(client).catch(() => undefined);
  const entry = view?.queue.find((q) => q.workflowId === runId);
  const head = `queued ${since(queued.since)} for ${describeResources(queued.resources)}${queued.priority ? `, priority ${queued.priority}` : ''}`;
  return entry ? `${head}: position ${entry.position} of ${view!.queue.length}; waiting for ${entry.waitingFor}` : `${head} (the fleet has not taken the request yet)`;
}

export async function runQueue(target: TemporalTarget, io: Io, format: OutputFormat = 'text'): Promise<number> {
  const client = await connectClient(target);
  const view = await fleetViewOf(client).catch((e: Error) => {
    if (e instanceof CliError) throw e;
    throw temporalCliError(e, target) ?? new CliError(`fleet: ${e.message}`, EXIT_TEMPORAL);
  });
  if (format !== 'text') {
    await emit(io, format, { taskQueue: taskQueue(), queue: view?.queue ?? [], leases: view?.leases ?? [] }, () => undefined);
    return 0;
  }
  if (!view) {
    io.out(`no fleet yet on task queue "${taskQueue()}": nothing has been submitted`);
    return 0;
  }
  const rows = [
    ...view.queue.map((q) => [q.workflowId, 'queued', q.position, q.priority, describeResources(q.resources), q.hosts?.join(',') ?? 'auto', '-', since(q.queuedAt)]),
    ...view.leases.map((l) => [l.holder.workflowId, 'leased', '-', l.priority, describeResources({ gpus: l.gpus.length, cpus: l.cpus, memoryGb: l.memoryGb }), l.host, l.gpus.join(',') || '-', since(l.grantedAt)]),
  ];
  io.note(`${view.queue.length} queued, ${view.leases.length} leased (task queue "${taskQueue()}"; the last column is the time waited, or held)`);
  if (rows.length) io.out(formatTable(['run', 'state', 'position', 'priority', 'resources', 'host', 'gpus', 'waiting/held'], rows));
  for (const q of view.queue.slice(0, 10)) io.note(`  #${q.position} ${q.workflowId} waits for ${q.waitingFor}`);
  return 0;
}

/** The fleet's hosts as a table: state, busy/free GPUs, cpus, memory. */
export function hostsTable(view: FleetView): string {
  return formatTable(
    ['host', 'state', 'gpus busy', 'gpus free', 'cpus', 'memory GB', 'leases', 'price/h', 'note'],
    view.hosts.map((h) => {
      const free = h.gpus.total - h.gpus.busy.length;
      return [
        h.name,
        h.condition,
        h.gpus.busy.length ? `${h.gpus.busy.length} [${h.gpus.busy.join(',')}]` : '0',
        `${free}/${h.gpus.total}`,
        `${h.cpus.busy}/${h.cpus.total}`,
        `${h.memoryGb.busy}/${h.memoryGb.total}`,
        h.leases,
        h.pricePerHour,
        h.note ? `${h.note}${h.since ? ` (since ${formatTime(h.since)})` : ''}` : '',
      ];
    }),
  );
}

/** `orbit hosts drain|undrain NAME`: starts the fleet if it is not running yet. */
export async function setHostDrained(target: TemporalTarget, name: string, drained: boolean, io: Io): Promise<number> {
  const client = await connectClient(target);
  await client.workflow
    .signalWithStart(fleet, { workflowId: fleetWorkflowId(taskQueue()), taskQueue: taskQueue(), args: [{}], signal: hostDrainSignal, signalArgs: [{ host: name, drained }] })
    .catch((e: Error) => {
      throw temporalCliError(e, target) ?? new CliError(`fleet: ${e.message}`, EXIT_TEMPORAL);
    });
  io.out(drained ? `${name}: drained: no new leases; its running jobs go on` : `${name}: undrained: takes new leases again`);
  return 0;
}
