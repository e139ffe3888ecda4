/**
 * The generic host operations, written once over a Transport: stage a frozen bundle into
 * `<workRoot>/<runId>/`, launch it detached, probe it, cancel it, collect its runtime/ and
 * artifacts/ back. Each is idempotent, so a retried activity or a restarted worker repeats it safely.
 * Everything the far side prints is parsed as untrusted input.
 */
import { createHash, type Hash } from 'node:crypto';
import { appendFile, lstat, mkdir, open, readdir, readFile, realpath, rename, rm, stat, truncate } from 'node:fs/promises';
import { join, posix } from 'node:path';
import {
  COLLECTED_PARTS,
  FROZEN_FILE,
  FROZEN_PARTS,
  MANIFEST_FILE,
  MAX_MANIFEST_BYTES,
  PARTIAL_SUFFIX,
  RUN_SCRIPT,
  SECRET_ENV_FILE,
  isSafeRelativePath,
  parseManifest,
  sha256File,
  verifyManifest,
  walkFiles,
  type ManifestCheck,
  type ManifestEntry,
  type Problem,
} from '../bundle';
import { shellQuote as q } from '../bundle/render';
import { TarFormatError, TarReader } from './tar-reader';
import type { ExecResult, Transport } from './transport';
import { mainThreadWriter, WriterThread, type FileWriter } from './writer-thread';

export interface StageResult {
  filesSent: number;
  bytesSent: number;
  filesSkipped: number;
}

export interface LaunchResult {
  pid: number | null;
  /** True when this call found the run already launched and started nothing. */
  alreadyLaunched: boolean;
}

export type ProbeState = 'missing' | 'not-launched' | 'starting' | 'running' | 'exited' | 'vanished';

export interface Probe {
  state: ProbeState;
  pid: number | null;
  exitCode: number | null;
  artifactBytes: number;
  runtimeLogTail: string[];
  taskLogTail: string[];
}

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
}

/** Thrown when a staged copy does not match the local bundle after upload. Retryable. */
export class StageVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StageVerificationError';
  }
}

/** Thrown when a host operation is asked of a run that was never staged there. Not retryable. */
export class RunNotStagedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunNotStagedError';
  }
}

/**
 * Before a final collection: a run whose wrapper died without writing its exit code (killed, host
 * rebooted) gets a manifest of what is on disk now, so what is collected can still be verified.
 */
const SEAL_VANISHED = `pid=$(cat runtime/pid 2>/dev/null)
if [ -n "$pid" ] && [ ! -s runtime/exit_code ] && [ ! -s artifacts/manifest.json ] && ! kill -0 "$pid" 2>/dev/null; then
  python3 scripts/orbit/manifest.py "$PWD" > artifacts/manifest.json.tmp 2>/dev/null && mv -f artifacts/manifest.json.tmp artifacts/manifest.json
  echo "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) process $pid vanished without an exit code; manifest of what remains written by Orbit" >> runtime/runtime.log
fi`;

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Files up to this size come in the tar stream by default (docs/benchmarks.md). */
const STREAM_BELOW_BYTES = 1024 * 1024;
/** Streamed files wait for the local writers in a queue of at most this many bytes; then the stream pauses. */
const STREAM_QUEUE_BYTES = 16 * 1024 * 1024;
/** Longest wait, after a failure, for transfers still running to stop. */
const SETTLE_MS = 10_000;
/** Below this many streamed files their writes stay on the main thread (a thread costs more than it saves). */
const WRITER_THREAD_MIN_FILES = 256;
/** Local errors that make one file impossible to write (a folder where a file goes, ...): refused, not fatal. */
const LOCAL_WRITE_ERRORS = ['ENOTDIR', 'EISDIR', 'EEXIST', 'ELOOP'];

interface RemoteFile {
  path: string;
  size: number;
}
/** Files under runtime/ that are the control plane's own or secret; never collected. */
const NEVER_COLLECT = new Set([SECRET_ENV_FILE, FROZEN_FILE, `${FROZEN_FILE}.tmp`, `${MANIFEST_FILE}.tmp`, 'runtime/collection.json', 'runtime/collection.json.tmp']);

export class ShellHost {
  readonly name: string;
  readonly transport: Transport;
  readonly workRoot: string;

