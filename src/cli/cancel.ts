/**
 * `orbit cancel RUN... [--reason TEXT] [--all --sweep S | --all --phase P] [--no-wait]`: cancels runs
 * through their workflows. A cancelled runBundle stops its job (TERM to its process group, KILL after
 * the grace), collects what the job wrote and ends cancelled (src/workflows/run-bundle.ts). The reason
 * travels with the cancel request (RequestCancelWorkflowExecution's `reason`; Temporal keeps it in the
 * history) so `orbit result` and `orbit status` show it. By default the command waits for each run's
 * end and prints what was kept; progress goes to stderr, results to stdout.
 *
 * Every named run is looked up before anything is cancelled: one unknown id cancels nothing (exit 2).
 * `--all` selects running runs by Orbit's search attributes and is refused without a filter. With
 * `--sweep` (and no `--phase`) the sweep's running firings are cancelled too, so they start no more cells.
 */
import { isGrpcServiceError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import { randomUUID } from 'node:crypto';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ARTIFACTS_DIR, RUNTIME_LOG } from '../common/layout';
import { COLLECTION_REPORT } from '../common/protocol';
import { ACTIVE_PHASES } from '../common/run';
import { SA_JOB_KIND, SA_PHASE } from '../common/search-attributes';
import { SWEEP_JOB_KIND } from '../sweeps/schedule';
import type { TemporalTarget } from '../config';
import { CliError, EXIT_TEMPORAL, temporalCliError } from './errors';
import { listQuery, listRuns } from './list';
import { awaitRun, describeRun, summarize } from './outcome';

export interface CancelOptions {
  reason?: string;
  all?: boolean;
  sweep?: string;
  phase?: string;
  /** Wait for each run's end (default true; `--no-wait` sets false). */
  wait?: boolean;
}

export interface CancelIo {
  out(s: string): void;
  note(s: string): void;
}

/** The longest reason accepted. */
export const MAX_REASON_CHARS = 1000;
/** The most runs one `--all` cancels. */
export const MAX_SELECTED = 1000;

interface Target {
  id: string;
  /** A sweep firing (runSweep) rather than a run. */
  firing: boolean;
  running: boolean;
  /** How it ended, for one that has: its OrbitPhase, else its workflow status. */
  ended?: string;
}

/** The usage checks, before anything is asked of Temporal; returns the reason to send (trimmed). */
function checkUsage(runIds: string[], o: CancelOptions): string | undefined {
  const reason = o.reason?.trim();
  if (o.reason !== undefined && !reason) throw new CliError('--reason needs a text (why the runs are cancelled)');
  if (reason && reason.length > MAX_REASON_CHARS) throw new CliError(`--reason is ${reason.length} characters; at most ${MAX_REASON_CHARS}`);
  if (o.all && runIds.length) throw new CliError(`give run ids or --all with --sweep/--phase, not both (got ${runIds.join(' ')} and --all)`);
  if (!o.all && (o.sweep !== undefined || o.phase !== undefined)) throw new CliError('--sweep and --phase select runs only with --all: orbit cancel --all --sweep S, orbit cancel --all --phase P');
  if (o.all && !o.sweep && !o.phase) {
    throw new CliError('--all needs --sweep S and/or --phase P: refusing to cancel every running run (orbit list shows them; name them, or filter)');
  }
  if (!o.all && !runIds.length) throw new CliError('name the runs to cancel: orbit cancel RUN... (or orbit cancel --all --sweep S / --all --phase P)');
  if (o.phase !== undefined && !(ACTIVE_PHASES as readonly string[]).includes(o.phase)) {
    throw new CliError(`--phase must be a phase a running run can be in: ${ACTIVE_PHASES.join(', ')} (got "${o.phase}")`);
  }
  return reason || undefined;
}

const notFound = (e: unknown) => e instanceof WorkflowNotFoundError || (isGrpcServiceError(e) && e.code === 5);

function targetOf(d: WorkflowExecutionDescription): Target {
  const phase = d.typedSearchAttributes.get(SA_PHASE);
  const running = d.status.name === 'RUNNING';
  return {
    id: d.workflowId,
    firing: d.typedSearchAttributes.get(SA_JOB_KIND) === SWEEP_JOB_KIND,
    running,
    ...(running ? {} : { ended: typeof phase === 'string' && phase ? phase : d.status.name.toLowerCase() }),
  };
}

