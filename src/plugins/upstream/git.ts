/**
 * The few git operations the upstream plugin needs, run in the client with the `git` program:
 * is a checkout clean, does it hold a commit, what is the commit's tree, and the exact bytes of its blobs.
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Thrown when a git command fails; the message carries git's own stderr. */
export class GitError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GitError';
  }
}

export async function git(cwd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run('git', ['-C', cwd, ...args], { maxBuffer: 256 * 1024 * 1024, encoding: 'utf8', env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string; code?: string };
    if (err.code === 'ENOENT') throw new GitError('git is not installed on this machine; the upstream plugin needs it', { cause: e });
    throw new GitError((err.stderr ?? '').trim() || err.message, { cause: e });
  }
}

/** A URL git clones (https://, ssh://, git://, file://, or scp-like user@host:path), as opposed to a local path. */
export function isGitUrl(repository: string): boolean {
  return /^(https?|ssh|git|file):\/\//.test(repository) || /^[\w.-]+@[\w.-]+:/.test(repository);
}

/** `git status --porcelain` lines of a checkout: empty when the tree is clean. */
export async function porcelain(repo: string): Promise<string[]> {
  return (await git(repo, ['status', '--porcelain', '--untracked-files=all'])).split('\n').filter((l) => l.trim());
}

export async function hasCommit(repo: string, commit: string): Promise<boolean> {
  try {
    await git(repo, ['cat-file', '-e', `${commit}^{commit}`]);
    return true;
  } catch {
    return false;
  }
}

export interface TreeEntry {
  /** 100644, 100755, 120000 (symbolic link) or 160000 (submodule). */
  mode: string;
  type: string;
  oid: string;
  path: string;
}

/** Every entry of a commit's tree, recursively. */
export async function lsTree(repo: string, commit: string): Promise<TreeEntry[]> {
  const out = await git(repo, ['ls-tree', '-r', '-z', '--full-tree', commit]);
  return out
    .split('\0')
    .filter(Boolean)
    .map((rec) => {
      const m = /^(\d{6}) (\w+) ([0-9a-f]{40,64})\t([\s\S]+)$/.exec(rec);
      if (!m) throw new GitError(`unexpected git ls-tree output: ${JSON.stringify(rec.slice(0, 200))}`);
      return { mode: m[1]!, type: m[2]!, oid: m[3]!, path: m[4]! };
    });
}

/** The exact bytes of each blob, through one `git cat-file --batch` (no filters, no attributes applied). */
export async function readBlobs(repo: string, oids: string[]): Promise<Map<string, Buffer>> {
  const blobs = new Map<string, Buffer>();
  if (!oids.length) return blobs;
  const child = spawn('git', ['-C', repo, 'cat-file', '--batch'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => chunks.push(c));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<number>((res, rej) => {
    child.on('error', rej);
    child.on('close', (code) => res(code ?? 1));
  });
  child.stdin.end(oids.map((o) => `${o}\n`).join(''));
  const code = await done;
  if (code !== 0) throw new GitError(`git cat-file failed (exit ${code}): ${stderr.trim()}`);
  const buf = Buffer.concat(chunks);
  let pos = 0;
  for (const oid of oids) {
    const nl = buf.indexOf(10, pos);
    const header = buf.subarray(pos, nl).toString('utf8');
    const m = /^([0-9a-f]+) (\w+) (\d+)$/.exec(header);
    if (!m || m[1] !== oid) throw new GitError(`git cat-file: unexpected header ${JSON.stringify(header)} for ${oid}`);
    const size = Number(m[3]);
    blobs.set(oid, buf.subarray(nl + 1, nl + 1 + size));
    pos = nl + 1 + size + 1;
  }
  return blobs;
}
