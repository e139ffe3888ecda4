/**
 * A job's workdir, SkyPilot-style: the user's project staged into the bundle's inputs/, either a local
 * folder or a git repository at an exact commit (workdir-git.ts). This module is the workdir's public
 * face: its types, scanning a source (a local folder is walked here, in the client: files are listed,
 * not read), staging it (a copy plus a manifest beside it, `inputs/<dest>.json`), and the CLI's one-line
 * description. Problems name the request field (`workdir`, `workdir.path`, `workdir.exclude[i]`,
 * `workdir.maxSizeMb`, `workdir.repository`, `workdir.commit`); sizes are in MB of 2^20 bytes.
 */
import { createHash } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, readdir, readFile, readlink, realpath, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { BundleStateError, isSafeRelativePath, sha256File, type Bundle } from '../../bundle';
import { eachLimit } from '../../store/cas';
import { assertNoProblems } from '../common';
import { DEFAULT_WORKDIR_MAX_MB } from './schema';
import { commitBlobs, withCommitScan, type CommitFiles } from './workdir-git';
import { WorkdirRules } from './workdir-ignore';
import { finish, formatSize, leftOut, maxBytesOption, MB, newScan, optionProblems, plural, skip } from './workdir-scan';
import { WORKDIR_MANIFEST_SCHEMA, type ScanOptions, type StagedWorkdir, type WorkdirDrop, type WorkdirFile, type WorkdirManifest, type WorkdirScan, type WorkdirSourceInput } from './workdir-types';

export { WORKDIR_MANIFEST_SCHEMA };
export type { ScanOptions, StagedWorkdir, WorkdirDrop, WorkdirFile, WorkdirManifest, WorkdirScan, WorkdirSourceInput } from './workdir-types';

export { DEFAULT_WORKDIR_MAX_MB, formatSize, MB };
/** The walk stops once it has counted this many times the limit: enough to name the biggest files, quick on a huge folder. */
export const WORKDIR_SCAN_OVERSHOOT = 2;
/** Files are stat'ed this many at a time. */
const STAT_BATCH = 256;


// ---------------------------------------------------------------------------------------------
// Scanning a local folder

function refuse(scan: WorkdirScan, path: string, message: string): WorkdirScan {
  scan.problems.push({ path, message });
  return scan;
}

/**
 * Lists the files of the local folder `root` that a bundle would stage. Never throws for what the
 * folder holds: `problems` says why it cannot be staged.
 * - `.gitignore` files and `exclude` leave paths out as WorkdirRules says; a folder left out is not walked.
 * - `.git` (a folder, or a worktree's file, at any level) is never staged nor counted.
 * - Symbolic links: a bundle holds only plain files (walkFiles refuses links), so a link to a file inside
 *   the workdir is staged as a copy of that file (the manifest names it in `linkTo`). Skipped, with the
 *   reason in `dropped`: a link out of the workdir (never followed: nothing outside the folder enters the
 *   bundle) or into a .git folder, a link to a folder (not followed: no loops, no duplicates), a dangling
 *   link, and sockets, fifos and devices.
 * - Early stop: the walk stops once it has counted WORKDIR_SCAN_OVERSHOOT times the size limit, so a
 *   10 GB folder is refused after listing about 200 MB of it; the message says the count stopped there.
 */
