/**
 * A workdir read from a git commit: opening the source (checking the local repository and the commit,
 * or cloning a URL into a temporary folder removed after), scanning the commit's tree, and reading the
 * staged files' blobs in batches. Everything comes from git's objects (`git ls-tree`, `git cat-file`),
 * never from a working tree: uncommitted files cannot leak in, and the checkout may be dirty. What is
 * staged is the commit's tracked files (.gitignore does not apply to them); `exclude` still drops paths;
 * a link to a file of the tree is staged as a copy of it, resolved within the tree; a submodule is
 * refused unless excluded.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { isSafeRelativePath, type Problem } from '../../bundle';
import { git, hasCommit, isGitUrl, readBlobs } from '../upstream/git';
import { commitProblem } from '../upstream/schema';
import type { ScanOptions, WorkdirDrop, WorkdirFile, WorkdirScan, WorkdirSourceInput } from './workdir-types';
import { WorkdirRules } from './workdir-ignore';
import { finish, maxBytesOption, MB, newScan, optionProblems, skip } from './workdir-scan';

/** Git blobs are read in batches of about this many bytes. */
const BLOB_BATCH_BYTES = 64 * MB;

/** The repository a scanned commit was read from, and each staged file's blob id (a link's is its target's). */
export interface CommitFiles {
  repo: string;
  oids: Map<string, string>;
}

interface SizedTreeEntry {
  mode: string;
  oid: string;
  size: number;
  path: string;
}

/**
 * Runs `use` on the scan of a git source and the commit's files (none when the source cannot be opened:
 * the scan then holds the problems); removes a clone after.
 */
export async function withCommitScan<T>(
  source: Extract<WorkdirSourceInput, { kind: 'git' }>,
  options: ScanOptions,
  use: (scan: WorkdirScan, commit?: CommitFiles) => Promise<T>,
): Promise<T> {
  const label = `${source.repository}@${source.commit.slice(0, 12)}`;
  const opened = await openCommit(source);
  try {
    if (!opened.repo) {
      const scan = newScan('git', source.repository, label, options.maxBytes!);
      scan.problems.push(...opened.problems);
      return await use(scan);
    }
    const { scan, oids } = await scanCommit(opened.repo, label, source.commit, options);
    return await use(scan, { repo: opened.repo, oids });
  } finally {
    await opened.cleanup();
  }
}

/** The content of each of `files`, in order, read from the commit's blobs about BLOB_BATCH_BYTES at a time. */
export async function* commitBlobs(commit: CommitFiles, files: WorkdirFile[]): AsyncGenerator<{ file: WorkdirFile; data: Buffer }> {
  for (const batch of batches(files)) {
    const blobs = await readBlobs(commit.repo, [...new Set(batch.map((f) => commit.oids.get(f.path)!))]);
    for (const f of batch) yield { file: f, data: blobs.get(commit.oids.get(f.path)!)! };
  }
}

/** `git ls-tree -r -l`: every entry of the commit's tree with its blob size. */
async function lsTreeSized(repo: string, commit: string): Promise<SizedTreeEntry[]> {
  const out = await git(repo, ['ls-tree', '-r', '-z', '-l', '--full-tree', commit]);
  return out
    .split('\0')
    .filter(Boolean)
    .map((rec) => {
      const m = /^(\d{6}) \w+ ([0-9a-f]{40,64}) +(\d+|-)\t([\s\S]+)$/.exec(rec);
      if (!m) throw new Error(`unexpected git ls-tree output: ${JSON.stringify(rec.slice(0, 200))}`);
      return { mode: m[1]!, oid: m[2]!, size: m[3] === '-' ? 0 : Number(m[3]), path: m[4]! };
    });
}

