import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Bundle, EXIT_CODE_FILE, RUN_SCRIPT, ValidationError, verifyManifest } from '../../src/bundle';
import { diagnoseBundle } from '../../src/diagnose';
import { buildDefaultTaskRegistry } from '../../src/plugins/registry';
import { UpstreamPlugin } from '../../src/plugins/upstream/plugin';
import { UPSTREAM_DIRTY_EXIT_CODE, UPSTREAM_RUN_SCHEMA_VERSION, type UpstreamRequest } from '../../src/plugins/upstream/schema';

const VENV_BIN = join(__dirname, '..', '..', '.venv', 'bin');
const plugin = new UpstreamPlugin();
const made: string[] = [];
afterEach(async () => {
  await Promise.all(made.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'orbit-upstream-test-'));
  made.push(d);
  return d;
}

const gitIn = (repo: string, ...args: string[]) =>
  execFileSync('git', ['-C', repo, '-c', 'user.name=Upstream', '-c', 'user.email=up@example.org', '-c', 'commit.gpgsign=false', ...args], { encoding: 'utf8' }).trim();

const BENCH = `import json, os, sys
# An upstream benchmark: reads its own data, writes results/score.json in its tree.
with open("items-link.txt" if os.path.exists("items-link.txt") else "data/items.txt") as f:  # a symbolic link in the commit
    items = [l.strip() for l in f if l.strip()]
os.makedirs("results", exist_ok=True)
score = sum(len(i) for i in items) / len(items)
with open("results/score.json", "w") as f:
    json.dump({"score": score, "n": len(items), "argv": sys.argv[1:]}, f)
print("upstream score", score, "commit", os.environ.get("ORBIT_UPSTREAM_COMMIT"))
sys.exit(int(os.environ.get("BENCH_EXIT", "0")))
`;

/** A local git repository standing in for the upstream: two commits, an executable helper and a symbolic link. */
async function makeUpstream(): Promise<{ repo: string; first: string; head: string }> {
  const repo = join(await tempDir(), 'upstream');
  await mkdir(join(repo, 'data'), { recursive: true });
  execFileSync('git', ['init', '-q', '-b', 'main', repo]);
  await writeFile(join(repo, 'bench.py'), BENCH.replace('len(i) for i', 'len(i) * 0 for i'));
  await writeFile(join(repo, 'data/items.txt'), 'ab\ncdef\n');
  gitIn(repo, 'add', '-A');
  gitIn(repo, 'commit', '-q', '-m', 'first');
  const first = gitIn(repo, 'rev-parse', 'HEAD');
  await writeFile(join(repo, 'bench.py'), BENCH);
  await writeFile(join(repo, 'run.sh'), '#!/bin/sh\nexec python3 bench.py "$@"\n');
  chmodSync(join(repo, 'run.sh'), 0o755);
  execFileSync('ln', ['-s', 'data/items.txt', join(repo, 'items-link.txt')]);
  // A line git would rewrite on `git archive` (export-subst): the copy must keep the committed bytes.
  await writeFile(join(repo, '.gitattributes'), 'VERSION export-subst\n');
  await writeFile(join(repo, 'VERSION'), '$Format:%H$\n');
  gitIn(repo, 'add', '-A');
  gitIn(repo, 'commit', '-q', '-m', 'second');
  return { repo, first, head: gitIn(repo, 'rev-parse', 'HEAD') };
}

function parsed(raw: Record<string, unknown>): UpstreamRequest {
  const r = plugin.parse(raw);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.value;
}

async function build(request: UpstreamRequest, baseDir: string): Promise<Bundle> {
  const dir = join(await tempDir(), 'bundle');
  await plugin.buildBundle(dir, { request, jobId: 'bench', baseDir });
  const bundle = await Bundle.open(dir);
  await bundle.freeze();
  return bundle;
}

async function run(dir: string, env: Record<string, string> = {}): Promise<number> {
  const child = spawn('bash', [join(dir, RUN_SCRIPT)], { env: { ...process.env, PATH: `${VENV_BIN}:${process.env['PATH']}`, ...env }, stdio: 'ignore' });
  await new Promise((r) => child.on('exit', r));
  return Number((await readFile(join(dir, EXIT_CODE_FILE), 'utf8')).trim());
}

