/** Reads a finished run back in the client: its result, the plugin's summary, printable lines. */
import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CollectSummary } from '../common/activities';
import { runResultOf } from '../common/failures';
import { COLLECTION_REPORT } from '../common/protocol';
import type { OutcomeStatus } from '../common/run';
import { Bundle, verifyManifest } from '../bundle';
import { orbitHome } from '../config';
import { pullRun } from '../store/cas';
import { openStore } from '../store/open';
import { buildDefaultTaskRegistry } from '../plugins/registry';
import type { RunOutcome, TaskSummary } from '../plugins/types';
import type { RunResult } from '../workflows';
import { cancelLine, cancelRecord, type CancelRecord } from './run-history';

export interface FinishedRun {
  workflowId: string;
  status: OutcomeStatus;
  result?: RunResult;
  /** Why it did not succeed, in one line. */
  error?: string;
  bundleDir?: string;
  /** A cancelled run: the cancel request (who, when, why) and the collection after it, from the run's history. */
  cancel?: CancelRecord;
}

/** Waits for the run's end and normalizes success, failure with details, cancellation and infrastructure errors. */
export async function awaitRun(handle: WorkflowHandle, bundleDirHint?: string): Promise<FinishedRun> {
  try {
    const result = (await handle.result()) as RunResult;
    return { workflowId: handle.workflowId, status: result.status, result, bundleDir: result.bundleDir };
  } catch (e) {
    if (!(e instanceof WorkflowFailedError)) throw e;
    const cause = e.cause;
    const verdict = runResultOf(e);
    if (verdict) {
      const { status, result, message } = verdict;
      return { workflowId: handle.workflowId, status, result, error: message, bundleDir: result?.bundleDir ?? bundleDirHint };
    }
    if (cause instanceof CancelledFailure) {
      const cancel = await cancelRecord(handle);
      return { workflowId: handle.workflowId, status: 'cancelled', error: cancel ? cancelLine(cancel) : 'cancelled', bundleDir: bundleDirHint, ...(cancel ? { cancel } : {}) };
    }
    const inner = cause?.cause as Error | undefined;
    const detail = inner?.message ?? cause?.message ?? e.message;
    return { workflowId: handle.workflowId, status: 'failed', error: detail, bundleDir: bundleDirHint };
  }
}

/** Where a run's bytes are, from its memo: a store and a digest (since the store), or a folder (before). */
export interface RunWhere {
  store?: string;
  digest?: string;
  bundleDir?: string;
}

