/**
 * `orbit list`: runs found with the visibility queries the Web UI uses (Orbit's search attributes),
 * newest first, as a table: id, task, phase, host, start time. Prints the query and a Web UI link
 * that shows the same list.
 */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import type { TemporalTarget } from '../config';
import { SA_HOST, SA_JOB_KIND, SA_PHASE, SA_SWEEP, SA_TASK_TYPE } from '../common/search-attributes';
import { CliError } from './errors';
import { emit, formatTime, type Io, type OutputFormat } from './io';
import { formatCsv, formatTable, type Cell } from './table';

export interface ListFilters {
  /** A raw visibility query, ANDed with the filters below. */
  query?: string;
  task?: string;
  phase?: string;
  host?: string;
  sweep?: string;
}

export interface ListedRun {
  workflowId: string;
  task?: string;
  jobKind?: string;
  phase?: string;
  host?: string;
  sweep?: string;
  status: string;
  startTime: Date;
}

/** A visibility query string literal: `"value"` with quotes and backslashes escaped. */
function literal(v: string): string {
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The visibility query for the filters: each one an equality on its search attribute, all ANDed. */
export function listQuery(f: ListFilters): string {
  const parts: string[] = [];
  if (f.task) parts.push(`${SA_TASK_TYPE.name} = ${literal(f.task)}`);
  if (f.phase) parts.push(`${SA_PHASE.name} = ${literal(f.phase)}`);
  if (f.host) parts.push(`${SA_HOST.name} = ${literal(f.host)}`);
  if (f.sweep) parts.push(`${SA_SWEEP.name} = ${literal(f.sweep)}`);
  const raw = f.query?.trim();
  if (raw) parts.unshift(parts.length ? `(${raw})` : raw);
  return parts.join(' AND ');
}

function keyword(info: WorkflowExecutionInfo, key: typeof SA_TASK_TYPE): string | undefined {
  const v = info.typedSearchAttributes.get(key);
  return typeof v === 'string' ? v : undefined;
}

/** Runs matching `query` (all when empty), newest first, at most `limit`. */
export async function listRuns(client: Client, query: string, limit: number): Promise<ListedRun[]> {
  const runs: ListedRun[] = [];
  if (limit <= 0) return runs;
  for await (const info of client.workflow.list({ query: query || undefined, pageSize: Math.min(limit, 1000) })) {
    runs.push({
      workflowId: info.workflowId,
      task: keyword(info, SA_TASK_TYPE),
      jobKind: keyword(info, SA_JOB_KIND),
      phase: keyword(info, SA_PHASE),
      host: keyword(info, SA_HOST),
      sweep: keyword(info, SA_SWEEP),
      status: info.status.name.toLowerCase(),
      startTime: info.startTime,
    });
    if (runs.length >= limit) break;
  }
  return runs;
}

export function runsTable(runs: ListedRun[]): string {
  return formatTable(COLUMNS, rowsOf(runs, formatTime));
}

/** The Web UI's workflow list filtered by `query`. */
export function listUiUrl(target: TemporalTarget, query: string): string | undefined {
  if (!target.uiUrl) return undefined;
  const base = `${target.uiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(target.namespace)}/workflows`;
  return query ? `${base}?query=${encodeURIComponent(query)}` : base;
}

export interface ListFlags extends ListFilters {
  limit: number;
  output: OutputFormat | 'csv';
}

const COLUMNS = ['id', 'task', 'phase', 'host', 'started'];

/** The table: the start time in the one human format (JSON carries ISO). */
function rowsOf(runs: ListedRun[], time: (d: Date) => string): Cell[][] {
  return runs.map((r) => [r.workflowId, r.task ?? (r.jobKind ? `(${r.jobKind})` : undefined), r.phase ?? r.status, r.host, time(r.startTime)]);
}

/** Runs as a table (or JSON, YAML, CSV) on stdout; the query, the limit note and the Web UI link on stderr. */
export async function listCommand(flags: ListFlags, io: Io, connect: () => Promise<{ client: Client; target: TemporalTarget }>): Promise<number> {
  const query = listQuery(flags);
  const { client, target } = await connect();
  let runs: ListedRun[];
  try {
    runs = await listRuns(client, query, flags.limit);
  } catch (e) {
    const cause = (e as Error & { cause?: { code?: number; details?: string } }).cause;
    // gRPC INVALID_ARGUMENT (3): the server refused the query itself.
    if (cause?.code === 3) throw new CliError(`the query ${JSON.stringify(query)} was refused: ${cause.details ?? (e as Error).message}`);
    throw new CliError(`cannot list runs: ${cause?.details ?? (e as Error).message}`, 3);
  }
  if (flags.output === 'csv') io.out(formatCsv(COLUMNS, rowsOf(runs, (d) => d.toISOString())));
  else await emit(io, flags.output, runs, () => io.out(runs.length ? formatTable(COLUMNS, rowsOf(runs, formatTime)) : 'no runs match'));
  io.note(`query: ${query || '(none)'}${runs.length === flags.limit ? `  (first ${flags.limit}; --limit for more)` : ''}`);
  const ui = listUiUrl(target, query);
  if (ui) io.note(`Web UI: ${ui}`);
  return 0;
}
