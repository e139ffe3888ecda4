/**
 * Bringing a run's results home: collect (verified against the manifest), the report of what a lost
 * host left behind, and the resume state a relaunch starts from. The full report of each collection
 * goes to runtime/collection.json in the local bundle; the workflow gets a capped summary.
 */
import { Context } from '@temporalio/activity';
import { existsSync } from 'node:fs';
import { readdir, rename, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ARTIFACTS_DIR, formatProblem, verifyManifest, walkFiles, type Bundle } from '../bundle';
import type { CollectInput, CollectSummary, ReportLocalInput, ResumeInput, ResumeStaged } from '../common/activities';
import { COLLECTION_REPORT, RESUME_DIR } from '../common/protocol';
import { CollectionEndedError, RunNotStagedError } from '../hosts/host/errors';
import type { CollectResult } from '../hosts/shell-host';
import { StoreError } from '../store/store';
import { withHeartbeat, type ActivityKit } from './support';

/** Longest list of paths a summary carries into workflow history. */
const LIST_CAP = 50;

/** Brings runtime/ and artifacts/ back, verified, checks the expected outputs, and writes the full report. */
export async function collectRun(kit: ActivityKit, input: CollectInput): Promise<CollectSummary> {
  const bundle = await kit.bundle(input);
  const ctx = Context.current();
  let progress = { files: 0, bytes: 0 };
  let r: CollectResult;
  try {
    r = await withHeartbeat(
      () => kit.host(input.host).collect(input.runId, bundle.dir, { signal: ctx.cancellationSignal, onProgress: (p) => (progress = p) }),
      () => progress,
    );
  } catch (e) {
    const ended = endedBy(e);
    if (!ended) throw e; // the host did not answer, or answered badly: retried until the deadline
    const summary = await reportEnded(bundle, input.host, ended, progress);
    const stored = await publishFinal(kit, input, bundle.dir);
    return kit.pause('collect', stored ? { ...summary, ended: { ...summary.ended!, reason: `${summary.ended!.reason}; ${stored}` } } : summary);
  }
  const missingOutputs = missingExpectedOutputs(bundle);
  await writeReport(bundle, {
    collectedAt: new Date().toISOString(),
    host: input.host,
    filesFetched: r.filesFetched,
    bytesFetched: r.bytesFetched,
    filesSkipped: r.filesSkipped,
    manifest: r.manifest,
    refused: r.refused,
    unverified: r.unverified,
    ...(r.manifestProblem ? { manifestProblem: r.manifestProblem } : {}),
    ...(r.missingParts.length ? { missingParts: r.missingParts } : {}),
    missingOutputs,
  });
  const summary = summarize(r, missingOutputs);
  const stored = await publishFinal(kit, input, bundle.dir);
  if (stored) return kit.pause('collect', { ...summary, verified: false, ended: { class: 'local', reason: stored } });
  kit.forget(input.runId);
  return kit.pause('collect', summary);
}

/**
 * Puts what was collected into the run's store, trying a few times (heartbeating) before it says
 * why not: the files are then on this worker's disk only. A store failure is the worker's side, never
 * the host's: it ends the collection as local rather than being retried as a host that does not answer.
 */
async function publishFinal(kit: ActivityKit, input: CollectInput, dir: string): Promise<string | undefined> {
  if (!input.store) return undefined;
  let last: Error | undefined;
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      await withHeartbeat(() => kit.publish(input, dir));
      return undefined;
    } catch (e) {
      last = e as Error;
      if (e instanceof StoreError && !e.retryable) break;
      await Context.current().sleep(1000 * 2 ** attempt);
    }
  }
  return `the collected files are on worker ${hostname()} in ${dir} but not in the store: ${last?.message}`;
}

/**
 * A failure no retry can fix ends the collection (docs/evaporation.md, failure classes): the worker's
 * side (disk full, read-only, permissions) or the host's run folder gone. Anything else is taken for
 * a host that may answer later.
 */
function endedBy(e: unknown): CollectSummary['ended'] | undefined {
  if (e instanceof CollectionEndedError) return { class: e.side, reason: e.message };
  if (e instanceof RunNotStagedError) return { class: 'remote', reason: `the run folder is gone from the host: ${e.message}` };
  return undefined;
}

/** What a collection that ended early leaves: the files it wrote stay, and collection.json says why it stopped. */
async function reportEnded(bundle: Bundle, host: string, endedBy: NonNullable<CollectSummary['ended']>, progress: { files: number; bytes: number }): Promise<CollectSummary> {
  let ended = endedBy;
  const m = await verifyManifest(bundle.dir);
  const present = (await walkFiles(bundle.dir, ARTIFACTS_DIR).catch(() => [])).map((f) => f.path);
  const missingOutputs = missingExpectedOutputs(bundle);
  // The same full disk may refuse the report too: the reason still travels in the summary.
  const written = await writeReport(bundle, { collectedAt: new Date().toISOString(), host, partial: true, ended, present, manifest: m, missingOutputs }).then(
    () => '',
    (e: NodeJS.ErrnoException) => `; ${COLLECTION_REPORT} could not be written either (${e.code ?? e.message})`,
  );
  ended = { ...ended, reason: ended.reason + written };
  const summary = summarize({ filesFetched: progress.files, bytesFetched: progress.bytes, filesSkipped: 0, refused: [], manifest: m, unverified: [] }, missingOutputs);
  return { ...summary, verified: false, ended };
}

