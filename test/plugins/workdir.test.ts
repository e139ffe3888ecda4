import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readFileSync, realpathSync, renameSync, rmdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Bundle, ValidationError, walkFiles } from '../../src/bundle';
import { describeWorkdir, formatSize, MB, scanGitWorkdir, scanSource, scanWorkdir, stageWorkdir, type WorkdirManifest, type WorkdirScan } from '../../src/plugins/workload/workdir';
import { jobSpec } from '../helpers/bundles';
import { useTempDirs } from './helpers';

const tempDir = useTempDirs();

/** Writes `files` (path -> content) under `root`; a path ending in '*' is made executable. */
function put(root: string, files: Record<string, string>): string {
  for (const [name, text] of Object.entries(files)) {
    const exec = name.endsWith('*');
    const path = join(root, exec ? name.slice(0, -1) : name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    if (exec) chmodSync(path, 0o755);
  }
  return root;
}

const paths = (scan: WorkdirScan) => scan.files.map((f) => f.path);
const dropped = (scan: WorkdirScan, by: string) => scan.dropped.filter((d) => d.by === by).map((d) => (d.dir ? `${d.path}/` : d.path));
const messages = (scan: WorkdirScan) => scan.problems.map((p) => `${p.path}: ${p.message}`);

const gitIn = (repo: string, ...args: string[]) =>
  execFileSync('git', ['-C', repo, '-c', 'user.name=Orbit', '-c', 'user.email=orbit@example.org', '-c', 'commit.gpgsign=false', ...args], { encoding: 'utf8' }).trim();

describe('scanWorkdir: what a local folder stages', () => {
  it('honours .gitignore files at every level: negations, folder patterns, a deeper file winning, and skips .git', async () => {
    const root = put(await tempDir(), {
      '.gitignore': '# build products\n*.log\n!keep.log\nbuild/\n/data/*.bin\n',
      'train.py': 'print(1)\n',
      'run.sh*': '#!/bin/sh\n',
      'keep.log': 'kept by the negation\n',
      'debug.log': 'x',
      'build/out.o': 'x',
      'notes/build/x.txt': 'a folder pattern matches at any depth',
      'data/big.bin': 'x',
      'data/small.csv': 'a,b\n',
      'data/sub/deep.bin': '/data/*.bin is anchored: one level only',
      'src/.gitignore': '!important.log\ncache/\n',
      'src/important.log': 're-included by the nested .gitignore',
      'src/other.log': 'x',
      'src/cache/x': 'x',
      'src/model.py': 'x',
      'src/build': 'a file named build: build/ matches folders only',
      '.git/HEAD': 'ref: refs/heads/main\n',
      'vendor/.git': 'gitdir: ../.git/modules/vendor\n',
      'vendor/lib.py': 'x',
    });
    const scan = await scanWorkdir(root);
    expect(scan.problems).toEqual([]);
    expect(paths(scan)).toEqual([
      '.gitignore',
      'data/small.csv',
      'data/sub/deep.bin',
      'keep.log',
      'run.sh',
      'src/.gitignore',
      'src/build',
      'src/important.log',
      'src/model.py',
      'train.py',
      'vendor/lib.py',
    ]);
    expect(dropped(scan, 'gitignore')).toEqual(['build/', 'data/big.bin', 'debug.log', 'notes/build/', 'src/cache/', 'src/other.log']);
    expect(scan.ignoredByGitignore).toBe(6);
    expect(scan.ignoredByExclude).toBe(0);
    expect(scan.dropped.find((d) => d.path === 'src/cache')?.reason).toBe('src/.gitignore excludes it (pattern "cache/")');
    expect(scan.dropped.find((d) => d.path === 'src/other.log')?.reason).toBe('.gitignore excludes it (pattern "*.log")');
    expect(scan.files.find((f) => f.path === 'run.sh')?.executable).toBe(true);
    expect(scan.files.find((f) => f.path === 'train.py')?.executable).toBe(false);
    expect(scan.totalBytes).toBe(scan.files.reduce((n, f) => n + f.size, 0));
    expect(scan.complete).toBe(true);
  });

  it('lets a deeper .gitignore re-include a folder a higher one leaves out, as git does', async () => {
    const root = put(await tempDir(), { '.gitignore': 'a/b/\n', 'a/.gitignore': '!b/\n', 'a/b/file.txt': 'x', 'a/c/file.txt': 'x' });
    expect(paths(await scanWorkdir(root))).toEqual(['.gitignore', 'a/.gitignore', 'a/b/file.txt', 'a/c/file.txt']);
  });

  it('keeps the files git itself would list (ls-files --others --exclude-standard, exclude as -x)', async () => {
    const root = put(await tempDir(), {
      '.gitignore': '*.log\n!x.log\n/build\ndata/*\n!data/keep\nkeep/*\n!keep/c.txt\n',
      'x.log': 'x',
      'y.log': 'x',
      'build/a': 'x',
      'a/build/c.txt': 'x',
      'data/keep/x.py': 'x',
      'data/drop/x.py': 'x',
      'keep/c.txt': 'x',
      'keep/d.txt': 'x',
      'a/.gitignore': '!y.log\nb/\n*.py\n!keep.py\n',
      'a/y.log': 'x',
      'a/b/c.txt': 'x',
      'a/c/b/d.txt': 'x',
      'a/c/keep.py': 'x',
      'a/c/other.py': 'x',
      'a/c/.gitignore': '!other.py\n/d/\n',
      'a/c/d/e.txt': 'x',
      'a/c/e/d/f.txt': 'x',
    });
    gitIn(root, 'init', '-q');
    const exclude = ['a/c/e/', '!y.log', 'data/keep/'];
    const listed = gitIn(root, 'ls-files', '--others', '--exclude-standard', ...exclude.flatMap((p) => ['-x', p])).split('\n').sort();
    expect(paths(await scanWorkdir(root, { exclude }))).toEqual(listed);
  });

  it('applies exclude after every .gitignore: it drops what they keep, and its negation re-includes what they drop', async () => {
    const root = put(await tempDir(), {
      '.gitignore': 'build/\n',
      'build/model.onnx': 'x',
      'data/raw/a.csv': 'x',
      'data/small.csv': 'x',
      'weights.ckpt': 'x',
      'src/more.ckpt': 'x',
      'src/main.py': 'x',
      'main.py': 'x',
    });
    const scan = await scanWorkdir(root, { exclude: ['data/raw/', '*.ckpt', '!build/', '/main.py'] });
    expect(scan.problems).toEqual([]);
    expect(paths(scan)).toEqual(['.gitignore', 'build/model.onnx', 'data/small.csv', 'src/main.py']);
    expect(dropped(scan, 'exclude')).toEqual(['data/raw/', 'main.py', 'src/more.ckpt', 'weights.ckpt']);
    expect(scan.ignoredByExclude).toBe(4);
    expect(scan.dropped.find((d) => d.path === 'weights.ckpt')?.reason).toBe('workdir.exclude excludes it (pattern "*.ckpt")');
    expect(describeWorkdir(scan, './proj')).toBe('workdir ./proj: 4 files, 10 B (4 by exclude)');
  });

  it('stages a link to a file inside as that file, and skips links to folders, links out of the workdir, dangling links and fifos, with the reason', async () => {
    const outside = put(await tempDir(), { 'secret.txt': 'not for the bundle' });
    const root = put(await tempDir(), { 'data/items.txt': 'ab\n', 'tools/run.sh*': '#!/bin/sh\n', 'lib/x.py': 'x' });
    symlinkSync('data/items.txt', join(root, 'items-link.txt'));
    symlinkSync('tools/run.sh', join(root, 'run'));
    symlinkSync('lib', join(root, 'lib-link'));
    symlinkSync(join(outside, 'secret.txt'), join(root, 'secret.txt'));
    symlinkSync('../', join(root, 'up'));
    symlinkSync('missing.txt', join(root, 'dangling'));
    execFileSync('mkfifo', [join(root, 'pipe')]);
    const scan = await scanWorkdir(root);
    expect(scan.problems).toEqual([]);
    expect(scan.files.find((f) => f.path === 'items-link.txt')).toEqual({ path: 'items-link.txt', size: 3, executable: false, linkTo: 'data/items.txt' });
    expect(scan.files.find((f) => f.path === 'run')).toMatchObject({ executable: true, linkTo: 'tools/run.sh' });
    const reasons = Object.fromEntries(scan.dropped.map((d) => [d.path, d.reason]));
    expect(reasons['lib-link']).toBe('a symbolic link to the folder lib/; links to folders are not followed: stage the folder itself, or have the job use lib/');
    expect(reasons['secret.txt']).toBe(
      `a symbolic link to ${join(outside, 'secret.txt')}, outside the workdir: a bundle never holds a path that leads out of it; copy the file into the workdir, or have the job read it from the host`,
    );
    expect(reasons['up']).toContain('outside the workdir');
    expect(reasons['dangling']).toBe('a symbolic link to missing.txt, which does not exist; remove the link, or add it to workdir.exclude');
    expect(reasons['pipe']).toBe('a fifo (named pipe); only files are staged');
    expect(scan.skipped).toBe(5);
    expect(describeWorkdir(scan, '.')).toBe(`workdir .: 5 files, ${formatSize(scan.totalBytes)} (5 skipped)`);
  });

  it('refuses a folder over the limit, naming the biggest files and the fixes', async () => {
    const root = put(await tempDir(), { 'a.bin': 'x'.repeat(600), 'b.bin': 'x'.repeat(500), 'c.py': 'x' });
    const scan = await scanWorkdir(root, { maxBytes: 1000 });
    expect(messages(scan)).toEqual([
      'workdir: 1.1 KB in 3 files is over the 1000 B limit (biggest: a.bin 600 B, b.bin 500 B, c.py 1 B); add them to workdir.exclude or .gitignore, or raise workdir.maxSizeMb',
    ]);
    expect(scan.biggest.map((f) => f.path)).toEqual(['a.bin', 'b.bin', 'c.py']);
    const big = put(await tempDir(), { 'data/big.bin': 'x'.repeat(MB + MB / 2), 'train.py': 'x' });
    expect(messages(await scanWorkdir(big, { maxBytes: MB }))).toEqual([
      'workdir: 1.5 MB in 2 files is over the 1 MB limit (biggest: data/big.bin 1.5 MB, train.py 1 B); add them to workdir.exclude or .gitignore, or raise workdir.maxSizeMb',
    ]);
    expect((await scanWorkdir(big, { maxBytes: 2 * MB })).problems).toEqual([]);
    expect((await scanWorkdir(big, { maxBytes: MB, exclude: ['data/'] })).problems).toEqual([]);
  });

  it('stops walking once far over the limit, and says the count stopped there', async () => {
    const files: Record<string, string> = {};
    for (const dir of ['a', 'b', 'c', 'd']) for (let i = 0; i < 3; i++) files[`${dir}/f${i}.bin`] = 'x'.repeat(400);
    const scan = await scanWorkdir(put(await tempDir(), files), { maxBytes: 1000 });
    expect(scan.complete).toBe(false);
    expect(paths(scan)).toEqual(['a/f0.bin', 'a/f1.bin', 'a/f2.bin', 'b/f0.bin', 'b/f1.bin', 'b/f2.bin']);
    expect(messages(scan)).toEqual([
      'workdir: more than 2.3 KB (the count stopped after 6 files) is over the 1000 B limit (biggest so far: a/f0.bin 400 B, a/f1.bin 400 B, a/f2.bin 400 B, b/f0.bin 400 B, b/f1.bin 400 B); add them to workdir.exclude or .gitignore, or raise workdir.maxSizeMb',
    ]);
  });

  it('refuses an empty folder, and one whose files are all left out', async () => {
    const empty = await tempDir();
    expect(messages(await scanWorkdir(empty))).toEqual([`workdir: ${empty} holds no file to stage; check workdir.path, and that .gitignore and workdir.exclude keep your code`]);
    const left = put(await tempDir(), { '.gitignore': '*\n', 'a.py': 'x' });
    expect(messages(await scanWorkdir(left))).toEqual([`workdir: ${left} holds no file to stage (2 ignored by .gitignore); check workdir.path, and that .gitignore and workdir.exclude keep your code`]);
  });

  it('refuses a path that is a file or does not exist', async () => {
    const dir = put(await tempDir(), { 'train.py': 'x' });
    expect(messages(await scanWorkdir(join(dir, 'train.py')))).toEqual([
      `workdir.path: ${join(dir, 'train.py')} is a file; workdir.path names the folder of your code (relative to the request file), not a file in it`,
    ]);
    expect(messages(await scanWorkdir(join(dir, 'nope')))).toEqual([
      `workdir.path: ${join(dir, 'nope')} does not exist; workdir.path names the folder of your code (relative to the request file)`,
    ]);
  });

  it('refuses exclude patterns that cannot mean what was meant, and a limit that is not above 0', async () => {
    const root = put(await tempDir(), { 'a.py': 'x' });
    const scan = await scanWorkdir(root, { exclude: ['  ', '#notes', '../data/', './data/', `${root}/data`, 'data/'], maxBytes: 0 });
    expect(messages(scan)).toEqual([
      'workdir.maxSizeMb: must be a number of megabytes above 0, not 0; the default is 100',
      'workdir.exclude[0]: is empty; give a gitignore pattern such as data/raw/ or *.ckpt, or remove the entry',
      `workdir.exclude[1]: "#notes" starts with '#', which gitignore syntax reads as a comment; write \\#notes to match a name starting with '#', or remove it`,
      `workdir.exclude[2]: "../data/" reaches out of the workdir with '..'; patterns are relative to the workdir root (gitignore syntax), e.g. data/raw/`,
      `workdir.exclude[3]: "./data/" starts with './', which gitignore syntax never matches; write "data/" (patterns are relative to the workdir root)`,
      `workdir.exclude[4]: ${JSON.stringify(`${root}/data`)} is an absolute path; patterns are relative to the workdir root: write "data"`,
    ]);
  });

  it('refuses a name a bundle cannot hold unless it is excluded', async () => {
    const root = put(await tempDir(), { 'a\\b.py': 'x', 'main.py': 'x' });
    expect(messages(await scanWorkdir(root))).toEqual(['workdir: "a\\\\b.py" has a name a bundle cannot hold (a backslash); rename it, or add it to workdir.exclude']);
    expect((await scanWorkdir(root, { exclude: ['a*.py'] })).problems).toEqual([]);
  });

  it('refuses a folder it cannot read, naming the fix', async () => {
    // Root reads any folder whatever its mode, but no one reads one whose path reaches PATH_MAX (4096
    // bytes on Linux): the walk's readdir fails with ENAMETOOLONG. The deep folder is built and removed
    // bottom-up, one short path at a time, since no call takes its full path.
    const root = realpathSync(put(await tempDir(), { 'main.py': 'x' }));
    const name = 'd'.repeat(200);
    const deep = join(root, 'deep');
    // Just enough levels for the deepest folder's path to reach 4096 bytes, its parent's staying below.
    const levels = Math.ceil((4096 - deep.length) / (name.length + 1));
    const wrap = join(root, 'wrap');
    mkdirSync(deep);
    for (let i = 0; i < levels; i++) {
      renameSync(deep, wrap);
      mkdirSync(deep);
      renameSync(wrap, join(deep, name));
    }
    try {
      const rel = ['deep', ...Array<string>(levels).fill(name)].join('/');
      expect(messages(await scanWorkdir(root))).toEqual([`workdir: cannot read the folder ${rel}/ (ENAMETOOLONG); make it readable, or add ${rel}/ to workdir.exclude`]);
    } finally {
      for (let i = 0; i < levels; i++) {
        renameSync(join(deep, name), wrap);
        rmdirSync(deep);
        renameSync(wrap, deep);
      }
    }
  });
});

describe('stageWorkdir: a local folder', () => {
  it('copies the staged files with their executable bit, writes the manifest, and the bundle freezes', async () => {
    const root = put(await tempDir(), { '.gitignore': '*.log\n', 'train.py': 'print("train")\n', 'scripts/run.sh*': '#!/bin/sh\necho hi\n', 'debug.log': 'x', 'data/items.txt': 'ab\n' });
    symlinkSync('data/items.txt', join(root, 'items.txt'));
    symlinkSync('/etc/hostname', join(root, 'host'));
    const bundle = await Bundle.create(join(await tempDir(), 'bundle'), jobSpec());
    const staged = await stageWorkdir(bundle, { kind: 'local', path: root, exclude: ['data/'] }, 'workdir');
    expect(staged.dir).toBe('inputs/workdir');
    expect(staged.manifestPath).toBe('inputs/workdir.json');
    const files = (await walkFiles(bundle.dir, 'inputs/workdir')).map((f) => f.path);
    expect(files).toEqual(['inputs/workdir/.gitignore', 'inputs/workdir/items.txt', 'inputs/workdir/scripts/run.sh', 'inputs/workdir/train.py']);
    expect(statSync(bundle.path('inputs/workdir/scripts/run.sh')).mode & 0o777).toBe(0o755);
    expect(statSync(bundle.path('inputs/workdir/train.py')).mode & 0o777).toBe(0o644);
    expect(lstatSync(bundle.path('inputs/workdir/items.txt')).isFile()).toBe(true);
    expect(readFileSync(bundle.path('inputs/workdir/items.txt'), 'utf8')).toBe('ab\n');
    const manifest = JSON.parse(await readFile(bundle.path('inputs/workdir.json'), 'utf8')) as WorkdirManifest;
    expect(manifest.schemaVersion).toBe('orbit.workdir.v1');
    expect(manifest.source).toEqual({ kind: 'local', path: staged.scan.root, exclude: ['data/'] });
    expect(manifest.root).toBe('inputs/workdir');
    expect(manifest.files.find((f) => f.path === 'train.py')).toEqual({
      path: 'train.py',
      size: 15,
      sha256: createHash('sha256').update('print("train")\n').digest('hex'),
      executable: false,
    });
    expect(manifest.files.find((f) => f.path === 'items.txt')?.linkTo).toBe('data/items.txt');
    expect(manifest.totals).toEqual({ files: 4, bytes: staged.scan.totalBytes, ignoredByGitignore: 1, ignoredByExclude: 1, skipped: 1 });
    expect(manifest.skipped).toEqual([{ path: 'host', reason: expect.stringContaining('outside the workdir') }]);
    await bundle.writeScript('job.sh', '#!/bin/sh\n', true);
    await expect(bundle.freeze()).resolves.toMatch(/^sha256:/);
  });

  it('throws the scan problems as a ValidationError and copies nothing', async () => {
    const bundle = await Bundle.create(join(await tempDir(), 'bundle'), jobSpec());
    const root = put(await tempDir(), { 'big.bin': 'x'.repeat(2048) });
    const err = await stageWorkdir(bundle, { kind: 'local', path: root, maxSizeMb: 1 / 1024 }, 'workdir').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).message).toContain('workdir: 2.0 KB in 1 file is over the 1.0 KB limit (biggest: big.bin 2.0 KB)');
    expect(await walkFiles(bundle.dir, 'inputs')).toEqual([]);
  });
});

