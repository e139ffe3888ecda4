/**
 * Writes schemas/<task>.schema.json, the JSON Schema of every task type's request file, from the
 * plugins' zod schemas (src/cli/schema.ts), and removes the schema files of task types that are gone.
 * Run after changing a request schema: npx tsx scripts/gen-schemas.ts
 * test/cli/schema.test.ts fails while the checked-in files differ from what this writes.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { buildDefaultTaskRegistry } from '../src/plugins/registry';
import { SCHEMAS_DIR, schemaFiles } from '../src/cli/schema';

export const DEFAULT_SCHEMAS_DIR = resolve(__dirname, '..', SCHEMAS_DIR);

/** Writes the schema files into `dir`; returns the names written and the stale ones removed. */
export async function writeSchemas(dir = DEFAULT_SCHEMAS_DIR): Promise<{ written: string[]; removed: string[] }> {
  const files = schemaFiles(await buildDefaultTaskRegistry());
  await mkdir(dir, { recursive: true });
  const removed = (await readdir(dir)).filter((name) => name.endsWith('.schema.json') && !files.has(name));
  for (const name of removed) await rm(join(dir, name));
  for (const [name, text] of files) await writeFile(join(dir, name), text);
  return { written: [...files.keys()], removed };
}

if (require.main === module) {
  writeSchemas()
    .then(({ written, removed }) => {
      console.log(`wrote ${written.map((n) => `${SCHEMAS_DIR}/${n}`).join(', ')}${removed.length ? `; removed ${removed.join(', ')}` : ''}`);
    })
    .catch((e: Error) => {
      console.error(e.stack ?? e.message);
      process.exit(1);
    });
}
