import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ERROR } from '../common/errors';

/** sha256 of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  // 1 MiB reads: the 64 KiB default spends more time per chunk than hashing it (339 vs 577 MiB/s measured, docs/benchmarks.md section 7).
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface LocalFile {
  /** Path relative to the walked root, with '/' separators. */
  path: string;
  size: number;
}

/** Thrown when a bundle holds a symbolic link or special file where only plain files belong. */
export class UnsafeEntryError extends Error {
  constructor(readonly path: string, kind: string, options?: { cause?: unknown }) {
    super(`${path} is a ${kind}; bundles hold only plain files and folders`, options);
    this.name = ERROR.unsafeEntry;
  }
}

/** Lists plain files below `root` (sorted, relative paths). Refuses symlinks and special files. */
export async function walkFiles(root: string, prefix = ''): Promise<LocalFile[]> {
  const out: LocalFile[] = [];
  async function visit(dir: string, rel: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const relPath = rel ? `${rel}/${entry.name}` : entry.name;
      const full = join(dir, entry.name);
      if (entry.isDirectory()) await visit(full, relPath);
      else if (entry.isFile()) out.push({ path: relPath, size: (await lstat(full)).size });
      else throw new UnsafeEntryError(relPath, entry.isSymbolicLink() ? 'symbolic link' : 'special file');
    }
  }
  await visit(prefix ? join(root, prefix) : root, prefix);
  return out;
}
