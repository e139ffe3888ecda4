/**
 * `orbit store gc`: what a store can drop. A run is kept while it is running or queued (Temporal
 * says which), or younger than `olderThanMs` (by its newest record); without `olderThanMs` every run
 * is kept. A sweep is kept until it is deleted. A bundle is kept while a kept run or sweep names it; a
 * blob while a kept bundle or a kept run's artifacts name it. Anything unnamed but younger than
 * `graceMs` is kept too: a submit in flight uploads its blobs, then its manifest, then its run record.
 */
import { readBundleManifest, readArtifacts, STORE_FORMAT, type RunRecord } from './cas';
import type { BundleStore, ObjectInfo } from './store';

export interface GcOptions {
  now: number;
  /** Drop the records of runs (not running or queued) whose newest record is older than this. */
  olderThanMs?: number;
  /** Run ids Temporal has running or queued, and the digests they run: never dropped. */
  activeRuns: Set<string>;
  activeDigests: Set<string>;
  /** Unreferenced objects younger than this stay (default 1 h). */
  graceMs?: number;
}

export interface GcPlan {
  runsKept: number;
  /** Keys of the run records dropped (run.json, artifacts.json). */
  runKeys: string[];
  bundlesKept: number;
  bundleKeys: string[];
  blobsKept: number;
  blobKeys: string[];
  /** Bytes of the blobs dropped. */
  bytes: number;
}

async function collect(store: BundleStore, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of store.list(prefix)) out.push(o);
  return out;
}

export async function planGc(store: BundleStore, o: GcOptions): Promise<GcPlan> {
  const grace = o.graceMs ?? 3_600_000;
  const fresh = (info: ObjectInfo) => o.now - info.lastModified.getTime() < grace;

  // Runs: runs/<id>/run.json and runs/<id>/artifacts.json.
  const runs = new Map<string, ObjectInfo[]>();
  for (const info of await collect(store, 'runs/')) {
    const id = info.key.split('/')[1];
    if (id) runs.set(id, [...(runs.get(id) ?? []), info]);
  }
  const keptRuns: string[] = [];
  const runKeys: string[] = [];
  for (const [id, infos] of runs) {
    const newest = Math.max(...infos.map((i) => i.lastModified.getTime()));
    const drop = o.olderThanMs !== undefined && !o.activeRuns.has(id) && o.now - newest >= o.olderThanMs;
    if (drop) runKeys.push(...infos.map((i) => i.key));
    else keptRuns.push(id);
  }

  // What the kept runs, the sweeps and the active runs name.
  const digests = new Set(o.activeDigests);
  const blobs = new Set<string>();
  for (const id of keptRuns) {
    const record = await store.getBytes(`runs/${id}/run.json`);
    if (record) {
      const r = JSON.parse(record.toString('utf8')) as Partial<RunRecord>;
      if (r.format === STORE_FORMAT && typeof r.digest === 'string') digests.add(r.digest);
    }
    for (const f of (await readArtifacts(store, id))?.files ?? []) blobs.add(f.sha256);
  }
  for (const info of await collect(store, 'sweeps/')) {
    if (!info.key.endsWith('/sweep.json')) continue;
    const sweep = JSON.parse((await store.getBytes(info.key))?.toString('utf8') ?? '{}') as { cells?: { digest?: unknown }[] };
    for (const c of sweep.cells ?? []) if (typeof c.digest === 'string') digests.add(c.digest);
  }

  const bundleKeys: string[] = [];
  let bundlesKept = 0;
  for (const info of await collect(store, 'bundles/')) {
    const digest = `sha256:${info.key.slice('bundles/'.length).replace(/\.json$/, '')}`;
    if (digests.has(digest) || fresh(info)) {
      bundlesKept++;
      for (const f of (await readBundleManifest(store, digest)).files) blobs.add(f.sha256);
    } else bundleKeys.push(info.key);
  }

  const blobKeys: string[] = [];
  let blobsKept = 0;
  let bytes = 0;
  for (const info of await collect(store, 'blobs/')) {
    const sha = info.key.split('/').pop() ?? '';
    if (blobs.has(sha) || fresh(info)) blobsKept++;
    else {
      blobKeys.push(info.key);
      bytes += info.size;
    }
  }
  return { runsKept: keptRuns.length, runKeys, bundlesKept, bundleKeys, blobsKept, blobKeys, bytes };
}

/** Drops what the plan names: run records first, then manifests, then blobs (a reader never meets a manifest without its blobs). */
export async function applyGc(store: BundleStore, plan: GcPlan): Promise<void> {
  await store.delete(plan.runKeys);
  await store.delete(plan.bundleKeys);
  await store.delete(plan.blobKeys);
}