describe('a git commit as the workdir', () => {
  /** A repository with two commits; the second has an executable, a link inside, a link out and a docs folder. */
  async function makeRepo(): Promise<{ repo: string; first: string; head: string }> {
    const repo = join(await tempDir(), 'proj');
    mkdirSync(repo);
    gitIn(repo, 'init', '-q', '-b', 'main');
    put(repo, { 'train.py': 'v1\n' });
    gitIn(repo, 'add', '-A');
    gitIn(repo, 'commit', '-q', '-m', 'first');
    const first = gitIn(repo, 'rev-parse', 'HEAD');
    put(repo, { 'train.py': 'v2\n', 'run.sh*': '#!/bin/sh\n', 'data/items.txt': 'ab\n', 'docs/guide.md': 'x', 'docs/more.md': 'x', '.gitignore': 'ignored-but-tracked.txt\n' });
    put(repo, { 'ignored-but-tracked.txt': 'tracked anyway' });
    symlinkSync('data/items.txt', join(repo, 'items.txt'));
    symlinkSync('/etc/hostname', join(repo, 'host'));
    symlinkSync('data', join(repo, 'data-link'));
    gitIn(repo, 'add', '-A');
    gitIn(repo, 'add', '-f', 'ignored-but-tracked.txt');
    gitIn(repo, 'commit', '-q', '-m', 'second');
    const head = gitIn(repo, 'rev-parse', 'HEAD');
    // The working tree moves on: none of this may be staged.
    put(repo, { 'train.py': 'uncommitted edit\n', 'untracked.py': 'x', 'docs/new.md': 'x' });
    return { repo, first, head };
  }

  it("stages the commit's blobs, not the working tree, with modes, links resolved in the tree, and the commit recorded", async () => {
    const { repo, first, head } = await makeRepo();
    const bundle = await Bundle.create(join(await tempDir(), 'bundle'), jobSpec());
    const staged = await stageWorkdir(bundle, { kind: 'git', repository: repo, commit: head }, 'workdir');
    const files = (await walkFiles(bundle.dir, 'inputs/workdir')).map((f) => f.path.slice('inputs/workdir/'.length));
    expect(files).toEqual(['.gitignore', 'data/items.txt', 'docs/guide.md', 'docs/more.md', 'ignored-but-tracked.txt', 'items.txt', 'run.sh', 'train.py']);
    expect(readFileSync(bundle.path('inputs/workdir/train.py'), 'utf8')).toBe('v2\n');
    expect(readFileSync(bundle.path('inputs/workdir/items.txt'), 'utf8')).toBe('ab\n');
    expect(statSync(bundle.path('inputs/workdir/run.sh')).mode & 0o777).toBe(0o755);
    const manifest = JSON.parse(await readFile(bundle.path('inputs/workdir.json'), 'utf8')) as WorkdirManifest;
    expect(manifest.source).toEqual({ kind: 'git', repository: repo, commit: head, exclude: [] });
    expect([manifest.repository, manifest.commit]).toEqual([repo, head]);
    expect(manifest.files.find((f) => f.path === 'train.py')?.sha256).toBe(createHash('sha256').update('v2\n').digest('hex'));
    expect(manifest.skipped.map((s) => s.path)).toEqual(['data-link', 'host']);
    expect(manifest.skipped[1]!.reason).toContain('outside the workdir');
    expect(staged.scan.label).toBe(`${repo}@${head.slice(0, 12)}`);
    await bundle.writeScript('job.sh', '#!/bin/sh\n', true);
    await expect(bundle.freeze()).resolves.toMatch(/^sha256:/);
    // The older commit, from the same dirty checkout.
    const old = await scanGitWorkdir(repo, first);
    expect(paths(old)).toEqual(['train.py']);
  });

  it('clones a URL, and drops excluded folders once', async () => {
    const { repo, head } = await makeRepo();
    const scan = await scanSource({ kind: 'git', repository: `file://${repo}`, commit: head, exclude: ['docs/'] });
    expect(scan.problems).toEqual([]);
    expect(paths(scan)).not.toContain('docs/guide.md');
    expect(dropped(scan, 'exclude')).toEqual(['docs/']);
    expect(scan.ignoredByExclude).toBe(1);
  });

  it('refuses a bad commit, a commit the repository lacks, a folder that is not a repository, and a URL that cannot be cloned', async () => {
    const { repo } = await makeRepo();
    const plain = put(await tempDir(), { 'a.py': 'x' });
    const absent = 'a'.repeat(40);
    const problems = async (repository: string, commit: string) => messages(await scanSource({ kind: 'git', repository, commit }));
    expect(await problems(repo, 'main')).toEqual([expect.stringMatching(/^workdir\.commit: commit "main" is not a 40-character commit hash/)]);
    expect(await problems(repo, absent)).toEqual([`workdir.commit: commit ${absent} is not in ${repo}; fetch it first (git -C ${repo} fetch), or check the hash`]);
    expect(await problems(plain, absent)).toEqual([`workdir.repository: ${plain} is not a git repository; give a git checkout, or use {path: ...} to stage a plain folder`]);
    expect(await problems(join(plain, 'nope'), absent)).toEqual([
      `workdir.repository: ${join(plain, 'nope')} does not exist; workdir.repository names a git checkout (relative to the request file) or a git URL`,
    ]);
    expect(await problems(`file://${plain}/nope`, absent)).toEqual([expect.stringMatching(/^workdir\.repository: cannot clone file:\/\/.*; check the URL and your access to it$/)]);
  });

  it('refuses a commit over the limit, and a submodule unless it is excluded', async () => {
    const { repo, head } = await makeRepo();
    const over = await scanGitWorkdir(repo, head, { maxBytes: 10 });
    expect(messages(over)).toEqual([expect.stringMatching(/^workdir: \d+ B in 8 files is over the 10 B limit \(biggest: .*\); add them to workdir\.exclude, or raise workdir\.maxSizeMb$/)]);
    gitIn(repo, 'update-index', '--add', '--cacheinfo', `160000,${head},vendor/lib`);
    gitIn(repo, 'commit', '-q', '-m', 'a submodule');
    const withSub = gitIn(repo, 'rev-parse', 'HEAD');
    expect(messages(await scanGitWorkdir(repo, withSub))).toEqual([
      'workdir: the commit has a submodule at vendor/lib, which is not staged; add vendor/lib to workdir.exclude if the job does without it, or commit its files',
    ]);
    expect((await scanGitWorkdir(repo, withSub, { exclude: ['vendor/'] })).problems).toEqual([]);
  });
});

describe('formatSize', () => {
  it('prints bytes in powers of 1024 with one decimal', () => {
    expect([0, 512, 1024, 39_117, 412 * MB, 1.5 * 1024 * MB].map(formatSize)).toEqual(['0 B', '512 B', '1.0 KB', '38.2 KB', '412.0 MB', '1.5 GB']);
  });
});
