/**
 * What Orbit keeps in a store, content-addressed. Keys:
 *
 *   blobs/<ab>/<sha256>            a file's bytes, named by their sha256 (stored once, however many bundles use it)
 *   bundles/<digest hex>.json      a frozen bundle: job.json, inputs/, scripts/ as {path, size, mode, sha256}
 *   runs/<run id>/run.json         a run: which bundle it runs (written before the run starts)
 *   runs/<run id>/artifacts.json   what was collected of runtime/ and artifacts/ so far (rewritten at each sync)
 *   sweeps/<name>/sweep.json       a sweep's cells, each a frozen bundle's digest
 *   sweeps/<name>/firings/<id>.json one firing's claim of its id
 *
 * A bundle manifest is written only after every blob it names is in the store, so a run never starts
 * from a partly uploaded bundle. Everything read back is checked: a manifest's paths must be safe and
 * inside the bundle's parts, and every blob's sha256 is recomputed as it is written to disk.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { ARTIFACTS_DIR, FROZEN_FILE, FROZEN_PARTS, INPUTS_DIR, JOB_FILE, RUNTIME_DIR, SCRIPTS_DIR } from '../common/layout';
import { BundleTamperedError } from '../bundle/bundle';
import { sha256File, walkFiles } from '../bundle/hash';
import { isSafeRelativePath } from '../bundle/schema';
import { StoreError, type BundleStore } from './store';

export const STORE_FORMAT = 'orbit.store.v1';

export interface StoredFile {
  path: string;
  size: number;
  /** Permission bits (0o755 for scripts). */
  mode: number;
  sha256: string;
}

export interface BundleManifest {
  format: typeof STORE_FORMAT;
  digest: string;
  frozenAt: string;
  files: StoredFile[];
}

export interface RunRecord {
  format: typeof STORE_FORMAT;
  runId: string;
  digest: string;
  createdAt: string;
  sweep?: string;
}

export interface ArtifactsRecord {
  format: typeof STORE_FORMAT;
  runId: string;
  updatedAt: string;
  files: StoredFile[];
}

/** Files and bytes a transfer looked at, and how many it actually moved. */
export interface Transfer {
  files: number;
  bytes: number;
  movedFiles: number;
  movedBytes: number;
}

export const blobKey = (sha256: string): string => `blobs/${sha256.slice(0, 2)}/${sha256}`;
export const bundleKey = (digest: string): string => `bundles/${digest.replace(/^sha256:/, '')}.json`;
export const runKey = (runId: string): string => `runs/${runId}/run.json`;
export const artifactsKey = (runId: string): string => `runs/${runId}/artifacts.json`;
export const sweepKey = (name: string): string => `sweeps/${name}/sweep.json`;
export const firingKey = (sweep: string, firingId: string): string => `sweeps/${sweep}/firings/${firingId}.json`;

const CONCURRENCY = 8;

/** Runs `fn` over `items`, at most `limit` at once; after a failure it starts no more, and rejects once every running one has settled. */
export async function eachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async (): Promise<void> => {
    while (!failure && next < items.length) {
      try {
        await fn(items[next++]!);
      } catch (e) {
        failure ??= { error: e };
      }
    }
  };
  // Every lane settles before the first failure is thrown: a caller that cleans up after it (removes
  // the folder being filled) never races a write still in flight.
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failure) throw failure.error;
}

/** A cache of file hashes by path, size and mtime, so a sync rehashes only what changed. */
export type HashCache = Map<string, { size: number; mtimeMs: number; sha256: string }>;

async function describeFile(root: string, path: string, cache?: HashCache): Promise<StoredFile> {
  const full = join(root, path);
  const s = await stat(full);
  const hit = cache?.get(full);
  const sha256 = hit && hit.size === s.size && hit.mtimeMs === s.mtimeMs ? hit.sha256 : await sha256File(full);
  cache?.set(full, { size: s.size, mtimeMs: s.mtimeMs, sha256 });
  return { path, size: s.size, mode: s.mode & 0o777, sha256 };
}