/** Each named run, described; one that does not exist fails the whole command before anything is cancelled. */
async function namedTargets(client: Client, target: TemporalTarget, runIds: string[]): Promise<Target[]> {
  const unknown: string[] = [];
  const found: Target[] = [];
  for (const id of [...new Set(runIds)]) {
    try {
      const d = await client.workflow.getHandle(id).describe();
      // The fleet's own workflow and other workflows of the namespace are not runs: never cancelled by id.
      if (d.type !== 'runBundle' && d.type !== 'runSweep') throw new CliError(`${id} is a ${d.type} workflow, not a run or a sweep firing; nothing was cancelled`);
      found.push(targetOf(d));
    } catch (e) {
      if (e instanceof CliError) throw e;
      if (notFound(e)) unknown.push(id);
      else throw temporalCliError(e, target) ?? new CliError(`run ${id}: ${(e as Error).message}`, EXIT_TEMPORAL);
    }
  }
  if (unknown.length) {
    throw new CliError(`no run ${unknown.join(', ')} in namespace "${target.namespace}" at ${target.address}; nothing was cancelled`);
  }
  return found;
}

/** The visibility queries `--all` runs: the running runs the filters select, then (`--sweep` alone) the sweep's running firings. */
export function selectionQueries(o: Pick<CancelOptions, 'sweep' | 'phase'>): { runs: string; firings?: string } {
  const filters = listQuery({ sweep: o.sweep, phase: o.phase });
  const runs = `WorkflowType = "runBundle" AND ExecutionStatus = "Running" AND ${filters}`;
  if (!o.sweep || o.phase) return { runs };
  return { runs, firings: `WorkflowType = "runSweep" AND ExecutionStatus = "Running" AND ${listQuery({ sweep: o.sweep })}` };
}

async function selectedTargets(client: Client, target: TemporalTarget, o: CancelOptions, io: CancelIo): Promise<Target[]> {
  const queries = selectionQueries(o);
  const list = async (query: string, firing: boolean): Promise<Target[]> => {
    try {
      return (await listRuns(client, query, MAX_SELECTED)).map((r) => ({ id: r.workflowId, firing, running: true }));
    } catch (e) {
      const cause = (e as Error & { cause?: { code?: number; details?: string } }).cause;
      if (cause?.code === 3) throw new CliError(`the query ${JSON.stringify(query)} was refused: ${cause.details ?? (e as Error).message}`);
      throw temporalCliError(e, target) ?? new CliError(`cannot list runs: ${(e as Error).message}`, EXIT_TEMPORAL);
    }
  };
  // Firings first: a firing cancelled starts no further cells (and cancels its running ones itself).
  const firings = queries.firings ? await list(queries.firings, true) : [];
  const runs = await list(queries.runs, false);
  io.note(`orbit: ${runs.length} running run${runs.length === 1 ? ' matches' : 's match'} ${queries.runs}${firings.length ? `; and ${firings.length} running firing(s) of sweep ${o.sweep}` : ''}`);
  if (runs.length >= MAX_SELECTED) io.note(`orbit: only the first ${MAX_SELECTED} are cancelled; run the command again for the rest`);
  return [...firings, ...runs];
}

/**
 * Asks Temporal to cancel the workflow, with the reason. False when it ended in the meantime.
 * (WorkflowHandle.cancel() sends no reason; the request itself has the field.)
 */
async function requestCancel(client: Client, id: string, reason: string | undefined): Promise<boolean> {
  try {
    await client.workflowService.requestCancelWorkflowExecution({
      namespace: client.options.namespace,
      identity: client.options.identity,
      requestId: randomUUID(),
      workflowExecution: { workflowId: id },
      ...(reason ? { reason } : {}),
    });
    return true;
  } catch (e) {
    if (notFound(e)) return false; // "workflow execution already completed"
    throw e;
  }
}