describe('upstream request', () => {
  const base = { repository: 'upstream', entry: ['python3', 'bench.py'] };

  it.each([
    ['main', 'commit "main" is not a 40-character commit hash: a branch or tag can move, so the run could not be reproduced; pin the exact commit: git rev-parse main'],
    ['v1.2.0', 'commit "v1.2.0" is not a 40-character commit hash: a branch or tag can move, so the run could not be reproduced; pin the exact commit: git rev-parse v1.2.0'],
    ['3f0c1e2', 'commit "3f0c1e2" is a short hash (7 characters), which can become ambiguous; give all 40 characters (pin the exact commit: git rev-parse 3f0c1e2)'],
    ['A'.repeat(40), `commit "${'A'.repeat(40)}" must be lowercase hex; use ${'a'.repeat(40)}`],
    ['HEAD~1', 'commit "HEAD~1" is not a 40-character commit hash: a branch or tag can move, so the run could not be reproduced; pin the exact commit: git rev-parse <ref>'],
  ])('refuses commit %s with a clear message', (commit, message) => {
    const r = plugin.parse({ ...base, commit });
    expect(r.ok ? [] : r.problems).toEqual([{ path: 'commit', message }]);
  });

  it('accepts an exact 40-character lowercase commit and names missing fields', () => {
    expect(parsed({ ...base, commit: 'c'.repeat(40) })).toEqual({ ...base, commit: 'c'.repeat(40), outputs: [], env: {}, secretEnv: [] });
    const r = plugin.parse({ repository: 'x', commit: 'c'.repeat(40), entry: [], outputs: ['../up'] });
    expect(r.ok ? [] : r.problems.map((p) => p.path)).toEqual(['entry', 'outputs[0]']);
  });

  it('is registered in the default registry as taskType upstream, jobKind upstream-blackbox', async () => {
    const registry = await buildDefaultTaskRegistry();
    expect(registry.get('upstream').jobKind).toBe('upstream-blackbox');
  });
});

