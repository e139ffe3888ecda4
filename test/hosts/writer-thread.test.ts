import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mainThreadWriter, WriterThread, type FileWriter } from '../../src/hosts/writer-thread';
import { tempDir } from '../helpers/bundles';

describe('file writers', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir('orbit-writer-');
  });
  afterAll(() => tmp?.cleanup());

  for (const [name, make] of [
    ['WriterThread', () => new WriterThread()],
    ['mainThreadWriter', () => mainThreadWriter],
  ] as [string, () => FileWriter][]) {
    it(`${name} writes through the partial name and renames, and reports a failed write with its code`, async () => {
      const dir = join(tmp.dir, name);
      await mkdir(dir);
      const w = make();
      try {
        await Promise.all(Array.from({ length: 50 }, (_, i) => w.write(join(dir, `${i}.part`), join(dir, `${i}.txt`), new TextEncoder().encode(`file ${i}\n`))));
        for (let i = 0; i < 50; i++) expect(await readFile(join(dir, `${i}.txt`), 'utf8')).toBe(`file ${i}\n`);
        expect(existsSync(join(dir, '0.part'))).toBe(false);
        await expect(w.write(join(dir, 'missing/x.part'), join(dir, 'missing/x'), new Uint8Array(3))).rejects.toMatchObject({ code: 'ENOENT' });
        // Still usable after a failed write.
        await w.write(join(dir, 'after.part'), join(dir, 'after.txt'), new TextEncoder().encode('after'));
        expect(await readFile(join(dir, 'after.txt'), 'utf8')).toBe('after');
      } finally {
        await w.close();
      }
    });
  }

  it('WriterThread refuses writes once closed', async () => {
    const w = new WriterThread();
    await w.close();
    await expect(w.write(join(tmp.dir, 'late.part'), join(tmp.dir, 'late'), new Uint8Array(1))).rejects.toThrow();
    expect(existsSync(join(tmp.dir, 'late'))).toBe(false);
  });
});
