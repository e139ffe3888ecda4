/**
 * `orbit init [DIR]`: a starter project that runs the user's own code through Orbit: orbit.yaml (a
 * user-code training request), train.py (a job that follows the job contract, standard library
 * only), data/train.csv (generated here, the same bytes every time), .gitignore and README.md.
 * The text files are real files under init-template/ (npm run build copies every non-TypeScript
 * file under src/ into dist/src/, so they sit beside this module in both); the .gitignore is kept
 * there as `gitignore`, so it applies to nothing in this repository.
 * Nothing is overwritten without --force: every target is checked before the first file is written.
 */
import { lstat, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { seededRandom } from '../common/seeded-random';
import { CliError } from './cli-error';
import type { Io } from './io';
import { jobIdFromFile } from './request';

export const TEMPLATE_DIR = join(__dirname, 'init-template');

/** What init writes, by path under DIR: the template file it comes from, or the generated text. */
const FILES: { path: string; template?: string; generate?: () => string; mode?: number }[] = [
  { path: 'orbit.yaml', template: 'orbit.yaml' },
  { path: 'train.py', template: 'train.py', mode: 0o755 },
  { path: 'data/train.csv', generate: () => trainingTable() },
  { path: '.gitignore', template: 'gitignore' },
  { path: 'README.md', template: 'README.md' },
];

/** The paths init writes, relative to DIR, in the order it writes them. */
export const INIT_FILES: readonly string[] = FILES.map((f) => f.path);

const generator = seededRandom;

/** data/train.csv: 200 rows of x1, x2, x3 in [-1, 1] and y = 2*x1 - 3*x2 + 0.5*x3 + 1 + noise (sd 0.1). */
export function trainingTable(rows = 200, seed = 17): string {
  const next = generator(seed);
  const lines = ['x1,x2,x3,y'];
  for (let i = 0; i < rows; i++) {
    const x = [0, 1, 2].map(() => Math.round((next() * 2 - 1) * 1e4) / 1e4);
    const noise = 0.1 * Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
    const y = 2 * x[0]! - 3 * x[1]! + 0.5 * x[2]! + 1 + noise;
    lines.push([...x.map((v) => v.toFixed(4)), y.toFixed(4)].join(','));
  }
  return lines.join('\n') + '\n';
}

/** A path as a shell word: bare when it is safe, else single-quoted. */
function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

async function kind(path: string): Promise<'file' | 'dir' | undefined> {
  try {
    return (await lstat(path)).isDirectory() ? 'dir' : 'file';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export async function initCommand(dir: string, options: { force: boolean }, io: Io): Promise<number> {
  const root = resolve(dir);
  // As the user typed it, for the messages: `orbit init my-proj` -> my-proj/orbit.yaml, `.` -> orbit.yaml.
  const shown = (p: string) => join(dir, p);

  // Check everything first: a refusal writes nothing.
  for (const folder of ['.', 'data']) {
    if ((await kind(join(root, folder))) === 'file') throw new CliError(`${shown(folder)} exists and is not a folder`, 2);
  }
  for (const f of FILES) {
    const found = await kind(join(root, f.path));
    if (found === 'dir') throw new CliError(`${shown(f.path)} exists and is a folder; move it away first`, 2);
    if (found && !options.force) throw new CliError(`${shown(f.path)} exists; use --force to overwrite it`, 2);
  }

  const jobId = jobIdFromFile(`${basename(root)}.yaml`);
  const contents = await Promise.all(
    FILES.map(async (f) => (f.template ? (await readFile(join(TEMPLATE_DIR, f.template), 'utf8')).replaceAll('@@JOB_ID@@', jobId) : f.generate!())),
  );
  await mkdir(join(root, 'data'), { recursive: true });
  for (const [i, f] of FILES.entries()) {
    const to = join(root, f.path);
    await rm(to, { force: true }); // a symlink is replaced, not written through
    await writeFile(to, contents[i]!, { mode: f.mode ?? 0o644 });
    io.out(`wrote ${shown(f.path)}`);
  }
  io.note(`next: orbit submit ${shellWord(shown('orbit.yaml'))} --follow   (or try it here first: python3 ${shellWord(shown('train.py'))})`);
  return 0;
}
