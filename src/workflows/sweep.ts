/**
 * runSweep: one firing of a sweep's schedule. For every cell (a frozen bundle made by the client), it
 * clones the bundle into this firing's own folder and runs it as a child runBundle, at most
 * `maxConcurrent` at once. It knows cells, bundles and hosts, never what a task is: task type and
 * job kind are opaque labels handed in by the client for search attributes.
 *
 * The firing id is the scheduled time (TemporalScheduledStartTime, set by the schedule; the start
 * time otherwise) as `yyyymmdd-hhmmss` UTC; children are `<sweep>-<firing id>-<cell>`, each in
 * `<firingsDir>/<firing id>/<cell>/`, so firings never overwrite each other.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  ChildWorkflowFailure,
  ParentClosePolicy,
  defineQuery,
  executeChild,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  TerminatedFailure,
  TimeoutFailure,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { CloneActivities } from '../activities/clone';
import { NON_RETRYABLE_ERRORS } from '../common/failures';
import { runResultOf } from '../common/failures';
import type { OutcomeStatus, RunTuning } from '../common/run';
import { runInputFor, runLabelsFor, type RunSpec } from '../common/run-input';
import { SA_PHASE } from '../common/search-attributes';
import { runBundle } from './run-bundle';

/** Set by Temporal on every workflow a schedule starts: the time the firing was scheduled for. */
const SA_SCHEDULED_START = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

export interface SweepCellInput extends RunSpec {
  /** Cell name: its axis value names joined with '.'. */
  name: string;
  /** Sweeps before the store: the cell's frozen bundle folder, built by the client when the sweep was created. */
  bundleDir?: string;
  /** The cell's frozen bundle: its name in the sweep's store. */
  digest: string;
  /** Axis name -> value name, for the memo. */
  axes: Record<string, string>;
}

export interface RunSweepInput {
  sweep: string;
  /**
   * The store that holds the cells' bundles (since the store): each cell runs from there, with no
   * copy, and the firing claims its id there. Absent in sweeps before it: each firing then clones the
   * cells into `<firingsDir>/<firing id>/<cell>/`.
   */
  store?: string;
  firingsDir: string;
  host: string;
  maxConcurrent: number;
  cells: SweepCellInput[];
  /** Passed to every child runBundle. */
  tuning?: RunTuning;
  /** The name `tuning` had in schedules created before it (only pollIntervalMs was set). */
  run?: RunTuning;
  /** Overrides the firing id (a start outside the schedule). */
  firingId?: string;
}

/** A cell before its run, or how its run ended. */
export type CellState = 'pending' | 'cloning' | 'running' | OutcomeStatus;

export interface SweepCellStatus {
  cell: string;
  workflowId: string;
  state: CellState;
  bundleDir?: string;
  error?: string;
}

export interface SweepFiringResult {
  sweep: string;
  firingId: string;
  scheduledAt: string;
  phase: 'running' | 'succeeded' | 'failed' | 'cancelled';
  cells: SweepCellStatus[];
}

export const sweepStatusQuery = defineQuery<SweepFiringResult>('sweepStatus');

/** `2026-11-25T03:00:00Z` -> `20261125-030000`. */
export function firingIdOf(d: Date): string {
  return d.toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-');
}

export function cellWorkflowId(sweep: string, firingId: string, cell: string): string {
  return `${sweep}-${firingId}-${cell}`;
}

function cellStateOf(err: unknown): { state: CellState; error: string } {
  // A child's or an activity's own failure is in its cause; their messages are generic.
  const failure = err instanceof ChildWorkflowFailure || err instanceof ActivityFailure ? (err.cause ?? err) : err;
  const message = failure instanceof Error ? failure.message : String(failure);
  const verdict = runResultOf(failure);
  if (verdict) return { state: verdict.status, error: verdict.message };
  if (failure instanceof CancelledFailure) return { state: 'cancelled', error: 'cancelled' };
  if (failure instanceof TerminatedFailure) return { state: 'failed', error: 'terminated' };
  if (failure instanceof TimeoutFailure) return { state: 'failed', error: 'workflow timed out' };
  return { state: 'failed', error: message };
}

const { cloneBundle, claimFiring } = proxyActivities<CloneActivities>({
  startToCloseTimeout: '1h',
  heartbeatTimeout: '1m',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE_ERRORS },
});

/** Clones one cell's bundle into the firing's folder and runs it as a child runBundle; records how it ended. */
/** Where a cell's run finds its bundle: the store (the frozen cell itself), or a clone in the firing's folder (sweeps before the store). */
async function cellBundle(input: RunSweepInput, firingId: string, cell: SweepCellInput, entry: SweepCellStatus): Promise<{ store?: string; bundleDir?: string; digest: string }> {
  if (input.store) return { store: input.store, digest: cell.digest };
  entry.state = 'cloning';
  const clone = await cloneBundle.executeWithOptions(
    {
      startToCloseTimeout: '1h',
      heartbeatTimeout: '1m',
      summary: `clone ${cell.name}`,
      retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE_ERRORS },
    },
    [{ sourceDir: cell.bundleDir ?? '', digest: cell.digest, destDir: `${input.firingsDir}/${firingId}/${cell.name}` }],
  );
  entry.bundleDir = clone.bundleDir;
  return { bundleDir: clone.bundleDir, digest: clone.digest };
}

