/**
 * Collection: runtime/ and artifacts/ brought back into the local bundle. Files already local and
 * verified are not fetched again; a cut transfer resumes from its partial file; manifest entries
 * are checked by size and sha256 before they are renamed into place. Unsafe paths, escaping links
 * and sizes that disagree with the manifest are refused and reported, never written.
 *
 * Small files not yet local come in one tar stream over one exec (./collect-stream.ts: one round
 * trip for all of them, where SFTP needs three per file), at the same time as the larger ones come
 * over SFTP, hashed as they arrive. Whatever the stream does not deliver intact (tar missing on the
 * host, a file changed while it was read, a corrupt archive) is fetched again over SFTP.
 */
import { readFile, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_MANIFEST_BYTES, parseManifest, sha256File, verifyManifest, type ManifestCheck, type ManifestEntry, type Problem } from '../../bundle';
import { ARTIFACTS_DIR, MANIFEST_FILE } from '../../common/layout';
import { EXIT } from '../../common/protocol';
import { abortReason, raceAbort, settledWithin } from '../abort';
import { streamFiles, type StreamTarget } from './collect-stream';
import type { HostContext } from './context';
import { CollectionEndedError, notStagedError } from './errors';
import { listingScript, parseListing, withoutIncompleteUnits, type RemoteFile } from './listing';
import { fetchFile, LOCAL_FATAL_ERRORS, LOCAL_WRITE_ERRORS, LocalFolders, localState, type LocalState } from './local-files';

export interface CollectOptions {
  /** Parallel SFTP transfers (besides the one stream of small files). */
  concurrency?: number;
  /** Files up to this many bytes that are not local yet come in one tar stream; 0 fetches every file over SFTP. Default 1 MiB. */
  streamBelowBytes?: number;
  /** Sub-folders of these artifacts/ folders are collected only once they hold their marker file. */
  atomicDirs?: { parent: string; marker: string }[];
  /** Check the manifest at the end (default true; a sync while the job runs skips it). */
  verify?: boolean;
  /** Longest the listing script may take. */
  execTimeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: (p: { files: number; bytes: number }) => void;
}

export interface CollectResult {
  filesFetched: number;
  bytesFetched: number;
  filesSkipped: number;
  /** Entries the far side offered that Orbit refused to write (unsafe paths, links leaving the bundle, sizes that disagree). */
  refused: Problem[];
  manifest: ManifestCheck;
  /** Files under artifacts/ on the host that the manifest does not list (collected, not verified); empty without a usable manifest. */
  unverified: string[];
  /** Why the manifest on the host could not be used (over the size limit, not JSON, ...), when it is there. */
  manifestProblem?: string;
  /** Parts of the run folder (runtime/, artifacts/) that were not there on the host. */
  missingParts: string[];
}

/** Files up to this size come in the tar stream by default (docs/benchmarks.md). */
const STREAM_BELOW_BYTES = 1024 * 1024;
/** Longest wait, after a failure, for transfers still running to stop. */
const SETTLE_MS = 10_000;