/** Files and bytes under `dir`, recursively (symbolic links counted, not followed). */
async function sizeOf(dir: string): Promise<{ files: number; bytes: number }> {
  const total = { files: 0, bytes: 0 };
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      const sub = await sizeOf(path);
      total.files += sub.files;
      total.bytes += sub.bytes;
    } else {
      total.files++;
      total.bytes += (await lstat(path).catch(() => undefined))?.size ?? 0;
    }
  }
  return total;
}

const exists = (path: string) => lstat(path).then(() => true, () => false);

/** What the run's folder here holds of what ran: the job's artifacts, the wrapper's log, the collection report. */
export async function keptLine(bundleDir: string | undefined): Promise<string> {
  if (!bundleDir) return "  kept: unknown (the run's folder is not on this machine; orbit pull RUN brings it)";
  const artifacts = await sizeOf(join(bundleDir, ARTIFACTS_DIR));
  const logs = [];
  for (const f of [RUNTIME_LOG, COLLECTION_REPORT]) if (await exists(join(bundleDir, f))) logs.push(f);
  if (!artifacts.files && !logs.length) return '  kept: nothing: the job never ran on a host (cancelled before it was launched)';
  return `  kept: ${artifacts.files} file${artifacts.files === 1 ? '' : 's'} (${artifacts.bytes} bytes) under ${ARTIFACTS_DIR}/${logs.length ? `, with ${logs.join(' and ')}` : ''}`;
}

/** Waits for one cancelled target's end and prints what it kept. */
async function reportEnd(client: Client, t: Target, io: CancelIo): Promise<void> {
  const handle = client.workflow.getHandle(t.id);
  const run = await awaitRun(handle);
  if (t.firing) {
    io.out(`sweep firing ${t.id}: ${run.status}${run.status === 'cancelled' ? ' (its running cells are cancelled with it, and it starts no more)' : ''}`);
    return;
  }
  const { localFolder } = await import('./result-command');
  run.bundleDir = await localFolder(client, t.id, run.bundleDir, io);
  const summary = await summarize(run).catch(() => undefined);
  if (run.status !== 'cancelled') io.note(`orbit: run ${t.id} ended ${run.status} before the cancel took effect`);
  io.out(describeRun(run, summary));
  if (run.status === 'cancelled') io.out(await keptLine(run.bundleDir));
}

/** Cancels the runs named or selected, with a client already connected. */
export async function cancelWith(client: Client, target: TemporalTarget, runIds: string[], o: CancelOptions, io: CancelIo): Promise<number> {
  const reason = checkUsage(runIds, o);
  const targets = o.all ? await selectedTargets(client, target, o, io) : await namedTargets(client, target, runIds);
  if (o.all && !targets.length) {
    io.out('no running runs match; nothing to cancel');
    return 0;
  }
  const what = (t: Target) => (t.firing ? `sweep firing ${t.id}` : `run ${t.id}`);
  const requested: Target[] = [];
  try {
    for (const t of targets) {
      if (t.running && (await requestCancel(client, t.id, reason))) requested.push(t);
      else io.out(`${what(t)}: already ended (${t.ended ?? targetOf(await client.workflow.getHandle(t.id).describe()).ended}); nothing to cancel`);
    }
    if (o.wait === false) {
      for (const t of requested) io.out(`${what(t)}: cancel requested; not waiting (orbit result ${t.id} shows how it ended and what was kept)`);
      return 0;
    }
    if (requested.length) {
      io.note(`orbit: cancel requested for ${requested.length}; waiting while each job is stopped (TERM, then KILL) and its files come back (Ctrl-C stops waiting, the cancel goes on)`);
    }
    for (const t of requested) await reportEnd(client, t, io);
  } catch (e) {
    throw temporalCliError(e, target) ?? e;
  }
  return 0;
}

/** `orbit cancel`: 0 once every run is cancelled (or had ended already); 2 for bad usage or an unknown run id; 3 when Temporal fails. */
export async function cancelCommand(runIds: string[], options: CancelOptions, io: CancelIo): Promise<number> {
  checkUsage(runIds, options);
  const { connect } = await import('./commands/common');
  const { client, target } = await connect();
  try {
    return await cancelWith(client, target, runIds, options, io);
  } finally {
    await client.connection.close().catch(() => undefined);
  }
}