export async function scanWorkdir(root: string, options: ScanOptions = {}): Promise<WorkdirScan> {
  const scan = newScan('local', root, root, maxBytesOption(options));
  scan.problems.push(...optionProblems(options, root));
  if (scan.problems.length) return scan;
  const what = 'workdir.path names the folder of your code (relative to the request file)';
  const st = await stat(root).catch(() => undefined);
  if (!st) return refuse(scan, 'workdir.path', `${root} does not exist; ${what}`);
  if (!st.isDirectory()) return refuse(scan, 'workdir.path', `${root} is ${st.isFile() ? 'a file' : 'not a folder'}; ${what}, not a file in it`);
  const top = await realpath(root);
  scan.root = top;
  const rules = new WorkdirRules(options.exclude ?? []);
  const budget = scan.maxBytes * WORKDIR_SCAN_OVERSHOOT;

  const visit = async (abs: string, rel: string): Promise<boolean> => {
    let entries: Dirent[];
    try {
      entries = await readdir(abs, { withFileTypes: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      scan.problems.push({ path: 'workdir', message: `cannot read the folder ${rel ? `${rel}/` : abs} (${code}); make it readable, or add ${rel ? `${rel}/` : 'it'} to workdir.exclude` });
      return true;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    if (entries.some((e) => e.name === '.gitignore' && e.isFile())) rules.addGitignore(rel, await readFile(join(abs, '.gitignore'), 'utf8'));
    const files: (() => Promise<WorkdirFile | WorkdirDrop>)[] = [];
    const dirs: string[] = [];
    for (const e of entries) {
      if (e.name === '.git') continue;
      const path = rel ? `${rel}/${e.name}` : e.name;
      const drop = rules.test(path, e.isDirectory());
      if (drop) scan.dropped.push(drop);
      else if (!isSafeRelativePath(path)) {
        scan.problems.push({ path: 'workdir', message: `${JSON.stringify(path)} has a name a bundle cannot hold (a backslash); rename it, or add it to workdir.exclude` });
      } else if (e.isDirectory()) dirs.push(path);
      else if (e.isFile()) files.push(() => fileEntry(top, path));
      else if (e.isSymbolicLink()) files.push(() => linkEntry(top, path));
      else scan.dropped.push(skip(path, `a ${specialKind(e)}; only files are staged`));
    }
    // A few hundred stats at a time: a folder of a million files neither floods memory nor outlives the budget by much.
    for (let i = 0; i < files.length; i += STAT_BATCH) {
      for (const f of await Promise.all(files.slice(i, i + STAT_BATCH).map((stat) => stat()))) {
        if ('reason' in f) scan.dropped.push(f);
        else {
          scan.files.push(f);
          scan.totalBytes += f.size;
        }
      }
      if (scan.totalBytes > budget) return false;
    }
    for (const d of dirs) if (!(await visit(join(top, d), d))) return false;
    return true;
  };
  scan.complete = await visit(top, '');
  return finish(scan);
}

function specialKind(e: Dirent): string {
  if (e.isSocket()) return 'socket';
  if (e.isFIFO()) return 'fifo (named pipe)';
  if (e.isBlockDevice() || e.isCharacterDevice()) return 'device';
  return 'special file';
}

async function fileEntry(top: string, path: string): Promise<WorkdirFile | WorkdirDrop> {
  try {
    const st = await lstat(join(top, path));
    // The owner's execute bit, as git records it (100755).
    return { path, size: st.size, executable: (st.mode & 0o100) !== 0 };
  } catch (e) {
    return skip(path, `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** A link to a file inside the workdir becomes a copy of that file; anything else is skipped with its reason. */
async function linkEntry(top: string, path: string): Promise<WorkdirFile | WorkdirDrop> {
  const abs = join(top, path);
  const target = await readlink(abs).catch(() => '?');
  const real = await realpath(abs).catch(() => undefined);
  if (real === undefined) return skip(path, `a symbolic link to ${target}, which does not exist; remove the link, or add it to workdir.exclude`);
  if (!real.startsWith(top + sep)) {
    return skip(path, `a symbolic link to ${target}, outside the workdir: a bundle never holds a path that leads out of it; copy the file into the workdir, or have the job read it from the host`);
  }
  const inside = relative(top, real).split(sep).join('/');
  if (inside.split('/').includes('.git')) return skip(path, `a symbolic link into ${inside}, inside a .git folder, which is never staged`);
  const st = await stat(real).catch(() => undefined);
  if (st?.isDirectory()) return skip(path, `a symbolic link to the folder ${inside}/; links to folders are not followed: stage the folder itself, or have the job use ${inside}/`);
  if (!st?.isFile()) return skip(path, `a symbolic link to ${inside}, which is not a file`);
  return { path, size: st.size, executable: (st.mode & 0o100) !== 0, linkTo: inside };
}

// ---------------------------------------------------------------------------------------------
// Scanning any source

function maxBytesOf(source: WorkdirSourceInput): number {
  return (source.maxSizeMb ?? DEFAULT_WORKDIR_MAX_MB) * MB;
}

/** Runs `use` on the scan of a source (and, for a git source, the repository and blob ids); cleans up a clone after. */
async function withScan<T>(source: WorkdirSourceInput, use: (scan: WorkdirScan, commit?: CommitFiles) => Promise<T>): Promise<T> {
  const options: ScanOptions = { exclude: source.exclude ?? [], maxBytes: maxBytesOf(source) };
  if (source.kind === 'local') return use(await scanWorkdir(source.path, options));
  return withCommitScan(source, options, use);
}

/** The scan of a workdir source: what staging it would copy, or the problems that refuse it (a URL is cloned to read it). */
export async function scanSource(source: WorkdirSourceInput): Promise<WorkdirScan> {
  return withScan(source, async (scan) => scan);
}

/** Scans the commit `commit` of the local repository `repo` (no working tree involved). */
export async function scanGitWorkdir(repo: string, commit: string, options: ScanOptions = {}): Promise<WorkdirScan> {
  return withScan({ kind: 'git', repository: repo, commit, exclude: options.exclude ?? [], maxSizeMb: maxBytesOption(options) / MB }, async (scan) => scan);
}

// ---------------------------------------------------------------------------------------------
// Staging

/**
 * Copies the workdir into `inputs/<destInputsRel>/` (each file 0755 when executable, else 0644) and writes
 * `inputs/<destInputsRel>.json`, its manifest. Scans again first; throws ValidationError with the scan's problems.
 */
/** Files copied into the bundle at once. */
const STAGE_CONCURRENCY = 16;
/** Files up to this size are read whole (hashed and written in one pass); bigger ones are copied, then hashed. */
const READ_WHOLE_BYTES = 8 * MB;

export async function stageWorkdir(bundle: Bundle, source: WorkdirSourceInput, destInputsRel: string): Promise<StagedWorkdir> {
  if (!isSafeRelativePath(destInputsRel)) throw new Error(`stageWorkdir: ${JSON.stringify(destInputsRel)} is not a safe relative path under inputs/`);
  return withScan(source, async (scan, commit) => {
    assertNoProblems('workdir', scan.problems);
    if (await bundle.frozenDigest()) throw new BundleStateError(`bundle ${bundle.dir} is frozen; it cannot be changed`);
    const made = new Set<string>();
    /** Writes one staged file straight into the bundle (the scan vouched for its path), its mode and hash in the same pass. */
    const put = async (f: WorkdirFile, data: Buffer | { copyFrom: string }): Promise<WorkdirManifest['files'][number]> => {
      if (!isSafeRelativePath(f.path)) throw new Error(`stageWorkdir: ${JSON.stringify(f.path)} is not a safe relative path`);
      const target = bundle.path(`inputs/${destInputsRel}/${f.path}`);
      const dir = dirname(target);
      if (!made.has(dir)) {
        await mkdir(dir, { recursive: true });
        made.add(dir);
      }
      const mode = f.executable ? 0o755 : 0o644;
      let sha256: string;
      let size: number;
      if (Buffer.isBuffer(data)) {
        await writeFile(target, data, { mode });
        [sha256, size] = [createHash('sha256').update(data).digest('hex'), data.length];
      } else {
        await copyFile(data.copyFrom, target);
        [sha256, size] = [await sha256File(target), (await stat(target)).size];
      }
      await chmod(target, mode); // copyFile keeps the source's mode, and writeFile's is masked by the umask
      return { path: f.path, size, sha256, executable: f.executable, ...(f.linkTo ? { linkTo: f.linkTo } : {}) };
    };
    const files: WorkdirManifest['files'] = [];
    if (!commit) {
      // Many small files: read, hashed and written a few at a time (in scan order in the manifest); big ones copied, then hashed.
      const entries = new Array<WorkdirManifest['files'][number]>(scan.files.length);
      await eachLimit([...scan.files.keys()], STAGE_CONCURRENCY, async (i) => {
        const f = scan.files[i]!;
        const from = join(scan.root, f.linkTo ?? f.path);
        entries[i] = await put(f, f.size <= READ_WHOLE_BYTES ? await readFile(from) : { copyFrom: from });
      });
      files.push(...entries);
    } else {
      for await (const { file: f, data } of commitBlobs(commit, scan.files)) files.push(await put(f, data));
    }
    const exclude = [...(source.exclude ?? [])];
    const manifest: WorkdirManifest = {
      schemaVersion: WORKDIR_MANIFEST_SCHEMA,
      source: source.kind === 'local' ? { kind: 'local', path: scan.root, exclude } : { kind: 'git', repository: source.repository, commit: source.commit, exclude },
      ...(source.kind === 'git' ? { repository: source.repository, commit: source.commit } : {}),
      root: `inputs/${destInputsRel}`,
      totals: {
        files: files.length,
        bytes: files.reduce((n, f) => n + f.size, 0),
        ignoredByGitignore: scan.ignoredByGitignore,
        ignoredByExclude: scan.ignoredByExclude,
        skipped: scan.skipped,
      },
      files,
      skipped: scan.dropped.filter((d) => d.by === 'skipped').map((d) => ({ path: d.path, reason: d.reason })),
    };
    await bundle.writeInput(`${destInputsRel}.json`, JSON.stringify(manifest, null, 1) + '\n');
    return { scan, manifest, dir: `inputs/${destInputsRel}`, manifestPath: `inputs/${destInputsRel}.json` };
  });
}

// ---------------------------------------------------------------------------------------------
// Printing

/** One line for the CLI: `workdir ./proj: 14 files, 38.2 KB (3 ignored by .gitignore, 1 by exclude)`. */
export function describeWorkdir(scan: WorkdirScan, label = scan.label): string {
  const left = leftOut(scan);
  return `workdir ${label}: ${plural(scan.files.length, 'file')}, ${formatSize(scan.totalBytes)}${left ? ` (${left})` : ''}`;
}
