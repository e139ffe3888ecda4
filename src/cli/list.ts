/**
 * `orbit list`: runs found with the visibility queries the Web UI uses (Orbit's search attributes),
 * newest first, as a table: id, task, phase, host, start time. Prints the query and a Web UI link
 * that shows the same list.
 */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { parseArgs } from 'node:util';
import type { TemporalTarget } from '../config';
import { SA_HOST, SA_JOB_KIND, SA_PHASE, SA_SWEEP, SA_TASK_TYPE } from '../common/search-attributes';
import { CliError } from './errors';
import { formatTable } from './table';

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
  return formatTable(
    ['id', 'task', 'phase', 'host', 'started'],
    runs.map((r) => [
      r.workflowId,
      r.task ?? (r.jobKind ? `(${r.jobKind})` : undefined),
      r.phase ?? r.status,
      r.host,
      r.startTime.toISOString().replace('T', ' ').slice(0, 19),
    ]),
  );
}

/** The Web UI's workflow list filtered by `query`. */
export function listUiUrl(target: TemporalTarget, query: string): string | undefined {
  if (!target.uiUrl) return undefined;
  const base = `${target.uiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(target.namespace)}/workflows`;
  return query ? `${base}?query=${encodeURIComponent(query)}` : base;
}

export const LIST_HELP = `orbit list [--query Q] [--task T] [--phase P] [--host H] [--sweep S] [--limit N]
  Runs newest first, found with the Web UI's visibility queries on Orbit's search attributes
  (OrbitTaskType, OrbitJobKind, OrbitHost, OrbitPhase, OrbitBundleDigest, OrbitSweep).
  Filters are ANDed; --query takes any visibility query, e.g.
    orbit list --query 'OrbitPhase IN ("failed", "timed-out") AND StartTime > "2026-11-01T00:00:00Z"'`;

export async function listCommand(argv: string[], out: (s: string) => void, connect: () => Promise<{ client: Client; target: TemporalTarget }>): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      query: { type: 'string', short: 'q' },
      task: { type: 'string' },
      phase: { type: 'string' },
      host: { type: 'string' },
      sweep: { type: 'string' },
      limit: { type: 'string', short: 'n', default: '20' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    out(LIST_HELP);
    return 0;
  }
  if (positionals.length) throw new CliError(`orbit list takes no arguments (got ${positionals.join(' ')}); filter with --query, --task, --phase, --host or --sweep`);
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new CliError(`--limit must be a whole number of at least 1 (got ${values.limit})`);
  const query = listQuery(values);
  const { client, target } = await connect();
  let runs: ListedRun[];
  try {
    runs = await listRuns(client, query, limit);
  } catch (e) {
    const cause = (e as Error & { cause?: { code?: number; details?: string } }).cause;
    // gRPC INVALID_ARGUMENT (3): the server refused the query itself.
    if (cause?.code === 3) throw new CliError(`the query ${JSON.stringify(query)} was refused: ${cause.details ?? (e as Error).message}`);
    throw new CliError(`cannot list runs: ${cause?.details ?? (e as Error).message}`, 3);
  }
  out(runs.length ? runsTable(runs) : 'no runs match');
  out(`query: ${query || '(none)'}${runs.length === limit ? `  (first ${limit}; --limit for more)` : ''}`);
  const ui = listUiUrl(target, query);
  if (ui) out(`Web UI: ${ui}`);
  return 0;
}