  constructor(opts: { name: string; transport: Transport; workRoot: string }) {
    if (!/^\/[A-Za-z0-9._+\/-]*$/.test(opts.workRoot)) {
      throw new Error(`host ${opts.name}: workRoot must be an absolute path of A-Z, a-z, 0-9, '.', '_', '+', '-', '/'; got "${opts.workRoot}"`);
    }
    this.name = opts.name;
    this.transport = opts.transport;
    this.workRoot = opts.workRoot.replace(/\/+$/, '');
  }

  runDir(runId: string): string {
    if (!RUN_ID.test(runId)) throw new Error(`run id "${runId}" must match ${RUN_ID}`);
    return `${this.workRoot}/${runId}`;
  }

  /** Uploads job.json, inputs/ and scripts/, skipping files already there with the same sha256, then verifies. */
  async stage(runId: string, bundleDir: string, options: { signal?: AbortSignal } = {}): Promise<StageResult> {
    const files: { local: string; remote: string }[] = [];
    for (const part of FROZEN_PARTS) {
      const found = part === 'job.json' ? [{ path: part }] : await walkFiles(bundleDir, part);
      for (const f of found) files.push({ local: join(bundleDir, f.path), remote: f.path });
    }
    return this.upload(runId, files, [...FROZEN_PARTS], options.signal);
  }

  /**
   * Uploads local files to paths relative to the run folder, skipping those already there with the
   * same sha256; files under `roots` that the set does not name are removed; then verifies every hash.
   */
  async upload(runId: string, files: { local: string; remote: string }[], roots: string[], signal?: AbortSignal): Promise<StageResult> {
    const dir = this.runDir(runId);
    const local = new Map<string, { local: string; sha: string; size: number; executable: boolean }>();
    for (const f of files) {
      if (!isSafeRelativePath(f.remote)) throw new Error(`cannot upload to unsafe path ${JSON.stringify(f.remote)}`);
      const st = await stat(f.local);
      local.set(f.remote, { local: f.local, sha: await sha256File(f.local), size: st.size, executable: (st.mode & 0o111) !== 0 });
    }
    const dirs = [...new Set([...local.keys()].map((p) => posix.dirname(p)).filter((d) => d !== '.'))];
    const remote = await this.remoteHashes(dir, roots, dirs, signal);
    const toSend = [...local.entries()].filter(([path, f]) => remote.get(path) !== f.sha);
    let bytesSent = 0;
    for (const [path, f] of toSend) {
      await this.transport.upload(f.local, `${dir}/${path}${PARTIAL_SUFFIX}`, { signal });
      bytesSent += f.size;
    }
    const extras = [...remote.keys()].filter((p) => !local.has(p));
    // Paths go on stdin (NUL-separated), never into the script: any number of files, any names.
    const ops = [
      ...toSend.map(([path, f]) => `${f.executable ? 'x' : 'f'}\0${path}\0`),
      ...extras.map((p) => `r\0${p}\0`),
    ];
    if (ops.length) {
      const script = `set -e
cd ${q(dir)}
while IFS= read -r -d '' op && IFS= read -r -d '' p; do
  case "$op" in
    r) rm -f -- "$p" ;;
    x) mv -f -- "$p${PARTIAL_SUFFIX}" "$p"; chmod 755 -- "$p" ;;
    *) mv -f -- "$p${PARTIAL_SUFFIX}" "$p" ;;
  esac
done`;
      const r = await this.transport.exec(script, { stdin: ops.join(''), signal });
      if (r.code !== 0) throw new StageVerificationError(`upload to ${this.name} could not finish: ${r.stderr.trim()}`);
    }
    const after = await this.remoteHashes(dir, roots, [], signal);
    const wrong = [...local.entries()].filter(([p, f]) => after.get(p) !== f.sha).map(([p]) => p);
    if (wrong.length || after.size !== local.size) {
      throw new StageVerificationError(`copy on ${this.name} differs from the local files: ${wrong.slice(0, 5).join(', ') || 'extra files'}`);
    }
    return { filesSent: toSend.length, bytesSent, filesSkipped: local.size - toSend.length };
  }