/** The files of `parts` under `root`, hashed, in the order the bundle digest takes them. */
export async function describeTree(root: string, parts: readonly string[], cache?: HashCache, skip: (path: string) => boolean = () => false): Promise<StoredFile[]> {
  const out: StoredFile[] = [];
  for (const part of parts) {
    const paths = part === JOB_FILE ? [JOB_FILE] : (await walkFiles(root, part)).map((f) => f.path);
    for (const path of paths) if (!skip(path)) out.push(await describeFile(root, path, cache));
  }
  return out;
}

/** The bundle digest of these frozen files: the same formula as Bundle.computeDigest. */
export function digestOf(files: StoredFile[]): string {
  const h = createHash('sha256');
  h.update('orbit.bundle.v1\n');
  for (const f of files) h.update(`${f.path}\0${f.sha256}\n`);
  return `sha256:${h.digest('hex')}`;
}

/** Uploads the blobs the store lacks; those in `known` (stored and named by a record already) are not even asked about. */
async function pushBlobs(store: BundleStore, root: string, files: StoredFile[], known?: Set<string>): Promise<Transfer> {
  const t: Transfer = { files: files.length, bytes: 0, movedFiles: 0, movedBytes: 0 };
  const seen = new Set<string>(known);
  const unique = files.filter((f) => (seen.has(f.sha256) ? false : (seen.add(f.sha256), true)));
  for (const f of files) t.bytes += f.size;
  await eachLimit(unique, CONCURRENCY, async (f) => {
    const there = await store.stat(blobKey(f.sha256));
    if (there && there.size === f.size) return;
    await store.putFile(blobKey(f.sha256), join(root, f.path));
    t.movedFiles++;
    t.movedBytes += f.size;
  });
  return t;
}

/**
 * Puts a frozen bundle into the store: its blobs first (only those the store lacks), then its manifest,
 * the commit. Refuses a bundle whose content no longer matches `digest`.
 */
export async function pushBundle(store: BundleStore, dir: string, digest: string): Promise<Transfer> {
  const files = await describeTree(dir, FROZEN_PARTS);
  const actual = digestOf(files);
  if (actual !== digest) throw new BundleTamperedError(dir, digest, actual);
  const sent = await pushBlobs(store, dir, files);
  const manifest: BundleManifest = { format: STORE_FORMAT, digest, frozenAt: new Date().toISOString(), files };
  await store.putBytes(bundleKey(digest), JSON.stringify(manifest) + '\n');
  return sent;
}

function parseJson<T>(store: BundleStore, key: string, bytes: Buffer): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    throw new StoreError('corrupt', `store ${store.url}: ${key} is not JSON; it was changed or truncated`);
  }
}

/** Untrusted file lists: every path safe and under one of `roots`, every hash and size well formed. */
function checkFiles(store: BundleStore, key: string, files: unknown, roots: readonly string[]): StoredFile[] {
  if (!Array.isArray(files)) throw new StoreError('corrupt', `store ${store.url}: ${key} has no file list`);
  return files.map((f: Partial<StoredFile>) => {
    const ok =
      typeof f.path === 'string' &&
      isSafeRelativePath(f.path) &&
      roots.some((r) => f.path === r || f.path!.startsWith(`${r}/`)) &&
      typeof f.sha256 === 'string' &&
      /^[0-9a-f]{64}$/.test(f.sha256) &&
      Number.isSafeInteger(f.size) &&
      f.size! >= 0 &&
      Number.isInteger(f.mode);
    if (!ok) throw new StoreError('corrupt', `store ${store.url}: ${key} names a file Orbit refuses (${JSON.stringify(f).slice(0, 200)})`);
    return { path: f.path!, size: f.size!, mode: f.mode! & 0o777, sha256: f.sha256! };
  });
}

