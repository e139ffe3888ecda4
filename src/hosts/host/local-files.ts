/**
 * The local side of a collection: folders made one part at a time and never through a link, the
 * state of files already here, and one file fetched (resumed, checked, renamed into place).
 */
import { createHash, type Hash } from 'node:crypto';
import { appendFile, lstat, mkdir, open, readdir, rename, rm, truncate } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { PARTIAL_SUFFIX } from '../../common/layout';
import type { Transport } from '../transport';
import type { RemoteFile } from './listing';

/**
 * Local errors that make one file impossible to write here (a folder where a file goes, a name too
 * long for this file system or not valid in it): that file is refused and listed, the rest goes on.
 */
export const LOCAL_WRITE_ERRORS = ['ENOTDIR', 'EISDIR', 'EEXIST', 'ELOOP', 'ENAMETOOLONG', 'EILSEQ'];
/** Local errors that stop every write of a collection (the worker's disk, quota, permissions, descriptors): the collection ends. */
export const LOCAL_FATAL_ERRORS = ['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EMFILE', 'ENFILE', 'EIO'];
/** Longest file name (bytes) the usual local file systems take. */
const NAME_MAX = 255;

/**
 * Where a file is received before it is renamed into place: `<name>.orbit-part` beside it, or, when
 * that name would be too long for the file system, a short hashed name beside it.
 */
export function partialPath(target: string): string {
  const base = posix.basename(target);
  if (Buffer.byteLength(base + PARTIAL_SUFFIX) <= NAME_MAX) return target + PARTIAL_SUFFIX;
  return join(posix.dirname(target), `.${createHash('sha256').update(base).digest('hex').slice(0, 32)}${PARTIAL_SUFFIX}`);
}
/** Folders listed at once when the local state is read. */
const LIST_CONCURRENCY = 8;

/**
 * The local folders of one collection: each is created (or checked) once, one part at a time, and
 * refused when a part is a link or not a folder, so nothing is ever written outside the bundle.
 */
export class LocalFolders {
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

export type LocalState = Map<string, { size: number | null; part: boolean }>;

/**
 * The local size (null when absent) and whether a `.orbit-part` is there, for each file: one readdir
 * per folder, an lstat only for the names it lists.
 */
export async function localState(root: string, files: RemoteFile[]): Promise<LocalState> {
  const byFolder = new Map<string, RemoteFile[]>();
  for (const f of files) {
    const d = posix.dirname(f.path);
    const list = byFolder.get(d);
    if (list) list.push(f);
    else byFolder.set(d, [f]);
  }
  const out: LocalState = new Map();
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
        part: names.has(posix.basename(partialPath(f.path))),
      });
    }
  };
  await Promise.all(
    Array.from({ length: LIST_CONCURRENCY }, async () => {
      for (let next = folders.shift(); next; next = folders.shift()) await one(next);
    }),
  );
  return out;
}

/**
 * Fetches one file into `<target>.orbit-part`, resuming from what is there (or from a shorter local
 * copy, unless `wholeOnly`), checks its size and, when known, its sha256 (computed as the bytes
 * arrive), then renames it into place.
 */
export async function fetchFile(
  transport: Transport,
  dir: string,
  folders: LocalFolders,
  file: RemoteFile,
  signal: AbortSignal,
  opts: { wholeOnly?: boolean; expectedSha?: string },
): Promise<{ bytes: number; sha?: string; problem?: string }> {
  const { path: rel, size } = file;
  const target = join(folders.root, rel);
  if (!(await folders.ensure(posix.dirname(rel)))) return { bytes: 0, problem: 'resolves outside the bundle; not collected' };
  const part = partialPath(target);
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
      bytes += await transport.download(`${dir}/${rel}`, part, offset ?? 0, size - (offset ?? 0), { signal, onData: hash && ((c) => hash.update(c)) });
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
