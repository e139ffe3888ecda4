/**
 * `orbit sweep results`: every cell of one firing (the latest by default), its run's status and its
 * task plugin's summary (summarizeResult) as metric columns. Table, CSV or JSON. A cell whose run
 * never started (its bundle refused at clone) is read from the firing's own status, with the reason.
 */
import { WorkflowFailedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Bundle, verifyManifest } from '../bundle';
import type { TaskRegistry } from '../plugins/registry';
import type { RunOutcome } from '../plugins/types';
import { FIRINGS_DIR, firingIds, readFiring, type SweepRecord } from '../sweeps/store';
import { cellWorkflowId, sweepStatusQuery, type SweepFiringResult } from '../workflows/sweep';
import { SA_PHASE } from '../common/search-attributes';
import { CliError } from './errors';
import { awaitRun, runFolder } from './outcome';
import { StoreError } from '../store/store';
import { formatCsv, formatTable, type Cell } from './table';

export interface CellResult {
  cell: string;
  axes: Record<string, string>;
  workflowId: string;
  /** succeeded, failed, timed-out, cancelled, lost; running (with its phase), cloning or pending while the firing goes on. */
  status: string;
  phase?: string;
  bundleDir?: string;
  headline?: string;
  metrics: Record<string, number | string | null>;
  error?: string;
  /** The host its run ended on, and what its leases cost (hosts with a pricePerHour). */
  host?: string;
  cost?: number;
}

export interface FiringResults {
  sweep: string;
  firingId: string;
  /** From the firing's folder (firing.json): the time it was scheduled for, and its fan-out workflow. */
  scheduledAt?: string;
  workflowId?: string;
  /** Every firing with a folder, oldest first. */
  firings: string[];
  axes: string[];
  metricNames: string[];
  cells: CellResult[];
}

/**
 * The fan-out workflow's own record of its cells: the live status while it runs (through a worker),
 * else its result, or the status in the details of its SweepCellsFailed failure.
 */
async function firingStatus(client: Client, workflowId: string): Promise<SweepFiringResult | undefined> {
  const handle = client.workflow.getHandle(workflowId);
  try {
    const d = await handle.describe();
    if (d.status.name === 'RUNNING') return await handle.query(sweepStatusQuery).catch(() => undefined);
    return (await handle.result()) as SweepFiringResult;
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) return undefined;
    if (!(e instanceof WorkflowFailedError)) throw e;
    const details: unknown = e.cause instanceof ApplicationFailure ? e.cause.details?.[0] : undefined;
    return details && typeof details === 'object' && Array.isArray((details as SweepFiringResult).cells) ? (details as SweepFiringResult) : undefined;
  }
}

async function cellResult(
  client: Client,
  registry: TaskRegistry,
  dir: string,
  record: SweepRecord,
  firingId: string,
  cell: SweepRecord['cells'][number],
  firing: () => Promise<SweepFiringResult | undefined>,
  env: NodeJS.ProcessEnv,
): Promise<CellResult> {
  const workflowId = cellWorkflowId(record.name, firingId, cell.name);
  const bundleDir = record.store ? undefined : join(dir, FIRINGS_DIR, firingId, cell.name);
  const base: CellResult = { cell: cell.name, axes: cell.axes, workflowId, status: 'pending', metrics: {}, ...(bundleDir && existsSync(bundleDir) ? { bundleDir } : {}) };
  const handle = client.workflow.getHandle(workflowId);
  let described;
  try {
    described = await handle.describe();
  } catch (e) {
    if (!(e instanceof WorkflowNotFoundError)) throw e;
    // No run: not started yet, or the firing refused this cell before starting it (its clone failed).
    const entry = (await firing())?.cells.find((c) => c.cell === cell.name);
    if (!entry || entry.state === 'pending') return base;
    return { ...base, status: entry.state, ...(entry.error ? { error: entry.error } : {}) };
  }
  if (described.status.name === 'RUNNING') {
    const phase = described.typedSearchAttributes.get(SA_PHASE);
    return { ...base, status: 'running', ...(typeof phase === 'string' ? { phase } : {}) };
  }
  const run = await awaitRun(handle, base.bundleDir);
  // A store-held cell's run is brought to this machine (a cache under ORBIT_HOME/runs/).
  // A cell whose bundle the store cannot give (the reason its run failed, often) has no summary, only its error.
  if (record.store) {
    base.bundleDir = await runFolder(client, workflowId, env).catch((e: unknown) => {
      if (e instanceof StoreError) return undefined;
      throw e;
    });
  }
  const result: CellResult = {
    ...base,
    status: run.status,
    ...(run.error && run.status !== 'succeeded' ? { error: run.error } : {}),
    ...(run.result?.host ? { host: run.result.host } : {}),
    ...(run.result?.cost !== undefined ? { cost: run.result.cost } : {}),
  };
  if (!base.bundleDir) return result;
  const bundle = await Bundle.open(base.bundleDir);
  if (!registry.has(bundle.spec.taskType)) return result;
  const outcome: RunOutcome = { status: run.status, exitCode: run.result?.exitCode ?? null, manifest: await verifyManifest(bundle.dir) };
  const summary = await registry.get(bundle.spec.taskType).summarizeResult(bundle, outcome);
  return { ...result, headline: summary.headline, metrics: summary.metrics };
}