export async function runWhere(client: Client, workflowId: string): Promise<RunWhere> {
  const d = await client.workflow.getHandle(workflowId).describe();
  const memo = (d.memo ?? {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return { store: str(memo.store), digest: str(memo.digest), bundleDir: str(memo.bundleDir) };
}

/**
 * The run's folder on this machine. A store-held run is brought into `<ORBIT_HOME>/runs/<run id>`
 * (a cache: what is missing or changed is fetched, each blob verified); a run from before the store
 * is its memo's folder.
 */
export async function runFolder(client: Client, workflowId: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const where = await runWhere(client, workflowId);
  if (!where.store || !where.digest) return where.bundleDir;
  const dir = join(orbitHome(env), 'runs', workflowId);
  await pullRun(await openStore(where.store, env), workflowId, where.digest, dir);
  return dir;
}

/** Asks the plugin that built the bundle to summarize what the run achieved. */
export async function summarize(run: FinishedRun): Promise<TaskSummary | undefined> {
  if (!run.bundleDir) return undefined;
  const bundle = await Bundle.open(run.bundleDir);
  const registry = await buildDefaultTaskRegistry();
  if (!registry.has(bundle.spec.taskType)) return undefined;
  const outcome: RunOutcome = { status: run.status, exitCode: run.result?.exitCode ?? null, manifest: await verifyManifest(bundle.dir) };
  return registry.get(bundle.spec.taskType).summarizeResult(bundle, outcome);
}

/** How many paths of each kind (refused, missing, mismatched, missing outputs) `describeRun` lists. */
export const PATHS_LISTED = 5;

/** The first paths of each kind the collection did not verify, with reasons; the rest counted, pointing at the full report. */
export function collectionProblemLines(c: CollectSummary, bundleDir?: string): string[] {
  const report = bundleDir ? join(bundleDir, COLLECTION_REPORT) : COLLECTION_REPORT;
  const kinds: { label: string; listed: string[]; total: number; note?: string }[] = [
    { label: 'refused', listed: c.refused, total: c.totals.refused },
    { label: 'mismatched', listed: c.mismatched, total: c.totals.mismatched },
    { label: 'missing', listed: c.missing, total: c.totals.missing, note: 'in the manifest, not collected' },
    { label: 'missing output', listed: c.missingOutputs, total: c.missingOutputs.length, note: 'required by the job, not there' },
    { label: 'unverified', listed: c.unverified ?? [], total: c.totals.unverified ?? 0, note: 'not in the manifest' },
  ];
  const lines: string[] = [];
  for (const k of kinds) {
    const total = Math.max(k.total, k.listed.length);
    for (const item of k.listed.slice(0, PATHS_LISTED)) lines.push(`    ${k.label}: ${item}${k.note ? ` (${k.note})` : ''}`);
    const more = total - Math.min(k.listed.length, PATHS_LISTED);
    if (more > 0) lines.push(`    and ${more} more ${k.label} in ${report}`);
  }
  return lines;
}

export function describeRun(run: FinishedRun, summary?: TaskSummary): string {
  const lines = [`run ${run.workflowId}: ${run.status}${run.error && run.status !== 'succeeded' ? ` (${run.error})` : ''}`];
  const r = run.result;
  if (r) {
    lines.push(`  exit code: ${r.exitCode ?? 'none'}   host: ${r.host}`);
    lines.push(
      `  artifacts: ${r.collect.verifiedCount} verified${r.collect.verified ? '' : `, ${r.collect.totals.missing} missing, ${r.collect.totals.mismatched} mismatched, ${r.collect.totals.refused} refused`} (${r.collect.filesFetched} files / ${r.collect.bytesFetched} bytes fetched)`,
    );
    lines.push(...collectionProblemLines(r.collect, run.bundleDir ?? r.bundleDir));
    if (r.job) lines.push(`  job: ${r.job.state}: ${r.job.detail}`);
    for (const l of r.leases ?? []) {
      const held = l.releasedAt ? ((Date.parse(l.releasedAt) - Date.parse(l.grantedAt)) / 1000).toFixed(1) : '?';
      const waited = ((Date.parse(l.grantedAt) - Date.parse(l.queuedAt)) / 1000).toFixed(1);
      lines.push(`  lease: ${l.host} gpus [${l.gpus.join(',')}], queued ${waited} s, held ${held} s${l.cost !== undefined ? `, cost ${l.cost}` : ''}`);
    }
    if (r.cost !== undefined) lines.push(`  cost: ${r.cost} (${r.leases?.length ?? 0} lease${r.leases?.length === 1 ? '' : 's'} at the hosts' pricePerHour)`);
    for (const reason of r.reasons) lines.push(`  - ${reason}`);
  }
  const kept = run.cancel?.collect;
  if (!r && kept) lines.push(`  collected after the cancel: ${kept.filesFetched} files / ${kept.bytesFetched} bytes fetched, ${kept.verifiedCount} verified${kept.manifestPresent ? '' : ' (no manifest)'}`);
  if (run.bundleDir) lines.push(`  bundle: ${run.bundleDir}`);
  if (summary) {
    lines.push(`  ${summary.headline}`);
    for (const [k, v] of Object.entries(summary.metrics)) lines.push(`    ${k}: ${v}`);
    // Only files that are there: a run refused at staging or lost early has none of what the plugin names.
    const dir = run.bundleDir;
    for (const h of dir ? summary.highlights.filter((h) => existsSync(join(dir, h))) : []) lines.push(`    see ${dir}/${h}`);
  }
  return lines.join('\n');
}