  private async remoteHashes(dir: string, roots: string[], mkdirs: string[], signal?: AbortSignal): Promise<Map<string, string>> {
    const script = [
      'set -e',
      `mkdir -p ${q(dir)} && cd ${q(dir)}`,
      'mkdir -p inputs scripts runtime artifacts',
      'while IFS= read -r -d "" d; do mkdir -p -- "$d"; done',
      `find ${roots.map(q).join(' ')} -type f ! -name "*${PARTIAL_SUFFIX}" -print0 2>/dev/null | xargs -0 -r sha256sum --zero`,
    ].join('\n');
    const r = await this.transport.exec(script, { stdin: mkdirs.map((d) => d + '\0').join(''), signal });
    if (r.code !== 0) throw new StageVerificationError(`cannot prepare ${dir} on ${this.name}: ${r.stderr.trim() || `exit ${r.code}`}`);
    const out = new Map<string, string>();
    for (const record of r.stdout.split('\0')) {
      const m = /^([0-9a-f]{64}) [ *](.+)$/s.exec(record.replace(/^\n/, ''));
      if (m && m[1] && m[2] && isSafeRelativePath(m[2])) out.set(m[2], m[1]);
    }
    return out;
  }

  /**
   * Starts scripts/orbit/run.sh detached (own session and process group) unless this run was
   * launched already. Secrets (and per-launch env such as ORBIT_RESUME_FROM) travel on stdin into a
   * 0600 file the wrapper reads and deletes.
   */
  async launch(runId: string, options: { secrets?: Record<string, string>; env?: Record<string, string> } = {}): Promise<LaunchResult> {
    const dir = this.runDir(runId);
    for (const name of Object.keys({ ...options.env, ...options.secrets })) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`launch on ${this.name}: "${name}" is not a valid environment variable name`);
    }
    const secretFile = Object.entries({ ...options.env, ...options.secrets })
      .map(([k, v]) => `export ${k}=${q(v)}\n`)
      .join('');
    const script = `set -u
cd ${q(dir)} 2>/dev/null || { echo ORBIT_ERR ${q(dir)} does not exist: stage the bundle first; exit 3; }
[ -f ${RUN_SCRIPT} ] || { echo "ORBIT_ERR ${RUN_SCRIPT} is missing: stage the bundle first"; exit 3; }
if mkdir runtime/.launched 2>/dev/null; then
  ( umask 077; cat > ${SECRET_ENV_FILE} )
  [ -s ${SECRET_ENV_FILE} ] || rm -f ${SECRET_ENV_FILE}
  ORBIT_RUN_ID=${q(runId)} setsid nohup bash ${RUN_SCRIPT} </dev/null >runtime/wrapper.out 2>&1 &
  echo "$!" > runtime/.launched/pid
  echo ORBIT_LAUNCHED
else
  cat >/dev/null
  echo ORBIT_EXISTING
fi
for i in $(seq 100); do [ -s runtime/pid ] || [ -s runtime/exit_code ] && break; sleep 0.1; done
echo "pid=$(cat runtime/pid 2>/dev/null || cat runtime/.launched/pid 2>/dev/null)"
`;
    const r = await this.transport.exec(script, { stdin: secretFile });
    if (r.code === 3) throw new RunNotStagedError(r.stdout.replace(/^ORBIT_ERR /, '').trim());
    if (r.code !== 0) throw new Error(`launch on ${this.name} failed (exit ${r.code}): ${r.stderr.trim()}`);
    const pid = /^pid=(\d{1,10})$/m.exec(r.stdout)?.[1];
    return { pid: pid ? Number(pid) : null, alreadyLaunched: r.stdout.includes('ORBIT_EXISTING') };
  }

  /** One cheap look at the run: alive, exit code, artifact bytes and log tails. */
  async probe(runId: string, taskLogFile: string, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<Probe> {
    const dir = this.runDir(runId);
    const logPath = isSafeRelativePath(taskLogFile) ? `artifacts/${taskLogFile}` : 'artifacts/task.log';
    const script = `cd ${q(dir)} 2>/dev/null || { echo "state=missing"; exit 0; }
pid=$(cat runtime/pid 2>/dev/null)
alive=0
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
  alive=1
  if [ -r /proc/$pid/cmdline ] && ! tr '\\0' ' ' < /proc/$pid/cmdline | grep -q 'orbit/run.sh'; then alive=0; fi
fi
code=$(cat runtime/exit_code 2>/dev/null)
launched=0; [ -d runtime/.launched ] && launched=1
echo "pid=$pid"; echo "alive=$alive"; echo "exit=$code"; echo "launched=$launched"
echo "bytes=$(du -sb artifacts 2>/dev/null | cut -f1)"
echo "--runtime.log"; tail -c 4000 runtime/runtime.log 2>/dev/null | tail -n 5
echo "--task.log"; tail -c 4000 ${q(logPath)} 2>/dev/null | tail -n 5
`;
    const r = await this.transport.exec(script, { signal: options.signal, timeoutMs: options.timeoutMs, maxOutputBytes: 64 * 1024 });
    return parseProbe(r.stdout);
  }

  /** TERM to the run's whole process group, KILL after `graceSeconds`; a manifest is written if the wrapper could not. */
  async cancel(runId: string, graceSeconds: number): Promise<'stopped' | 'killed' | 'not-running'> {
    const dir = this.runDir(runId);
    const grace = Math.max(0, Math.floor(graceSeconds));
    const script = `cd ${q(dir)} 2>/dev/null || { echo ORBIT_NOT_RUNNING; exit 0; }
stamp() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }
# A group is alive while it has a member that is not a zombie (zombies wait for a slow reaper).
alive() { ps -e -o pgid=,stat= 2>/dev/null | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'; }
pid=$(cat runtime/pid 2>/dev/null || cat runtime/.launched/pid 2>/dev/null)
if [ -z "$pid" ] || ! alive "$pid"; then echo ORBIT_NOT_RUNNING; exit 0; fi
echo "$(stamp) cancel requested: TERM to process group $pid" >> runtime/runtime.log
kill -TERM -- "-$pid" 2>/dev/null
for i in $(seq ${grace * 10}); do alive "$pid" || { echo ORBIT_STOPPED; exit 0; }; sleep 0.1; done
alive "$pid" || { echo ORBIT_STOPPED; exit 0; }
echo "$(stamp) grace of ${grace}s over: KILL to process group $pid" >> runtime/runtime.log
kill -KILL -- "-$pid" 2>/dev/null
sleep 0.2
if [ ! -s runtime/exit_code ]; then
  python3 scripts/orbit/manifest.py "$PWD" > artifacts/manifest.json.tmp 2>/dev/null && mv -f artifacts/manifest.json.tmp artifacts/manifest.json
  echo 137 > runtime/exit_code
fi
echo ORBIT_KILLED
`;
    const r = await this.transport.exec(script);
    if (r.stdout.includes('ORBIT_KILLED')) return 'killed';
    if (r.stdout.includes('ORBIT_STOPPED')) return 'stopped';
    return 'not-running';
  }

  /**
   * Brings runtime/ and artifacts/ back into `bundleDir`. Files already local and verified are not
   * fetched again; a cut transfer resumes from its partial file; manifest entries are checked by size
   * and sha256 before they are renamed into place. Unsafe paths, escaping links and sizes that
   * disagree with the manifest are refused and reported, never written.
   *
   * Small files not yet local come in one tar stream over one exec (one round trip for all of them,
   * where SFTP needs three per file), at the same time as the larger ones come over SFTP, hashed as
   * they arrive. Whatever the stream does not deliver intact (tar missing on the host, a file changed
   * while it was read, a corrupt archive) is fetched again over SFTP.
   */
  async collect(runId: string, bundleDir: string, options: CollectOptions = {}): Promise<CollectResult> {
    const dir = this.runDir(runId);
    const root = await realpath(bundleDir);
    // Stops every transfer of this collection on the caller's abort or on the first failure.
    const stop = new AbortController();
    const onAbort = () => stop.abort(options.signal?.reason);
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const signal = stop.signal;
    try {
      const listing = await this.transport.exec(
        `cd ${q(dir)} 2>/dev/null || { echo ORBIT_ERR ${q(dir)} does not exist on this host; exit 3; }
${options.verify === false ? '' : SEAL_VANISHED}
find artifacts runtime -mindepth 1 \\( -type d -printf 'd\\0%p\\0\\0' \\) -o \\( -type f -printf 'f\\0%p\\0%s\\0' \\) -o \\( -type l -printf 'l\\0%p\\0%l\\0' \\) -o -printf 'o\\0%p\\0\\0'`,
        { signal, timeoutMs: options.execTimeoutMs, maxOutputBytes: 256 * 1024 * 1024 },
      );
      if (listing.code === 3) throw new RunNotStagedError(listing.stdout.replace(/^ORBIT_ERR /, '').trim());
      if (listing.code !== 0) throw new Error(`listing ${dir} on ${this.name} failed (exit ${listing.code}): ${listing.stderr.trim()}`);
      const parsedListing = parseListing(listing.stdout);
      const refused = parsedListing.refused;
      const files = withoutIncompleteUnits(parsedListing.files, options.atomicDirs ?? []);
      const folders = new LocalFolders(root);

      let manifestEntries = new Map<string, ManifestEntry>();
      const manifestFile = files.find((f) => f.path === MANIFEST_FILE);
      if (manifestFile) {
        if (manifestFile.size > MAX_MANIFEST_BYTES) refused.push({ path: MANIFEST_FILE, message: `is ${manifestFile.size} bytes, over the 64 MiB limit` });
        else {
          const fetched = await abortable(this.fetchFile(dir, root, folders, manifestFile, signal, { wholeOnly: true }), signal).catch((e: Error) => {
            if (signal.aborted) throw e;
            return { problem: e.message };
          });
          if (fetched.problem) refused.push({ path: MANIFEST_FILE, message: fetched.problem });
          else {
            const parsed = parseManifest(await readFile(join(root, MANIFEST_FILE), 'utf8'));
            if (parsed.ok) manifestEntries = new Map(parsed.value.files.map((e) => [`artifacts/${e.path}`, e]));
            else refused.push(...parsed.problems);
          }
        }
      }

      const result: CollectResult = { filesFetched: 0, bytesFetched: 0, filesSkipped: 0, refused, manifest: undefined as unknown as ManifestCheck };
      const known = new Map<string, string>();
      const fetched = (f: RemoteFile, bytes: number, sha: string | undefined) => {
        result.filesFetched++;
        result.bytesFetched += bytes;
        if (sha) known.set(f.path, sha);
        options.onProgress?.({ files: result.filesFetched, bytes: result.bytesFetched });
      };

      // Sort what is to do by the local state: one readdir per folder, an lstat only for names present.
      const local = await localState(root, files);
      const streamLimit = options.streamBelowBytes ?? STREAM_BELOW_BYTES;
      const streamed: RemoteFile[] = [];
      const perFile: RemoteFile[] = [];
      for (const f of files) {
        if (f.path === MANIFEST_FILE) continue;
        const entry = manifestEntries.get(f.path);
        if (entry && entry.size !== f.size) {
          refused.push({ path: f.path, message: `remote size ${f.size} differs from the manifest's ${entry.size}; not collected` });
          continue;
        }
        const here = local.get(f.path);
        const resumable = here?.part || (here?.size != null && here.size < f.size);
        if (streamLimit > 0 && f.size <= streamLimit && here?.size !== f.size && !resumable) streamed.push(f);
        else perFile.push(f);
      }

      const inflight = new Set<Promise<unknown>>();
      const fetchLoop = async (queue: RemoteFile[]): Promise<void> => {
        for (let f = queue.shift(); f && !signal.aborted; f = queue.shift()) {
          const entry = manifestEntries.get(f.path);
          if (local.get(f.path)?.size === f.size) {
            if (!entry) {
              result.filesSkipped++;
              continue;
            }
            const sha = await sha256File(join(root, f.path));
            if (sha === entry.sha256) {
              known.set(f.path, sha);
              result.filesSkipped++;
              continue;
            }
          }
          const work = this.fetchFile(dir, root, folders, f, signal, { expectedSha: entry?.sha256 });
          inflight.add(work);
          void work.then(
            () => inflight.delete(work),
            () => inflight.delete(work),
          );
          const outcome = await abortable(work, signal).catch((e: NodeJS.ErrnoException) => {
            if (signal.aborted || !LOCAL_WRITE_ERRORS.includes(e.code ?? '')) throw e;
            return { bytes: 0, sha: undefined, problem: `cannot be written locally (${e.code}); not collected` };
          });
          if (outcome.problem) refused.push({ path: f.path, message: outcome.problem });
          else fetched(f, outcome.bytes, outcome.sha);
        }
      };
      const fetchAll = (queue: RemoteFile[]) => Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, () => fetchLoop(queue)));
      const failFast = <T>(p: Promise<T>): Promise<T> =>
        p.catch((e: unknown) => {
          stop.abort(e);
          throw e;
        });

      // On a failure every branch is stopped and waited for (transfers to a frozen host at most
      // SETTLE_MS), so nothing of this collection still writes once it has returned or thrown.
      const settle = async <T>(branches: Promise<T>[]): Promise<T[]> => {
        const done = await Promise.allSettled(branches.map(failFast));
        const failed = done.find((d): d is PromiseRejectedResult => d.status === 'rejected');
        if (!failed) return done.map((d) => (d as PromiseFulfilledResult<T>).value);
        await Promise.race([Promise.allSettled([...inflight]), new Promise((r) => setTimeout(r, SETTLE_MS).unref())]);
        throw failed.reason;
      };
      const [leftovers = []] = await settle<RemoteFile[] | void>([
        streamed.length ? this.streamFiles(dir, folders, streamed, manifestEntries, signal, fetched, refused) : Promise.resolve([]),
        fetchAll(perFile).then(() => undefined),
      ]);
      if (leftovers.length) await settle([fetchAll(leftovers)]);
      if (signal.aborted) throw signal.reason ?? new Error('collection aborted');
      result.manifest =
        options.verify === false
          ? { verified: false, manifestPresent: Boolean(manifestFile), verifiedFiles: [], missing: [], mismatched: [], problems: [] }
          : await verifyManifest(root, new Map([...known].filter(([p]) => p.startsWith('artifacts/')).map(([p, s]) => [p.slice('artifacts/'.length), s])));
      return result;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Fetches `files` (all small, none of them local yet) as one tar stream: `tar -T -` on the host
   * reads the paths from stdin; each entry is checked (a path asked for, not seen before, a regular
   * file of the listed size, and the manifest's sha256 when there is one), written to `.orbit-part`
   * and renamed into place as it arrives. Returns the files the stream did not deliver intact.
   */
  private async streamFiles(
    dir: string,
    folders: LocalFolders,
    files: RemoteFile[],
    manifest: Map<string, ManifestEntry>,
    signal: AbortSignal,
    fetched: (f: RemoteFile, bytes: number, sha: string) => void,
    refused: Problem[],
  ): Promise<RemoteFile[]> {
    const wanted = new Map(files.map((f) => [f.path, f]));
    const delivered = new Set<string>();
    // Entries are written as they arrive, by a thread of their own when there are many; the stream
    // pauses while more than STREAM_QUEUE_BYTES wait to be written.
    const writer: FileWriter = files.length >= WRITER_THREAD_MIN_FILES ? new WriterThread() : mainThreadWriter;
    const writing = new Set<Promise<void>>();
    let queuedBytes = 0;
    let writeError: Error | undefined;
    const maxEntryBytes = files.reduce((m, f) => Math.max(m, f.size), 0);
    const reader = new TarReader(
      async (e) => {
        const f = wanted.get(e.path);
        if (!f || delivered.has(f.path) || e.type !== 'file' || !e.data || e.size !== f.size) return;
        const sha = createHash('sha256').update(e.data).digest('hex');
        const entry = manifest.get(f.path);
        if (entry && entry.sha256 !== sha) return; // changed while read: fetched again over SFTP
        delivered.add(f.path);
        if (!(await folders.ensure(posix.dirname(f.path)))) {
          refused.push({ path: f.path, message: 'resolves outside the bundle; not collected' });
          return;
        }
        const target = join(folders.root, f.path);
        const size = e.data.length;
        const w = writer
          .write(target + PARTIAL_SUFFIX, target, new Uint8Array(e.data)) // a copy the thread can own
          .then(
            () => fetched(f, size, sha),
            (err: NodeJS.ErrnoException) => {
              if (LOCAL_WRITE_ERRORS.includes(err.code ?? '')) refused.push({ path: f.path, message: `cannot be written locally (${err.code}); not collected` });
              else writeError ??= err;
            },
          )
          .finally(() => {
            writing.delete(w);
            queuedBytes -= size;
          });
        writing.add(w);
        queuedBytes += size;
        while (queuedBytes > STREAM_QUEUE_BYTES && !writeError) await Promise.race(writing);
        if (writeError) throw writeError;
      },
      { maxEntryBytes },
    );
    let outcome: ExecResult | undefined;
    try {
      outcome = await this.transport.execStream(`cd ${q(dir)} && exec tar --null --no-recursion --hard-dereference -T - -cf -`, {
        stdin: files.map((f) => `${f.path}\0`).join(''),
        signal,
        onStdout: (chunk) => reader.push(chunk),
      });
    } catch (e) {
      if (!(e instanceof TarFormatError)) throw e;
    } finally {
      await Promise.allSettled(writing);
      await writer.close();
    }
    if (writeError) throw writeError;
    // tar names a file it could not read whole on stderr ("file changed as we read it", "File shrank
    // by N bytes; padding with zeros"). Without a manifest hash to prove it, such a copy is fetched again.
    const complaints = outcome?.stderr ?? '';
    const again: RemoteFile[] = [];
    for (const f of files) {
      if (!delivered.has(f.path)) again.push(f);
      else if (complaints && !manifest.has(f.path) && complaints.includes(`${f.path}:`)) {
        await rm(join(folders.root, f.path), { force: true });
        again.push(f);
      }
    }
    return again;
  }

  /**
   * Fetches one file into `<target>.orbit-part`, resuming from what is there (or from a shorter local
   * copy, unless `wholeOnly`), checks its size and, when known, its sha256 (computed as the bytes
   * arrive), then renames it into place.
   */
  private async fetchFile(
    dir: string,
    root: string,
    folders: LocalFolders,
    file: RemoteFile,
    signal: AbortSignal,
    opts: { wholeOnly?: boolean; expectedSha?: string },
  ): Promise<{ bytes: number; sha?: string; problem?: string }> {
    const { path: rel, size } = file;
    const target = join(root, rel);
    if (!(await folders.ensure(posix.dirname(rel)))) return { bytes: 0, problem: 'resolves outside the bundle; not collected' };
    const part = target + PARTIAL_SUFFIX;
    let bytes = 0;
    for (let attempt = 0; attempt < 2; attempt++) {
      let offset = await sizeOf(part);
      const current = await sizeOf(target);
      if (offset === null && current !== null && current < size && !opts.wholeOnly && attempt === 0) {
        await rename(target, part); // a shorter local copy (a growing log): continue after it
        offset = current;
      }
      if (offset !== null && offset > size) {
        await truncate(part, 0);
        offset = 0;
      }
      const hash = opts.expectedSha ? createHash('sha256') : undefined;
      if (hash && offset) await hashPrefix(part, offset, hash);
      if (size - (offset ?? 0) > 0) {
        bytes += await this.transport.download(`${dir}/${rel}`, part, offset ?? 0, size - (offset ?? 0), { signal, onData: hash && ((c) => hash.update(c)) });
      } else await appendFile(part, '');
      const got = await sizeOf(part);
      if (got !== size) {
        await rm(part, { force: true });
        return { bytes, problem: `changed during transfer: got ${got ?? 0} bytes, expected ${size}` };
      }
      const sha = hash?.digest('hex');
      if (opts.expectedSha && sha !== opts.expectedSha) {
        await rm(part, { force: true });
        if (attempt === 0) continue; // a resumed prefix was wrong: fetch it whole once more
        return { bytes, problem: 'sha256 differs from the manifest after a full transfer; not collected' };
      }
      await rename(part, target);
      return { bytes, sha };
    }
    return { bytes, problem: 'could not be collected' };
  }
}

/** Drops files inside unit folders (`artifacts/<parent>/<unit>/...`) whose marker file is not there yet. */
export function withoutIncompleteUnits<T extends { path: string }>(files: T[], atomicDirs: { parent: string; marker: string }[]): T[] {
  if (!atomicDirs.length) return files;
  const present = new Set(files.map((f) => f.path));
  return files.filter((f) => {
    for (const a of atomicDirs) {
      const prefix = `artifacts/${a.parent}/`;
      if (!f.path.startsWith(prefix)) continue;
      const unit = f.path.slice(prefix.length).split('/')[0];
      if (!unit || !f.path.slice(prefix.length).includes('/')) return true; // a file directly in the parent
      return present.has(`${prefix}${unit}/${a.marker}`);
    }
    return true;
  });
}

/** Rejects as soon as `signal` aborts, even if `work` never settles (a transfer to a frozen host). */
function abortable<T>(work: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(signal.reason ?? new Error('aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/**
 * The local folders of one collection: each is created (or checked) once, one part at a time, and
 * refused when a part is a link or not a folder, so nothing is ever written outside the bundle.
 */
class LocalFolders {
  private readonly made = new Map<string, Promise<boolean>>();
  constructor(readonly root: string) {}

  ensure(rel: string): Promise<boolean> {
    const key = rel === '.' ? '' : rel;
    let p = this.made.get(key);
    if (!p) {
      p = this.check(key);
      this.made.set(key, p);
    }
    return p;
  }

  private async check(rel: string): Promise<boolean> {
    if (!rel) return true;
    const parent = posix.dirname(rel);
    if (!(await this.ensure(parent === '.' ? '' : parent))) return false;
    const current = join(this.root, rel);
    try {
      return (await lstat(current)).isDirectory();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      await mkdir(current).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
      return (await lstat(current)).isDirectory();
    }
  }
}

/**
 * The local size (null when absent) and whether a `.orbit-part` is there, for each file: one readdir
 * per folder, an lstat only for the names it lists.
 */
async function localState(root: string, files: RemoteFile[]): Promise<Map<string, { size: number | null; part: boolean }>> {
  const byFolder = new Map<string, RemoteFile[]>();
  for (const f of files) {
    const d = posix.dirname(f.path);
    const list = byFolder.get(d);
    if (list) list.push(f);
    else byFolder.set(d, [f]);
  }
  const out = new Map<string, { size: number | null; part: boolean }>();
  const folders = [...byFolder.entries()];
  const one = async ([folder, list]: [string, RemoteFile[]]) => {
    let names: Set<string>;
    try {
      names = new Set(await readdir(join(root, folder)));
    } catch {
      names = new Set();
    }
    for (const f of list) {
      const base = posix.basename(f.path);
      out.set(f.path, {
        size: names.has(base) ? await sizeOf(join(root, f.path)) : null,
        part: names.has(base + PARTIAL_SUFFIX),
      });
    }
  };
  await Promise.all(Array.from({ length: 8 }, async () => {
    for (let next = folders.shift(); next; next = folders.shift()) await one(next);
  }));
  return out;
}

/** Feeds the first `bytes` bytes of a local file to `hash` (a resumed download's prefix). */
async function hashPrefix(path: string, bytes: number, hash: Hash): Promise<void> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(Math.min(bytes, 4 * 1024 * 1024));
    for (let at = 0; at < bytes; ) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, bytes - at), at);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      at += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    const st = await lstat(path);
    return st.isFile() ? st.size : null;
  } catch {
    return null;
  }
}

