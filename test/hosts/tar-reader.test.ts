import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TarFormatError, TarReader, type TarEntry } from '../../src/hosts/tar-reader';
import { tempDir } from '../helpers/bundles';

/** Feeds `archive` to a reader in pieces of `piece` bytes and returns what it reported. */
async function read(archive: Buffer, piece: number, maxEntryBytes = 1 << 20): Promise<{ entries: TarEntry[]; reader: TarReader }> {
  const entries: TarEntry[] = [];
  const reader = new TarReader((e) => void entries.push(e), { maxEntryBytes });
  for (let at = 0; at < archive.length; at += piece) await reader.push(archive.subarray(at, at + piece));
  return { entries, reader };
}

describe('TarReader on archives written by GNU tar', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const files = new Map<string, Buffer>();
  const longName = `artifacts/${'deep-folder-name/'.repeat(8)}${'x'.repeat(120)}.bin`;

  beforeAll(async () => {
    tmp = await tempDir('orbit-tar-');
    files.set('artifacts/empty.txt', Buffer.alloc(0));
    files.set('artifacts/block.bin', randomBytes(512)); // exactly one block: no padding
    files.set('artifacts/odd.bin', randomBytes(70_001));
    files.set('artifacts/été.txt', Buffer.from('non-ASCII name\n'));
    files.set(longName, randomBytes(1000));
    for (const [path, data] of files) {
      await mkdir(join(tmp.dir, path, '..'), { recursive: true });
      await writeFile(join(tmp.dir, path), data);
    }
    await symlink('/etc/passwd', join(tmp.dir, 'artifacts/link'));
  });
  afterAll(() => tmp?.cleanup());

  const archive = (format: 'gnu' | 'pax' | 'ustar', names: string[]) =>
    execFileSync('tar', ['--null', '--no-recursion', `--format=${format}`, '-T', '-', '-cf', '-'], { cwd: tmp.dir, input: names.map((n) => `${n}\0`).join(''), maxBuffer: 1 << 26 });

  for (const format of ['gnu', 'pax'] as const) {
    it(`reads every ${format} entry byte-exact, whatever the pieces the stream arrives in`, async () => {
      const names = [...files.keys()];
      const tar = archive(format, names);
      for (const piece of [1, 511, 512, 4096, tar.length]) {
        const { entries, reader } = await read(tar, piece);
        expect(entries.map((e) => e.path)).toEqual(names);
        for (const e of entries) {
          expect(e.type).toBe('file');
          expect(e.size).toBe(files.get(e.path)!.length);
          expect(e.data?.equals(files.get(e.path)!)).toBe(true);
        }
        expect(reader.ended).toBe(true);
      }
    });
  }

  it('reads the ustar prefix field of a long name', async () => {
    const name = `artifacts/${'p'.repeat(120)}/short.bin`;
    await mkdir(join(tmp.dir, name, '..'), { recursive: true });
    await writeFile(join(tmp.dir, name), 'prefixed');
    const { entries } = await read(archive('ustar', [name]), 700);
    expect(entries).toEqual([{ path: name, type: 'file', size: 8, data: Buffer.from('prefixed') }]);
  });

  it('reports links as "other" without data, and entries over maxEntryBytes without data', async () => {
    const { entries } = await read(archive('gnu', ['artifacts/link', 'artifacts/odd.bin', 'artifacts/block.bin']), 1000, 1024);
    expect(entries.map((e) => [e.path, e.type, e.size, e.data?.length])).toEqual([
      ['artifacts/link', 'other', 0, undefined],
      ['artifacts/odd.bin', 'file', 70_001, undefined],
      ['artifacts/block.bin', 'file', 512, 512],
    ]);
  });

  it('refuses a header whose checksum does not match, keeping what came before', async () => {
    const tar = Buffer.from(archive('gnu', ['artifacts/block.bin', 'artifacts/odd.bin']));
    tar[1034] = tar[1034]! ^ 0xff; // inside the second header's name
    const entries: TarEntry[] = [];
    const reader = new TarReader((e) => void entries.push(e), { maxEntryBytes: 1 << 20 });
    await expect(reader.push(tar)).rejects.toThrow(TarFormatError);
    expect(entries.map((e) => e.path)).toEqual(['artifacts/block.bin']);
  });

  it('refuses bytes that are not a tar archive at all', async () => {
    const reader = new TarReader(() => undefined, { maxEntryBytes: 1 << 20 });
    await expect(reader.push(Buffer.from('tar: artifacts/x: Cannot open: No such file or directory\n'.repeat(20)))).rejects.toThrow(/checksum/);
  });

  it('says when a stream was cut inside an entry', async () => {
    const tar = archive('gnu', ['artifacts/odd.bin']);
    const { entries, reader } = await read(tar.subarray(0, 40_000), 4096);
    expect(entries).toEqual([]);
    expect(reader.atBoundary).toBe(false);
    expect(reader.ended).toBe(false);
  });
});
