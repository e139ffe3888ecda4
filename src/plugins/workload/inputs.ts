/**
 * The task's own inputs of a user-code request (datasets, a checkpoint, environments' data): a file
 * or a folder each, checked in the client and copied into the bundle's inputs/.
 */
import { constants } from 'node:fs';
import { access, readdir, stat } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import type { Bundle, Problem } from '../../bundle';

/** A file or folder to stage: where it is, and the folder under inputs/ it goes into. */
export interface StagedInput {
  /** The field it came from, for messages (e.g. `datasets.train`). */
  field: string;
  source: string;
  /** Folder under inputs/ (e.g. datasets/train); the file or folder keeps its name inside it. */
  dest: string;
}

/** The input's path in the bundle, relative to the bundle: inputs/<dest>/<name>. */
export function stagedPath(input: Pick<StagedInput, 'source' | 'dest'>): string {
  return `inputs/${input.dest}/${basename(input.source)}`;
}

/** Problems of an input: it must exist, be readable, and a folder must hold at least one file. */
export async function inputProblems(input: StagedInput, what: string): Promise<Problem[]> {
  const fail = (message: string) => [{ path: input.field, message }];
  const s = await stat(input.source).catch(() => undefined);
  if (!s) return fail(`${input.source} does not exist; give ${what} (relative to the request file)`);
  if (s.isFile()) {
    const readable = await access(input.source, constants.R_OK).then(() => true, () => false);
    return readable ? [] : fail(`${input.source} cannot be read (permission denied); make it readable or give another ${what}`);
  }
  if (!s.isDirectory()) return fail(`${input.source} is neither a file nor a folder; give ${what}`);
  const files = await filesUnder(input.source);
  if (!files.length) return fail(`${input.source} is an empty folder; give ${what} that holds the data`);
  return [];
}

/** Every regular file under a folder (links followed when they name a file), relative POSIX paths, sorted. */
async function filesUnder(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    const full = join(e.parentPath, e.name);
    const isFile = e.isFile() || (e.isSymbolicLink() && (await stat(full).then((s) => s.isFile(), () => false)));
    if (isFile) out.push(relative(root, full).split('\\').join('/'));
  }
  return out.sort();
}

/** Copies an input (a file, or every file of a folder) into the bundle; returns the files and bytes copied. */
export async function stageInput(bundle: Bundle, input: StagedInput): Promise<{ files: number; bytes: number }> {
  const s = await stat(input.source);
  const top = `${input.dest}/${basename(input.source)}`;
  if (s.isFile()) {
    await bundle.copyInput(input.source, top);
    return { files: 1, bytes: s.size };
  }
  let bytes = 0;
  const files = await filesUnder(input.source);
  for (const rel of files) {
    await bundle.copyInput(join(input.source, rel), `${top}/${rel}`);
    bytes += (await stat(join(input.source, rel))).size;
  }
  return { files: files.length, bytes };
}
