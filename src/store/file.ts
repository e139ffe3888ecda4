/**
 * The `file://DIR` store: objects are files under DIR, keys are relative paths. Writes go to a
 * temporary file beside the target and are renamed into place, so a reader never sees half an
 * object. One machine, or several sharing DIR over NFS.
 */
import { constants } from 'node:fs';
import { copyFile, link, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { StoreError, type BundleStore, type ObjectInfo } from './store';

let tmpCounter = 0;

export class FileStore implements BundleStore {
  readonly url: string;

  constructor(readonly root: string) {
    this.root = resolve(root);
    this.url = `file://${this.root}`;
  }

  private path(key: string): string {
    const p = resolve(this.root, key);
    if (p !== this.root && !p.startsWith(this.root + sep)) throw new StoreError('bad-url', `store ${this.url}: key ${key} leaves the store`);
    return p;
  }

  private tmpFor(target: string): string {
    return `${target}.tmp-${process.pid}-${++tmpCounter}`;
  }

  async check(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true });
      const probe = join(this.root, `.check-${process.pid}-${++tmpCounter}`);
      await writeFile(probe, '');
      await rm(probe, { force: true });
    } catch (e) {
      throw new StoreError('unreachable', `store ${this.url}: cannot write there (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check the folder or set ORBIT_STORE`, { cause: e });
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(this.path(key));
      return s.isFile() ? { key, size: s.size, lastModified: s.mtime } : undefined;
    } catch {
      return undefined;
    }
  }

  private async place(key: string, write: (tmp: string) => Promise<void>): Promise<void> {
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    const tmp = this.tmpFor(target);
    try {
      await write(tmp);
      await rename(tmp, target);
    } catch (e) {
      await rm(tmp, { force: true });
      throw new StoreError('unreachable', `store ${this.url}: cannot write ${key} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
    }
  }

  async putFile(key: string, path: string): Promise<void> {
    await this.place(key, (tmp) => copyFile(path, tmp, constants.COPYFILE_FICLONE));
  }

  async putBytes(key: string, data: Buffer | string): Promise<void> {
    await this.place(key, (tmp) => writeFile(tmp, data));
  }

  async createBytes(key: string, data: Buffer | string): Promise<boolean> {
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    const tmp = this.tmpFor(target);
    await writeFile(tmp, data);
    try {
      await link(tmp, target); // link(2) fails with EEXIST: an atomic create-if-absent
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw new StoreError('unreachable', `store ${this.url}: cannot write ${key} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async getBytes(key: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.path(key));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new StoreError('unreachable', `store ${this.url}: cannot read ${key} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
    }
  }

  async getStream(key: string): Promise<Readable> {
    const p = this.path(key);
    const handle = await open(p, 'r').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') throw new StoreError('missing', `store ${this.url}: object ${key} is missing`);
      throw new StoreError('unreachable', `store ${this.url}: cannot read ${key} (${e.code ?? e.message})`, { cause: e });
    });
    return handle.createReadStream(); // closes the handle when done
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const out: ObjectInfo[] = [];
    const start = this.path(prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '');
    const visit = async (dir: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        const full = join(dir, e.name);
        const key = relative(this.root, full).split(sep).join('/');
        if (e.isDirectory()) {
          if (key.startsWith(prefix) || prefix.startsWith(key + '/')) await visit(full);
        } else if (e.isFile() && key.startsWith(prefix) && !/\.tmp-\d+-\d+$/.test(key) && !key.startsWith('.check-')) {
          const s = await stat(full).catch(() => undefined);
          if (s) out.push({ key, size: s.size, lastModified: s.mtime });
        }
      }
    };
    await visit(start);
    out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    yield* out;
  }

  async delete(keys: string[]): Promise<void> {
    for (const key of keys) await rm(this.path(key), { force: true });
  }
}