async function runCell(input: RunSweepInput, firingId: string, cell: SweepCellInput, entry: SweepCellStatus): Promise<void> {
  try {
    const bundle = await cellBundle(input, firingId, cell, entry);
    entry.state = 'running';
    const runInput = runInputFor({ runId: entry.workflowId, ...bundle }, cell, {
      host: input.host,
      tuning: input.tuning ?? input.run,
    });
    const frozen = cell.bundleDir ?? `${input.store}/bundles/${cell.digest}`;
    const labels = runLabelsFor(runInput, cell, {
      name: cell.name,
      sweep: input.sweep,
      memo: { sweep: input.sweep, firing: firingId, cell: cell.name, axes: cell.axes, frozenBundle: frozen },
      details: [`sweep ${input.sweep}, firing ${firingId}`, `frozen ${frozen}`, `axes ${Object.entries(cell.axes).map(([k, v]) => `${k}=${v}`).join(' ')}`],
    });
    const result = await executeChild(runBundle, { workflowId: entry.workflowId, args: [runInput], parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL, ...labels });
    entry.state = result.status;
  } catch (err) {
    if (isCancellation(err) && !(err instanceof ChildWorkflowFailure)) throw err;
    const { state, error } = cellStateOf(err);
    entry.state = state;
    entry.error = error;
    log.warn(`sweep ${input.sweep} firing ${firingId}: cell ${cell.name} ${state}`, { error });
  }
}

export async function runSweep(input: RunSweepInput): Promise<SweepFiringResult> {
  const info = workflowInfo();
  const scheduledAt = info.typedSearchAttributes.get(SA_SCHEDULED_START) ?? info.startTime;
  const status: SweepFiringResult = {
    sweep: input.sweep,
    firingId: input.firingId ?? firingIdOf(scheduledAt),
    scheduledAt: scheduledAt.toISOString(),
    phase: 'running',
    cells: [],
  };
  setHandler(sweepStatusQuery, () => status);
  if (input.cells.length === 0) throw ApplicationFailure.nonRetryable(`sweep ${input.sweep} has no cells`, 'ValidationError');
  upsertSearchAttributes([{ key: SA_PHASE, value: 'running' }]);

  // The scheduled time names the firing, unless that time already fired (a backfill): then -2, -3...
  const claimed = await claimFiring.executeWithOptions(
    { startToCloseTimeout: '1m', heartbeatTimeout: '1m', summary: `claim firing ${status.firingId}` },
    [{ firingsDir: input.firingsDir, ...(input.store ? { store: input.store, sweep: input.sweep } : {}), firingId: status.firingId, owner: `${info.workflowId}/${info.runId}`, scheduledAt: status.scheduledAt }],
  );
  const firingId = claimed.firingId;
  status.firingId = firingId;
  status.cells = input.cells.map((c) => ({ cell: c.name, workflowId: cellWorkflowId(input.sweep, firingId, c.name), state: 'pending' }));

  const queue = input.cells.map((cell, i) => ({ cell, entry: status.cells[i]! }));
  const lanes = Math.max(1, Math.min(input.maxConcurrent, queue.length));
  try {
    await Promise.all(
      Array.from({ length: lanes }, async () => {
        for (let next = queue.shift(); next; next = queue.shift()) await runCell(input, firingId, next.cell, next.entry);
      }),
    );
    // The last children may end as cancelled without an error reaching here.
    if (CancellationScope.current().consideredCancelled) throw new CancelledFailure(`sweep ${input.sweep} firing ${firingId} was cancelled`);
  } catch (err) {
    if (isCancellation(err)) {
      status.phase = 'cancelled';
      for (const c of status.cells) if (c.state === 'pending' || c.state === 'cloning' || c.state === 'running') c.state = 'cancelled';
      upsertSearchAttributes([{ key: SA_PHASE, value: 'cancelled' }]);
    }
    throw err;
  }

  const bad = status.cells.filter((c) => c.state !== 'succeeded');
  status.phase = bad.length ? 'failed' : 'succeeded';
  upsertSearchAttributes([{ key: SA_PHASE, value: status.phase }]);
  if (bad.length) {
    throw ApplicationFailure.create({
      message: `sweep ${input.sweep} firing ${firingId}: ${bad.length} of ${status.cells.length} cells did not succeed (${bad.map((c) => `${c.cell} ${c.state}`).join(', ')})`,
      type: 'SweepCellsFailed',
      nonRetryable: true,
      details: [status],
    });
  }
  return status;
}