/** The commit's files, and each staged file's blob id (a link's is its target's). */
async function scanCommit(repo: string, label: string, commit: string, options: ScanOptions): Promise<{ scan: WorkdirScan; oids: Map<string, string> }> {
  const scan = newScan('git', repo, label, maxBytesOption(options));
  const oids = new Map<string, string>();
  scan.problems.push(...optionProblems(options));
  if (scan.problems.length) return { scan, oids };
  let entries: SizedTreeEntry[];
  try {
    entries = await lsTreeSized(repo, commit);
  } catch (e) {
    scan.problems.push({ path: 'workdir.commit', message: `cannot list commit ${commit} of ${label}: ${(e as Error).message.split('\n')[0]}` });
    return { scan, oids };
  }
  const rules = new WorkdirRules(options.exclude ?? []);
  const byTreePath = new Map(entries.map((e) => [e.path, e]));
  const folders = new Set(entries.flatMap((e) => e.path.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'))));
  const droppedFolders = new Set<string>();
  /** True when a folder above `path` is left out (recorded once, at the topmost such folder). */
  const inDroppedFolder = (path: string): boolean => {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const folder = parts.slice(0, i).join('/');
      if (droppedFolders.has(folder)) return true;
      const drop = rules.test(folder, true);
      if (drop) {
        droppedFolders.add(folder);
        scan.dropped.push(drop);
        return true;
      }
    }
    return false;
  };
  const add = (f: WorkdirFile, oid: string) => {
    scan.files.push(f);
    scan.totalBytes += f.size;
    oids.set(f.path, oid);
  };
  const links: SizedTreeEntry[] = [];
  for (const e of entries) {
    if (inDroppedFolder(e.path)) continue;
    const drop = rules.test(e.path, e.mode === '160000');
    if (drop) scan.dropped.push(drop);
    else if (!isSafeRelativePath(e.path)) scan.problems.push({ path: 'workdir', message: `the commit has a file at ${JSON.stringify(e.path)}, a path a bundle cannot hold; add it to workdir.exclude` });
    else if (e.mode === '160000') {
      scan.problems.push({ path: 'workdir', message: `the commit has a submodule at ${e.path}, which is not staged; add ${e.path} to workdir.exclude if the job does without it, or commit its files` });
    } else if (e.mode === '120000') links.push(e);
    else add({ path: e.path, size: e.size, executable: e.mode === '100755' }, e.oid);
  }
  // Every link of the tree: a kept link may lead through one that is excluded.
  const targets = await readBlobs(repo, [...new Set(entries.filter((e) => e.mode === '120000').map((l) => l.oid))]);
  for (const l of links) {
    const r = resolveTreeLink(l, (e) => targets.get(e.oid)?.toString('utf8') ?? '', byTreePath, folders);
    if ('reason' in r) scan.dropped.push(r);
    else add({ path: l.path, size: r.file.size, executable: r.file.mode === '100755', linkTo: r.file.path }, r.file.oid);
  }
  return { scan: finish(scan), oids };
}

/** Follows a link of the commit's tree to a file of the tree, or says why it is skipped. */
function resolveTreeLink(
  link: SizedTreeEntry,
  targetOf: (e: SizedTreeEntry) => string,
  tree: Map<string, SizedTreeEntry>,
  folders: Set<string>,
): { file: SizedTreeEntry } | WorkdirDrop {
  let current = link;
  for (let hops = 0; hops < 40; hops++) {
    const target = targetOf(current);
    const next = posix.normalize(posix.join(posix.dirname(current.path), target));
    if (target.startsWith('/') || next === '..' || next.startsWith('../')) {
      return skip(link.path, `a symbolic link to ${target}, outside the workdir: a bundle never holds a path that leads out of it; commit the file itself, or have the job read it from the host`);
    }
    if (next.split('/').includes('.git')) return skip(link.path, `a symbolic link into ${next}, inside a .git folder, which is never staged`);
    const e = tree.get(next);
    if (next === '.' || folders.has(next) || e?.mode === '160000') {
      return skip(link.path, `a symbolic link to the folder ${next}/; links to folders are not followed: stage the folder itself, or have the job use ${next}/`);
    }
    if (!e) return skip(link.path, `a symbolic link to ${target}, which is not a file of the commit; remove the link, or add it to workdir.exclude`);
    if (e.mode !== '120000') return { file: e };
    current = e;
  }
  return skip(link.path, 'a symbolic link in a loop of links');
}

/** Opens a git source: checks the repository and commit, cloning a URL into a temporary folder. */
async function openCommit(source: Extract<WorkdirSourceInput, { kind: 'git' }>): Promise<{ repo?: string; cleanup: () => Promise<void>; problems: Problem[] }> {
  const none = async () => {};
  const fail = (path: string, message: string) => ({ cleanup: none, problems: [{ path, message }] });
  const bad = commitProblem(source.commit);
  if (bad) return fail('workdir.commit', bad);
  const missing = (where: string, fetch: string) => fail('workdir.commit', `commit ${source.commit} is not in ${where}; ${fetch}or check the hash`);
  if (isGitUrl(source.repository)) {
    const clone = await mkdtemp(join(tmpdir(), 'orbit-workdir-clone-'));
    const cleanup = () => rm(clone, { recursive: true, force: true });
    const repo = join(clone, 'repo');
    try {
      await git(clone, ['clone', '--quiet', '--no-checkout', '--', source.repository, 'repo']);
    } catch (e) {
      await cleanup();
      return fail('workdir.repository', `cannot clone ${source.repository}: ${(e as Error).message.split('\n')[0]}; check the URL and your access to it`);
    }
    if (!(await hasCommit(repo, source.commit))) {
      await cleanup();
      return missing(source.repository, 'push it, ');
    }
    return { repo, cleanup, problems: [] };
  }
  const repo = source.repository;
  const st = await stat(repo).catch(() => undefined);
  if (!st?.isDirectory()) return fail('workdir.repository', `${repo} ${st ? 'is not a folder' : 'does not exist'}; workdir.repository names a git checkout (relative to the request file) or a git URL`);
  const isRepo = await git(repo, ['rev-parse', '--git-dir']).then(() => true, () => false);
  if (!isRepo) return fail('workdir.repository', `${repo} is not a git repository; give a git checkout, or use {path: ...} to stage a plain folder`);
  if (!(await hasCommit(repo, source.commit))) return missing(repo, `fetch it first (git -C ${repo} fetch), `);
  return { repo, cleanup: none, problems: [] };
}

function* batches(files: WorkdirFile[]): Generator<WorkdirFile[]> {
  let batch: WorkdirFile[] = [];
  let bytes = 0;
  for (const f of files) {
    if (batch.length && bytes + f.size > BLOB_BATCH_BYTES) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(f);
    bytes += f.size;
  }
  if (batch.length) yield batch;
}