export async function readBundleManifest(store: BundleStore, digest: string): Promise<BundleManifest> {
  const key = bundleKey(digest);
  const bytes = await store.getBytes(key);
  if (!bytes) throw new StoreError('missing', `store ${store.url}: bundle ${digest} is not there (${key}); submit it again`);
  const raw = parseJson<BundleManifest>(store, key, bytes);
  if (raw.digest !== digest) throw new StoreError('corrupt', `store ${store.url}: ${key} describes bundle ${raw.digest}, not ${digest}`);
  const files = checkFiles(store, key, raw.files, FROZEN_PARTS);
  if (digestOf(files) !== digest) throw new StoreError('corrupt', `store ${store.url}: ${key} lists files whose digest is not ${digest}; it was changed`);
  return { ...raw, files };
}

/** Writes one blob to `target` through a temporary file, checking its sha256 and size on the way. */
async function fetchBlob(store: BundleStore, f: StoredFile, target: string): Promise<void> {
  const key = blobKey(f.sha256);
  await mkdir(dirname(target), { recursive: true });
  const tmp = `${target}.fetch-${process.pid}`;
  const hash = createHash('sha256');
  let size = 0;
  try {
    const source = await store.getStream(key);
    const tee = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    await pipeline(source, tee, createWriteStream(tmp, { mode: 0o600 }));
    const got = hash.digest('hex');
    if (got !== f.sha256 || size !== f.size) {
      throw new StoreError(
        'corrupt',
        `store ${store.url}: object ${key} (${f.path}) has sha256 ${got} and ${size} bytes, not ${f.sha256} and ${f.size}: it was changed or truncated; refusing it`,
      );
    }
    await chmod(tmp, f.mode);
    await rename(tmp, target);
  } catch (e) {
    await rm(tmp, { force: true });
    if (e instanceof StoreError) throw e;
    throw new StoreError('unreachable', `store ${store.url}: cannot fetch ${key} (${f.path}): ${(e as Error).message}`, { cause: e });
  }
}

export interface FetchOptions {
  /** Only files whose path this accepts. */
  only?: (path: string) => boolean;
  /** Hash local files of the right size before keeping them (default: a file of the right size is kept). */
  verifyLocal?: boolean;
}

/** Brings `files` into `dir`, fetching those missing or different. */
async function fetchFiles(store: BundleStore, dir: string, files: StoredFile[], options: FetchOptions): Promise<Transfer> {
  const wanted = files.filter((f) => !options.only || options.only(f.path));
  const t: Transfer = { files: wanted.length, bytes: 0, movedFiles: 0, movedBytes: 0 };
  await eachLimit(wanted, CONCURRENCY, async (f) => {
    t.bytes += f.size;
    const target = join(dir, f.path);
    const local = await stat(target).catch(() => undefined);
    if (local?.isFile() && local.size === f.size && (!options.verifyLocal || (await sha256File(target)) === f.sha256)) return;
    await fetchBlob(store, f, target);
    t.movedFiles++;
    t.movedBytes += f.size;
  });
  return t;
}

/**
 * Makes `dir` the frozen bundle `digest` from the store: fetches the files it lacks (each verified),
 * creates the five parts and runtime/frozen.json. Files already there with the right size are kept
 * (pass verifyLocal to hash them); staging checks the whole bundle's digest before it runs anyway.
 */
export async function materializeBundle(store: BundleStore, digest: string, dir: string, options: FetchOptions = {}): Promise<Transfer> {
  const manifest = await readBundleManifest(store, digest);
  const t = await fetchFiles(store, dir, manifest.files, options);
  if (options.only) return t; // a part of the bundle: only the files asked for
  for (const part of [INPUTS_DIR, SCRIPTS_DIR, RUNTIME_DIR, ARTIFACTS_DIR]) await mkdir(join(dir, part), { recursive: true });
  const frozen = join(dir, FROZEN_FILE);
  const had = await readFile(frozen, 'utf8').then((s) => (JSON.parse(s) as { digest?: string }).digest, () => undefined);
  if (had !== digest) await writeFile(frozen, JSON.stringify({ digest, frozenAt: manifest.frozenAt, from: store.url }, null, 2) + '\n');
  return t;
}