describe('upstream black-box plugin, with a local git repository as the upstream', () => {
  it('refuses a dirty upstream tree at validate time, and a commit the repository lacks', async () => {
    const { repo, head } = await makeUpstream();
    const baseDir = join(repo, '..');
    expect(await plugin.validate(parsed({ repository: 'upstream', commit: head, entry: ['python3', 'bench.py'] }), baseDir)).toEqual([]);
    await appendFile(join(repo, 'bench.py'), '# local fix\n');
    await writeFile(join(repo, 'notes.txt'), 'scratch\n');
    const problems = await plugin.validate(parsed({ repository: 'upstream', commit: 'd'.repeat(40), entry: ['python3', 'bench.py'] }), baseDir);
    expect(problems).toEqual([
      {
        path: 'repository',
        message: `the upstream tree ${repo} is dirty (git status --porcelain:  M bench.py; ?? notes.txt); commit, stash or discard the changes: Orbit runs upstream code exactly as committed`,
      },
      { path: 'commit', message: `commit ${'d'.repeat(40)} is not in ${repo}; fetch it first (git -C ${repo} fetch) or check the hash` },
    ]);
    await expect(plugin.buildBundle(join(await tempDir(), 'b'), { request: parsed({ repository: 'upstream', commit: head, entry: ['true'] }), jobId: 'x', baseDir })).rejects.toBeInstanceOf(ValidationError);
    expect(await plugin.validate(parsed({ repository: 'nowhere', commit: head, entry: ['true'] }), baseDir)).toEqual([
      { path: 'repository', message: `${join(baseDir, 'nowhere')} is not a folder; expected a git checkout of the upstream repository` },
    ]);
  });

  it('copies the commit byte for byte, runs the entry as is, and writes only a thin upstream_run.json', async () => {
    const { repo, first, head } = await makeUpstream();
    const bundle = await build(parsed({ repository: 'upstream', commit: head, entry: ['./run.sh', '--split', 'test'], outputs: ['results'] }), join(repo, '..'));
    expect(bundle.spec).toMatchObject({ taskType: 'upstream', jobKind: 'upstream-blackbox', entrypoint: { logFile: 'upstream.log' } });
    // The tree is the commit's, not the work tree's nor git archive's: export-subst left alone, the older commit absent.
    const tree = bundle.path('inputs/upstream/tree');
    expect(await readFile(join(tree, 'VERSION'), 'utf8')).toBe('$Format:%H$\n');
    expect(await readFile(join(tree, 'bench.py'), 'utf8')).toBe(BENCH);
    for (const path of gitIn(repo, 'ls-tree', '-r', '--name-only', head).split('\n').filter((p) => p !== 'items-link.txt')) {
      expect(execFileSync('git', ['-C', repo, 'hash-object', join(tree, path)], { encoding: 'utf8' }).trim(), path).toBe(gitIn(repo, 'rev-parse', `${head}:${path}`));
    }
    expect(existsSync(join(tree, 'items-link.txt'))).toBe(false); // links travel in the tree manifest

    expect(await run(bundle.dir)).toBe(0);
    const record = JSON.parse(await readFile(bundle.path('artifacts/upstream_run.json'), 'utf8'));
    expect(record).toMatchObject({
      schema_version: UPSTREAM_RUN_SCHEMA_VERSION,
      upstream: { repository: repo, commit: head, files: 5, symlinks: 1 },
      entry: ['./run.sh', '--split', 'test'],
      exit_status: { code: 0, signal: null },
      missing_outputs: [],
      raw_artifacts: [{ path: 'upstream/results/score.json', size: expect.any(Number) }],
    });
    expect(record.timings.duration_seconds).toBeGreaterThan(0);
    expect(JSON.parse(await readFile(bundle.path('artifacts/upstream/results/score.json'), 'utf8'))).toEqual({ score: 3, n: 2, argv: ['--split', 'test'] });
    const log = await readFile(bundle.path('artifacts/upstream.log'), 'utf8');
    expect(log).toContain(`upstream score 3.0 commit ${head}`);
    expect(log).toContain('[orbit upstream] tree clean');
    // The frozen inputs are untouched by the run: the entry ran in a scratch copy.
    expect(await bundle.computeDigest()).toBe(await bundle.frozenDigest());
    expect((await verifyManifest(bundle.dir)).verified).toBe(true);
    const summary = await plugin.summarizeResult(bundle, { status: 'succeeded', exitCode: 0, manifest: await verifyManifest(bundle.dir) });
    expect(summary.headline).toMatch(new RegExp(`^upstream ${repo}@${head.slice(0, 12)}: \`./run.sh --split test\` exited 0 after [\\d.]+s; 1 raw artifact\\(s\\)$`));
    expect((await diagnoseBundle(bundle.dir)).healthy).toBe(true);

    // The first commit is a different program: pinning it runs that one.
    const older = await build(parsed({ repository: 'upstream', commit: first, entry: ['python3', 'bench.py'], outputs: ['results'] }), join(repo, '..'));
    expect(await run(older.dir)).toBe(0);
    expect(JSON.parse(await readFile(older.path('artifacts/upstream/results/score.json'), 'utf8')).score).toBe(0);
  });

  it('aborts on the host, before running anything, when the staged tree differs from the commit', async () => {
    const { repo, head } = await makeUpstream();
    const bundle = await build(parsed({ repository: 'upstream', commit: head, entry: ['python3', 'bench.py'], outputs: ['results'] }), join(repo, '..'));
    // Someone patched the staged copy on the host (the frozen digest is checked at staging, not here).
    await appendFile(bundle.path('inputs/upstream/tree/bench.py'), 'score = 1.0\n');
    await writeFile(bundle.path('inputs/upstream/tree/extra.py'), 'print("x")\n');
    chmodSync(bundle.path('inputs/upstream/tree/run.sh'), 0o644);
    expect(await run(bundle.dir)).toBe(UPSTREAM_DIRTY_EXIT_CODE);
    const record = JSON.parse(await readFile(bundle.path('artifacts/upstream_run.json'), 'utf8'));
    expect(record.aborted).toBe(`upstream tree is dirty on the host: 3 difference(s) from commit ${head}`);
    expect(record.dirty).toEqual([' M bench.py', ' M run.sh (mode, expected 100755)', '?? extra.py']);
    expect(record.exit_status).toBeNull();
    expect(existsSync(bundle.path('artifacts/upstream/results/score.json'))).toBe(false);
    expect(await readFile(bundle.path('artifacts/upstream.log'), 'utf8')).toContain(`ABORT: the upstream tree is dirty on this host: it differs from commit ${head}`);
  });

  it('declares its staged tree as a provenance check: the precheck records it, warns on a difference, and the runner decides', async () => {
    const { repo, head } = await makeUpstream();
    const request = parsed({ repository: 'upstream', commit: head, entry: ['python3', 'bench.py'], outputs: ['results'] });
    const bundle = await build(request, join(repo, '..'));
    expect(bundle.spec.precheck.provenance).toEqual([
      { kind: 'tree-manifest', label: 'upstream tree', noun: 'upstream tree', manifest: 'inputs/upstream/UPSTREAM_TREE.json', root: 'inputs/upstream/tree', digest: 'git-blob', required: false },
    ]);
    expect(bundle.spec.progress).toBeUndefined(); // a black box: no series the core could judge
    expect(await run(bundle.dir)).toBe(0);
    const clean = await readFile(bundle.path('artifacts/runtime-precheck.log'), 'utf8');
    expect(clean).toContain(`[ok] upstream tree: repository=${repo} commit=${head} files=5 verified root=${bundle.path('inputs/upstream/tree')}`);
    expect((await diagnoseBundle(bundle.dir)).layers.find((l) => l.layer === 'precheck')?.summary).toBe('1 dependency resolved: upstream tree (5 files verified)');

    const patched = await build(request, join(repo, '..'));
    await appendFile(patched.path('inputs/upstream/tree/bench.py'), 'score = 1.0\n');
    expect(await run(patched.dir)).toBe(UPSTREAM_DIRTY_EXIT_CODE);
    const log = await readFile(patched.path('artifacts/runtime-precheck.log'), 'utf8');
    expect(log).toMatch(new RegExp(`^\\[warn\\] upstream tree: staged upstream tree ${repo}@${head} does not match its manifest: bench\\.py: expected git-blob [0-9a-f]{40}, found [0-9a-f]{40}$`, 'm'));
    expect(log).toContain('precheck: ok');
    const diagnosis = await diagnoseBundle(patched.dir);
    expect(diagnosis.layers.find((l) => l.layer === 'precheck')).toMatchObject({ status: 'ok', summary: expect.stringMatching(/^1 warning, first: upstream tree: staged upstream tree .* does not match its manifest: bench\.py: /) });
    expect(diagnosis.verdict?.layer).toBe('task');
  });

  it('records a failing entry: its exit status, and its raw output still collected', async () => {
    const { repo, head } = await makeUpstream();
    const bundle = await build(parsed({ repository: 'upstream', commit: head, entry: ['python3', 'bench.py'], outputs: ['results', 'not-written'], env: { BENCH_EXIT: '3' } }), join(repo, '..'));
    expect(await run(bundle.dir)).toBe(3);
    const record = JSON.parse(await readFile(bundle.path('artifacts/upstream_run.json'), 'utf8'));
    expect(record.exit_status).toEqual({ code: 3, signal: null });
    expect(record.missing_outputs).toEqual(['not-written']);
    expect(record.raw_artifacts.map((a: { path: string }) => a.path)).toEqual(['upstream/results/score.json']);
    expect((await diagnoseBundle(bundle.dir)).verdict).toMatchObject({ layer: 'task', kind: 'exit' });
  });

  it('clones a repository given as a URL (file://) at the pinned commit', async () => {
    const { repo, head } = await makeUpstream();
    const bundle = await build(parsed({ repository: `file://${repo}`, commit: head, entry: ['python3', 'bench.py'], outputs: ['results'] }), '/');
    expect(await run(bundle.dir)).toBe(0);
    expect(JSON.parse(await readFile(bundle.path('artifacts/upstream_run.json'), 'utf8')).upstream.repository).toBe(`file://${repo}`);
  });
});