/** Parses the remote listing (NUL-separated type, path, size-or-link triples), refusing anything unsafe. */
export function parseListing(text: string): { files: { path: string; size: number }[]; refused: Problem[] } {
  const fields = text.split('\0');
  const files: { path: string; size: number }[] = [];
  const refused: Problem[] = [];
  for (let i = 0; i + 2 < fields.length; i += 3) {
    const [type, path = '', extra = ''] = fields.slice(i, i + 3);
    const top = path.split('/')[0] ?? '';
    if (!isSafeRelativePath(path) || !(COLLECTED_PARTS as readonly string[]).includes(top)) {
      refused.push({ path: JSON.stringify(path), message: 'unsafe path from the host; not collected' });
      continue;
    }
    if (NEVER_COLLECT.has(path) || path.endsWith(PARTIAL_SUFFIX)) continue;
    if (type === 'f') {
      if (!/^\d{1,15}$/.test(extra)) refused.push({ path, message: `size "${extra.slice(0, 20)}" is not a number; not collected` });
      else files.push({ path, size: Number(extra) });
    } else if (type === 'l') {
      const target = posix.normalize(posix.join(posix.dirname(path), extra));
      const escapes = extra.startsWith('/') || target.startsWith('..');
      refused.push({ path, message: `symbolic link to ${JSON.stringify(extra)}${escapes ? ', outside the bundle' : ''}; links are not collected` });
    } else if (type === 'o') {
      refused.push({ path, message: 'special file (not a plain file or folder); not collected' });
    }
  }
  return { files, refused };
}