/** What a run's folder holds besides its frozen bundle: runtime/ (but frozen.json) and artifacts/. */
const RUN_PARTS = [RUNTIME_DIR, ARTIFACTS_DIR] as const;
const notPublished = (path: string): boolean => path === FROZEN_FILE || /\.(tmp|fetch)-\d+(-\d+)?$/.test(path);

/** What a worker remembers of a run between publishes: file hashes, and the blobs its record already names. */
export interface PublishCache {
  hashes: HashCache;
  /** Blobs in the store and named by the run's artifacts record (so gc keeps them while the run is kept). */
  stored: Set<string>;
}

export const newPublishCache = (): PublishCache => ({ hashes: new Map(), stored: new Set() });

/**
 * Uploads what the run's folder holds of runtime/ and artifacts/ (new blobs only) and records it.
 * With a cache, a publish rehashes only changed files and asks the store only about blobs its record
 * does not name yet: a sync that brought one file costs one upload, not a request per file.
 */
export async function publishArtifacts(store: BundleStore, runId: string, dir: string, cache?: PublishCache): Promise<Transfer> {
  const files = await describeTree(dir, RUN_PARTS, cache?.hashes, notPublished);
  const sent = await pushBlobs(store, dir, files, cache?.stored);
  const record: ArtifactsRecord = { format: STORE_FORMAT, runId, updatedAt: new Date().toISOString(), files };
  await store.putBytes(artifactsKey(runId), JSON.stringify(record) + '\n');
  for (const f of files) cache?.stored.add(f.sha256); // only once the record naming them is written
  return sent;
}

export async function readArtifacts(store: BundleStore, runId: string): Promise<ArtifactsRecord | undefined> {
  const key = artifactsKey(runId);
  const bytes = await store.getBytes(key);
  if (!bytes) return undefined;
  const raw = parseJson<ArtifactsRecord>(store, key, bytes);
  return { ...raw, files: checkFiles(store, key, raw.files, RUN_PARTS) };
}

/** Brings the run's recorded runtime/ and artifacts/ into `dir`. */
export async function restoreArtifacts(store: BundleStore, runId: string, dir: string, options: FetchOptions = {}): Promise<Transfer> {
  const record = await readArtifacts(store, runId);
  if (!record) return { files: 0, bytes: 0, movedFiles: 0, movedBytes: 0 };
  return fetchFiles(store, dir, record.files, options);
}

export async function writeRunRecord(store: BundleStore, record: Omit<RunRecord, 'format' | 'createdAt'>): Promise<void> {
  const full: RunRecord = { format: STORE_FORMAT, ...record, createdAt: new Date().toISOString() };
  await store.createBytes(runKey(record.runId), JSON.stringify(full) + '\n');
}

export async function readRunRecord(store: BundleStore, runId: string): Promise<RunRecord | undefined> {
  const bytes = await store.getBytes(runKey(runId));
  return bytes ? parseJson<RunRecord>(store, runKey(runId), bytes) : undefined;
}

/** The whole run (its bundle and what was collected) into `dir`: `orbit pull`, and every CLI reader. */
export async function pullRun(store: BundleStore, runId: string, digest: string, dir: string, options: FetchOptions = {}): Promise<Transfer> {
  const a = await materializeBundle(store, digest, dir, options);
  const b = await restoreArtifacts(store, runId, dir, options);
  return { files: a.files + b.files, bytes: a.bytes + b.bytes, movedFiles: a.movedFiles + b.movedFiles, movedBytes: a.movedBytes + b.movedBytes };
}
