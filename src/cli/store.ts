/** `orbit store gc [--older-than 30d] [--dry-run]`: drops what no kept run or sweep of the store names (see src/store/gc.ts). */
import { temporalTarget } from '../config';
import { SA_BUNDLE_DIGEST } from '../common/search-attributes';
import { parseDuration, formatDuration } from '../sweeps/duration';
import { applyGc, planGc } from '../store/gc';
import { configuredStore } from '../store/open';
import { CliError } from './errors';

export async function orbitStoreGc(values: { olderThan?: string; dryRun?: boolean }, out: (s: string) => void): Promise<number> {
  let olderThanMs: number | undefined;
  if (values.olderThan !== undefined) {
    const d = parseDuration(values.olderThan);
    if (!d.ok) throw new CliError(`--older-than ${d.message}`);
    olderThanMs = d.ms;
  }
  const store = await configuredStore();
  await store.check();
  const active = await activeRuns();
  const grace = Number(process.env.ORBIT_GC_GRACE_SECONDS ?? 3600);
  if (!Number.isFinite(grace) || grace < 0) throw new CliError(`ORBIT_GC_GRACE_SECONDS=${process.env.ORBIT_GC_GRACE_SECONDS} must be a number of seconds, 0 or more`);
  const plan = await planGc(store, { now: Date.now(), olderThanMs, activeRuns: active.ids, activeDigests: active.digests, graceMs: grace * 1000 });
  const verb = values.dryRun ? 'would drop' : 'dropped';
  if (!values.dryRun) await applyGc(store, plan);
  const runs = new Set(plan.runKeys.map((k) => k.split('/')[1])).size;
  out(
    `store ${store.url}: ${verb} ${runs} runs, ${plan.bundleKeys.length} bundles, ${plan.blobKeys.length} blobs (${plan.bytes} bytes); ` +
      `kept ${plan.runsKept} runs (${active.ids.size} running or queued), ${plan.bundlesKept} bundles, ${plan.blobsKept} blobs` +
      (olderThanMs === undefined ? ' (every run is kept without --older-than)' : ` (runs not running or queued whose newest record is older than ${formatDuration(olderThanMs)} go)`) +
      `; anything younger than ${formatDuration(grace * 1000)} stays (ORBIT_GC_GRACE_SECONDS)`,
  );
  return 0;
}

/** Runs Temporal has open (queued or running), by id and by the bundle digest they run. Refuses to guess when Temporal cannot say. */
async function activeRuns(): Promise<{ ids: Set<string>; digests: Set<string> }> {
  const { connectClient } = await import('./connect');
  const client = await connectClient(temporalTarget());
  const ids = new Set<string>();
  const digests = new Set<string>();
  try {
    for await (const w of client.workflow.list({ query: `WorkflowType = 'runBundle' AND ExecutionStatus = 'Running'` })) {
      ids.add(w.workflowId);
      const digest = w.typedSearchAttributes.getAll().find((p) => p.key.name === SA_BUNDLE_DIGEST.name)?.value;
      if (typeof digest === 'string') digests.add(digest);
    }
  } finally {
    await client.connection.close().catch(() => undefined);
  }
  return { ids, digests };
}