function parseProbe(stdout: string): Probe {
  const [head = '', rest = ''] = stdout.split('\n--runtime.log\n');
  const [runtimeLog = '', taskLog = ''] = rest.split('\n--task.log\n');
  const kv = new Map<string, string>();
  for (const line of head.split('\n')) {
    const m = /^([a-z]+)=(.*)$/.exec(line);
    if (m && m[1]) kv.set(m[1], m[2] ?? '');
  }
  const int = (k: string): number | null => {
    const v = kv.get(k)?.trim() ?? '';
    return /^-?\d{1,12}$/.test(v) ? Number(v) : null;
  };
  const lines = (s: string) =>
    s
      .split('\n')
      .filter((l) => l.trim())
      .slice(-5)
      .map((l) => l.slice(0, 500));
  const pid = int('pid');
  const exitCode = int('exit');
  let state: ProbeState;
  if (kv.get('state') === 'missing') state = 'missing';
  else if (exitCode !== null) state = 'exited';
  else if (kv.get('alive') === '1') state = 'running';
  else if (pid !== null) state = 'vanished';
  else if (kv.get('launched') === '1') state = 'starting';
  else state = 'not-launched';
  return { state, pid, exitCode, artifactBytes: int('bytes') ?? 0, runtimeLogTail: lines(runtimeLog), taskLogTail: lines(taskLog) };
}