/** Results of one firing (default: the latest with a folder). */
export async function sweepResults(client: Client, registry: TaskRegistry, dir: string, record: SweepRecord, firing?: string, env: NodeJS.ProcessEnv = process.env): Promise<FiringResults> {
  const firings = await firingIds(dir, record);
  const firingId = firing ?? firings.at(-1);
  if (!firingId) throw new CliError(`sweep ${record.name} has not fired yet; fire it now with \`orbit sweep trigger ${record.name}\``);
  if (!firings.includes(firingId)) {
    throw new CliError(`sweep ${record.name} has no firing ${firingId}; its firings: ${firings.length ? firings.join(', ') : '(none yet)'}`);
  }
  const claim = await readFiring(dir, record, firingId);
  const firingWorkflowId = claim?.owner.split('/')[0];
  let fanOut: Promise<SweepFiringResult | undefined> | undefined;
  const firingOnce = () => (fanOut ??= firingWorkflowId ? firingStatus(client, firingWorkflowId) : Promise.resolve(undefined));
  const cells = await Promise.all(record.cells.map((c) => cellResult(client, registry, dir, record, firingId, c, firingOnce, env)));
  const metricNames: string[] = [];
  for (const c of cells) for (const k of Object.keys(c.metrics)) if (!metricNames.includes(k)) metricNames.push(k);
  return {
    sweep: record.name,
    firingId,
    ...(claim ? { scheduledAt: claim.scheduledAt, workflowId: firingWorkflowId } : {}),
    firings,
    axes: record.axes.map((a) => a.name),
    metricNames,
    cells,
  };
}

/**
 * A cell's metrics with the name of one of its own axis values folded out of their keys: a cell of
 * the `env` value `austen` reports `perplexity.austen`, shown in the column `perplexity` (its ENV
 * column says which). A key that would then clash with another of the cell's keys stays as it is.
 */
function foldedMetrics(c: FiringResults['cells'][number]): Map<string, Cell> {
  const values = Object.values(c.axes);
  const out = new Map<string, Cell>();
  for (const [k, v] of Object.entries(c.metrics)) {
    const value = values.find((x) => k.endsWith(`.${x}`));
    const folded = value ? k.slice(0, -value.length - 1) : k;
    out.set(folded !== k && (folded in c.metrics || out.has(folded)) ? k : folded, v);
  }
  return out;
}

function rows(r: FiringResults): { headers: string[]; rows: Cell[][] } {
  const priced = r.cells.some((c) => c.cost !== undefined);
  const metrics = r.cells.map(foldedMetrics);
  const names: string[] = [];
  for (const m of metrics) for (const k of m.keys()) if (!names.includes(k)) names.push(k);
  return {
    headers: ['cell', ...r.axes, 'status', 'host', ...(priced ? ['cost'] : []), ...names],
    rows: r.cells.map((c, i) => [
      c.cell,
      ...r.axes.map((a) => c.axes[a]),
      c.phase ? `${c.status} (${c.phase})` : c.status,
      c.host,
      ...(priced ? [c.cost] : []),
      ...names.map((m) => metrics[i]!.get(m)),
    ]),
  };
}

export function formatResults(r: FiringResults, format: 'table' | 'csv' | 'json'): string {
  if (format === 'json') return JSON.stringify(r, null, 2);
  const t = rows(r);
  if (format === 'csv') return formatCsv(t.headers, t.rows);
  const done = r.cells.filter((c) => c.status === 'succeeded').length;
  const lines = [
    `sweep ${r.sweep}, firing ${r.firingId} (${r.firings.length} firing${r.firings.length === 1 ? '' : 's'}; --firing ID for another): ${done}/${r.cells.length} cells succeeded`,
    ...(r.workflowId ? [`  scheduled for ${r.scheduledAt}; workflow ${r.workflowId}`] : []),
    '',
    formatTable(t.headers, t.rows),
  ];
  const errors = r.cells.filter((c) => c.error);
  if (errors.length) lines.push('', ...errors.map((c) => `${c.cell}: ${c.error}`));
  return lines.join('\n');
}