/** Brings runtime/ and artifacts/ of the run back into `bundleDir` (see the module comment). */
export async function collectRun(host: HostContext, runId: string, bundleDir: string, options: CollectOptions = {}): Promise<CollectResult> {
  const dir = host.runDir(runId);
  const root = await realpath(bundleDir);
  // Stops every transfer of this collection on the caller's abort or on the first failure.
  const stop = new AbortController();
  const onAbort = () => stop.abort(options.signal?.reason);
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await new Collection(host, dir, new LocalFolders(root), options, stop).run();
  } catch (e) {
    throw asEnded(e, root);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * A local error that stops every write (the worker's disk is full, its folder read-only, ...) ends
 * the collection for good: it is not the host's fault, and retrying cannot fix it.
 */
function asEnded(e: unknown, root: string): unknown {
  // The errno may sit in a cause (a transfer's own error wraps it), or on a plain object (a writer thread's).
  let err: { code?: unknown; path?: unknown; message?: unknown; cause?: unknown } | undefined;
  for (let c: unknown = e, depth = 0; c && typeof c === 'object' && depth < 5; c = (c as { cause?: unknown }).cause, depth++) {
    const code = (c as { code?: unknown }).code;
    if (typeof code === 'string' && LOCAL_FATAL_ERRORS.includes(code)) {
      err = c as typeof err;
      break;
    }
  }
  if (!err) return e;
  const path = typeof err.path === 'string' ? err.path : undefined;
  if (path && !path.startsWith(root)) return e; // the local transport reading the run folder: the host's side
  const message = typeof err.message === 'string' ? err.message.split('\n')[0] : String(err.code);
  return new CollectionEndedError('local', `the worker could not write the collected files (${String(err.code)}${path ? ` writing ${path}` : ''}): ${message}`);
}

/** Rejects with the signal's reason as soon as it aborts, even if `work` never settles (a transfer to a frozen host). */
function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return raceAbort(work, signal, abortReason);
}

class Collection {
  private readonly signal: AbortSignal;
  private readonly refused: Problem[] = [];
  /** sha256 of the files known good, by path. */
  private readonly known = new Map<string, string>();
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly counts = { filesFetched: 0, bytesFetched: 0, filesSkipped: 0 };
  private manifest = new Map<string, ManifestEntry>();
  private manifestUsable = false;
  private manifestProblem: string | undefined;
  private missingParts: string[] = [];
  private local: LocalState = new Map();

  constructor(
    private readonly host: HostContext,
    private readonly dir: string,
    private readonly folders: LocalFolders,
    private readonly options: CollectOptions,
    private readonly stop: AbortController,
  ) {
    this.signal = stop.signal;
  }

  async run(): Promise<CollectResult> {
    const files = await this.list();
    const manifestFile = files.find((f) => f.path === MANIFEST_FILE);
    if (manifestFile) await this.fetchManifest(manifestFile);
    // Sort what is to do by the local state: one readdir per folder, an lstat only for names present.
    this.local = await localState(this.folders.root, files);
    const { streamed, perFile } = this.plan(files);
    const [leftovers = []] = await this.settle<RemoteFile[] | void>([
      streamed.length ? streamFiles(this.streamTarget(), streamed) : Promise.resolve([]),
      this.fetchAll(perFile).then(() => undefined),
    ]);
    if (leftovers.length) await this.settle([this.fetchAll(leftovers)]);
    if (this.signal.aborted) throw this.signal.reason ?? new Error('collection aborted');
    const manifest = await this.verify(Boolean(manifestFile));
    const unverified = this.manifestUsable && this.options.verify !== false ? this.notInManifest(files) : [];
    return { ...this.counts, refused: this.refused, manifest, unverified, manifestProblem: this.manifestProblem, missingParts: this.missingParts };
  }

  private async list(): Promise<RemoteFile[]> {
    const { options } = this;
    const listing = await this.host.transport.exec(listingScript(this.dir, options.verify !== false), {
      signal: this.signal,
      timeoutMs: options.execTimeoutMs,
      maxOutputBytes: 256 * 1024 * 1024,
    });
    if (listing.code === EXIT.notStaged) throw notStagedError(listing.stdout);
    if (listing.code !== 0) throw new Error(`listing ${this.dir} on ${this.host.name} failed (exit ${listing.code}): ${listing.stderr.trim()}`);
    const parsed = parseListing(listing.stdout);
    this.refused.push(...parsed.refused);
    this.missingParts = parsed.missingParts;
    return withoutIncompleteUnits(parsed.files, options.atomicDirs ?? []);
  }

  private async fetchManifest(file: RemoteFile): Promise<void> {
    if (file.size > MAX_MANIFEST_BYTES) {
      this.manifestProblem = `is ${file.size} bytes, over the ${MAX_MANIFEST_BYTES / 1024 / 1024} MiB limit; not collected`;
      this.refused.push({ path: MANIFEST_FILE, message: this.manifestProblem });
      return;
    }
    const fetched = await abortable(fetchFile(this.host.transport, this.dir, this.folders, file, this.signal, { wholeOnly: true }), this.signal).catch((e: Error) => {
      if (this.signal.aborted) throw e;
      return { problem: e.message };
    });
    if (fetched.problem) {
      this.manifestProblem = fetched.problem;
      this.refused.push({ path: MANIFEST_FILE, message: fetched.problem });
      return;
    }
    const parsed = parseManifest(await readFile(join(this.folders.root, MANIFEST_FILE), 'utf8'));
    if (parsed.ok) {
      this.manifest = new Map(parsed.value.files.map((e) => [`${ARTIFACTS_DIR}/${e.path}`, e]));
      this.manifestUsable = true;
      this.refused.push(...parsed.refused); // one bad entry is refused alone; the others stand
    } else {
      this.manifestProblem = parsed.problems.map((p) => p.message).join('; ');
      this.refused.push(...parsed.problems);
    }
  }

  /** Which files come in the tar stream (small, not local in any form yet) and which one by one. */
  private plan(files: RemoteFile[]): { streamed: RemoteFile[]; perFile: RemoteFile[] } {
    const streamLimit = this.options.streamBelowBytes ?? STREAM_BELOW_BYTES;
    const streamed: RemoteFile[] = [];
    const perFile: RemoteFile[] = [];
    for (const f of files) {
      if (f.path === MANIFEST_FILE) continue;
      const entry = this.manifest.get(f.path);
      if (entry && entry.size !== f.size) {
        this.refused.push({ path: f.path, message: `remote size ${f.size} differs from the manifest's ${entry.size}; not collected` });
        continue;
      }
      const here = this.local.get(f.path);
      const resumable = here?.part || (here?.size != null && here.size < f.size);
      if (streamLimit > 0 && f.size <= streamLimit && here?.size !== f.size && !resumable) streamed.push(f);
      else perFile.push(f);
    }
    return { streamed, perFile };
  }

  private readonly fetched = (f: RemoteFile, bytes: number, sha: string | undefined) => {
    this.counts.filesFetched++;
    this.counts.bytesFetched += bytes;
    if (sha) this.known.set(f.path, sha);
    this.options.onProgress?.({ files: this.counts.filesFetched, bytes: this.counts.bytesFetched });
  };

  private streamTarget(): StreamTarget {
    const { host, dir, folders, manifest, signal, fetched, refused } = this;
    return { transport: host.transport, dir, folders, manifest, signal, fetched, refused };
  }

  private fetchAll(queue: RemoteFile[]): Promise<void[]> {
    return Promise.all(Array.from({ length: Math.max(1, this.options.concurrency ?? 4) }, () => this.fetchLoop(queue)));
  }

  private async fetchLoop(queue: RemoteFile[]): Promise<void> {
    const { signal } = this;
    for (let f = queue.shift(); f && !signal.aborted; f = queue.shift()) {
      const entry = this.manifest.get(f.path);
      if (await this.alreadyHere(f, entry)) {
        this.counts.filesSkipped++;
        continue;
      }
      const work = fetchFile(this.host.transport, this.dir, this.folders, f, signal, { expectedSha: entry?.sha256 });
      this.inflight.add(work);
      void work.then(
        () => this.inflight.delete(work),
        () => this.inflight.delete(work),
      );
      const outcome = await abortable(work, signal).catch((e: NodeJS.ErrnoException) => {
        if (signal.aborted || !LOCAL_WRITE_ERRORS.includes(e.code ?? '')) throw e;
        return { bytes: 0, sha: undefined, problem: `cannot be written locally (${e.code}); not collected` };
      });
      if (outcome.problem) this.refused.push({ path: f.path, message: outcome.problem });
      else this.fetched(f, outcome.bytes, outcome.sha);
    }
  }

  /** True when the local copy has the remote size and, for a manifest entry, its sha256. */
  private async alreadyHere(f: RemoteFile, entry: ManifestEntry | undefined): Promise<boolean> {
    if (this.local.get(f.path)?.size !== f.size) return false;
    if (!entry) return true;
    const sha = await sha256File(join(this.folders.root, f.path));
    if (sha !== entry.sha256) return false;
    this.known.set(f.path, sha);
    return true;
  }

  /**
   * On a failure every branch is stopped and waited for (transfers to a frozen host at most
   * SETTLE_MS), so nothing of this collection still writes once it has returned or thrown.
   */
  private async settle<T>(branches: Promise<T>[]): Promise<T[]> {
    const failFast = (p: Promise<T>): Promise<T> =>
      p.catch((e: unknown) => {
        this.stop.abort(e);
        throw e;
      });
    const done = await Promise.allSettled(branches.map(failFast));
    const failed = done.find((d): d is PromiseRejectedResult => d.status === 'rejected');
    if (!failed) return done.map((d) => (d as PromiseFulfilledResult<T>).value);
    await settledWithin([...this.inflight], SETTLE_MS);
    throw failed.reason;
  }

  /** Files under artifacts/ on the host that the manifest does not list: written after it, or never listed. */
  private notInManifest(files: RemoteFile[]): string[] {
    const prefix = `${ARTIFACTS_DIR}/`;
    return files.filter((f) => f.path.startsWith(prefix) && f.path !== MANIFEST_FILE && !this.manifest.has(f.path)).map((f) => f.path);
  }

  private async verify(manifestPresent: boolean): Promise<ManifestCheck> {
    if (this.options.verify === false) return { verified: false, manifestPresent, verifiedFiles: [], missing: [], mismatched: [], problems: [] };
    const prefix = `${ARTIFACTS_DIR}/`;
    const hashes = new Map([...this.known].filter(([p]) => p.startsWith(prefix)).map(([p, s]) => [p.slice(prefix.length), s]));
    return verifyManifest(this.folders.root, hashes);
  }
}