/**
 * For a run whose host never came back: which files the local bundle holds, and which manifest entries
 * (if a manifest was ever collected) are verified or missing.
 */
export async function reportLocal(kit: ActivityKit, input: ReportLocalInput): Promise<CollectSummary> {
  const bundle = await kit.bundle({ ...input, runId: input.runId ?? '' });
  const m = await verifyManifest(bundle.dir);
  const present = (await walkFiles(bundle.dir, ARTIFACTS_DIR).catch(() => [])).map((f) => f.path);
  const missingOutputs = missingExpectedOutputs(bundle);
  await writeReport(bundle, { collectedAt: new Date().toISOString(), host: input.host, partial: true, reason: input.reason, present, manifest: m, missingOutputs });
  if (input.runId) await kit.publish({ ...input, runId: input.runId }, bundle.dir);
  return summarize({ filesFetched: 0, bytesFetched: 0, filesSkipped: 0, refused: [], manifest: m }, missingOutputs);
}

/**
 * Uploads the newest complete unit folder synced so far (by the JobSpec's sync.atomicDirs) into
 * `<run folder>/resume/` on the host, for a relaunch to continue from.
 */
export async function stageResume(kit: ActivityKit, input: ResumeInput): Promise<ResumeStaged> {
  const bundle = await kit.bundle(input);
  const unit = await newestCompleteUnit(bundle.dir, bundle.spec.sync.atomicDirs);
  if (!unit) return { remotePath: null, localPath: null, filesSent: 0 };
  const h = kit.host(input.host);
  const files = (await walkFiles(bundle.dir, unit)).map((f) => ({ local: join(bundle.dir, f.path), remote: `${RESUME_DIR}/${f.path}` }));
  const r = await withHeartbeat(() => h.upload(input.runId, files, [RESUME_DIR]));
  return { remotePath: `${h.runDir(input.runId)}/${RESUME_DIR}/${unit}`, localPath: unit, filesSent: r.filesSent };
}

function missingExpectedOutputs(bundle: Bundle): string[] {
  return bundle.spec.expectedOutputs.filter((o) => o.required && !existsSync(join(bundle.dir, ARTIFACTS_DIR, o.path))).map((o) => o.path);
}

async function writeReport(bundle: Bundle, report: Record<string, unknown>): Promise<void> {
  const tmp = bundle.path(`${COLLECTION_REPORT}.tmp`);
  await writeFile(tmp, JSON.stringify(report, null, 2) + '\n');
  await rename(tmp, bundle.path(COLLECTION_REPORT));
}

type SummaryOf = Pick<CollectResult, 'filesFetched' | 'bytesFetched' | 'filesSkipped' | 'refused' | 'manifest'> & Partial<Pick<CollectResult, 'unverified' | 'manifestProblem'>>;

function summarize(r: SummaryOf, missingOutputs: string[]): CollectSummary {
  const m = r.manifest;
  const unverified = r.unverified ?? [];
  return {
    filesFetched: r.filesFetched,
    bytesFetched: r.bytesFetched,
    filesSkipped: r.filesSkipped,
    manifestPresent: m.manifestPresent,
    ...(r.manifestProblem ? { manifestProblem: r.manifestProblem } : {}),
    verified: m.verified && r.refused.length === 0 && unverified.length === 0,
    verifiedCount: m.verifiedFiles.length,
    missing: m.missing.slice(0, LIST_CAP),
    mismatched: m.mismatched.slice(0, LIST_CAP).map((x) => `${x.path}: ${x.reason}`),
    refused: r.refused.slice(0, LIST_CAP).map(formatProblem),
    missingOutputs,
    unverified: unverified.slice(0, LIST_CAP),
    totals: { missing: m.missing.length, mismatched: m.mismatched.length, refused: r.refused.length, unverified: unverified.length },
  };
}

/** The newest unit folder (natural order of names) that holds its marker, over every atomic folder. */
export async function newestCompleteUnit(bundleDir: string, atomicDirs: { parent: string; marker: string }[]): Promise<string | null> {
  let best: string | null = null;
  let bestKey: number[] = [];
  for (const a of atomicDirs) {
    const parent = join(bundleDir, 'artifacts', a.parent);
    let names: string[];
    try {
      names = await readdir(parent);
    } catch {
      continue;
    }
    for (const name of names) {
      if (!existsSync(join(parent, name, a.marker))) continue;
      const key = (name.match(/\d+/g) ?? []).map(Number);
      if (best === null || compareKeys(key, bestKey) > 0) {
        best = `artifacts/${a.parent}/${name}`;
        bestKey = key;
      }
    }
  }
  return best;
}

function compareKeys(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? -1) - (b[i] ?? -1);
    if (d) return d;
  }
  return 0;
}
