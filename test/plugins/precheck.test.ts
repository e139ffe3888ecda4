/**
 * The precheck reached from a request: every plugin declares the modules its scripts need, a request
 * adds modules and staged forks (`precheck`), and a run whose host lacks one stops at the precheck.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Bundle, type JobSpec } from '../../src/bundle';
import { CliError } from '../../src/cli/cli-error';
import { main } from '../../src/cli/main';
import { diagnoseBundle } from '../../src/diagnose';
import { CollectionPlugin } from '../../src/plugins/collection/plugin';
import { EvaluationPlugin } from '../../src/plugins/evaluation/plugin';
import { TrainingPlugin } from '../../src/plugins/training/plugin';
import type { TaskPlugin } from '../../src/plugins/types';
import { UpstreamPlugin } from '../../src/plugins/upstream/plugin';
import { EXAMPLES, loadRequest, problemsOf, runBundle, useTempDirs } from './helpers';

const tempDir = useTempDirs();
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
/** A python3 without torch: the system one (checked in the run test below). */
const BARE_PATH = '/usr/local/bin:/usr/bin:/bin';

const training = new TrainingPlugin();
const evaluation = new EvaluationPlugin();
const collection = new CollectionPlugin();
const upstream = new UpstreamPlugin();

function parsed(plugin: TaskPlugin, raw: Record<string, unknown>): never {
  const r = plugin.parse(raw);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.value as never;
}

async function writeFiles(root: string, files: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, rel)), { recursive: true });
    await writeFile(join(root, rel), text);
  }
}

const INIT = 'from .core import answer\n__version__ = "1.0-fork"\n';
const CORE = 'def answer():\n    return 42\n';

/** A staged fork of `mylib` at `dir`: an import root holding mylib/ and FORK_MANIFEST.json; `edit` changes core.py after the manifest was written. */
async function makeFork(dir: string, edit?: string): Promise<string> {
  const manifest = { repository: 'https://example.org/me/mylib', commit: 'c'.repeat(40), files: { 'mylib/__init__.py': sha(INIT), 'mylib/core.py': sha(CORE) } };
  await writeFiles(dir, { 'mylib/__init__.py': INIT, 'mylib/core.py': edit ?? CORE, 'FORK_MANIFEST.json': JSON.stringify(manifest, null, 1), 'README.md': 'not listed: not staged\n' });
  return dir;
}

/** A local git repository standing in for an upstream: one commit whose entry imports mylib and says where from. */
async function makeUpstream(root: string): Promise<{ repo: string; commit: string }> {
  const repo = join(root, 'upstream');
  await writeFiles(repo, { 'bench.py': 'import mylib\nprint("mylib", mylib.__version__, mylib.__file__, mylib.answer())\n' });
  const git = (...args: string[]) =>
    execFileSync('git', ['-C', repo, '-c', 'user.name=Upstream', '-c', 'user.email=up@example.org', '-c', 'commit.gpgsign=false', ...args], { encoding: 'utf8' }).trim();
  execFileSync('git', ['init', '-q', '-b', 'main', repo]);
  git('add', '-A');
  git('commit', '-q', '-m', 'bench');
  return { repo, commit: git('rev-parse', 'HEAD') };
}

/** A minimal valid request of each task type, its paths resolved against `baseDir`. */
async function requests(root: string): Promise<[string, TaskPlugin, Record<string, unknown>, string][]> {
  const { repo, commit } = await makeUpstream(root);
  return [
    ['training', training, { datasetPath: 'data/regression.csv', outputDir: 'checkpoints', steps: 5 }, EXAMPLES],
    ['evaluation', evaluation, loadRequest(join(EXAMPLES, 'eval-mlp.yaml')).raw, EXAMPLES],
    ['collection', collection, { source: { kind: 'synthetic', rows: 3 }, output: 'out.csv' }, EXAMPLES],
    ['upstream', upstream, { repository: repo, commit, entry: ['python3', 'bench.py'] }, root],
  ];
}

async function build(plugin: TaskPlugin, raw: Record<string, unknown>, baseDir: string): Promise<Bundle> {
  const dir = join(await tempDir(), 'bundle');
  await plugin.buildBundle(dir, { request: parsed(plugin, raw), jobId: 'pre', baseDir });
  const bundle = await Bundle.open(dir);
  await bundle.freeze();
  return bundle;
}

const jobJson = async (bundle: Bundle) => JSON.parse(await readFile(bundle.path('job.json'), 'utf8')) as JobSpec;

describe("each plugin's job.json declares the modules its scripts need", () => {
  it.each([
    ['training', [{ name: 'torch', minVersion: '2.0' }]],
    ['evaluation', [{ name: 'torch', minVersion: '2.0' }]],
    // collector.py and upstream_runner.py use the standard library only; an upstream's own needs are the request's to name.
    ['collection', []],
    ['upstream', []],
  ])('%s', async (task, modules) => {
    const root = await tempDir();
    const [, plugin, raw, baseDir] = (await requests(root)).find(([name]) => name === task)!;
    const spec = await jobJson(await build(plugin, raw, baseDir));
    expect(spec.precheck.python).toEqual({ interpreter: 'python3', modules });
    expect(spec.precheck.provenance.filter((c) => c.noun === 'fork')).toEqual([]);
  });
});

describe('a request `precheck` (every task accepts it)', () => {
  it.each([
    ['training', training, { datasetPath: 'd.csv', outputDir: 'ckpt' }],
    ['evaluation', evaluation, { checkpoint: 'c', environments: [{ name: 'a', datasetPath: 'a.csv' }] }],
    ['collection', collection, { source: { kind: 'synthetic', rows: 3 }, output: 'out.csv' }],
    ['upstream', upstream, { repository: 'r', commit: 'c'.repeat(40), entry: ['x'] }],
  ])('%s: accepts modules (names or {name, minVersion}) and forks', (_task, plugin, base) => {
    const r = plugin.parse({ ...base, precheck: { modules: ['numpy', { name: 'scipy.linalg', minVersion: '1.10' }], forks: [{ path: 'vendor/mylib', module: 'mylib' }] } });
    expect(r.ok && (r.value as { precheck?: unknown }).precheck).toEqual({
      modules: [{ name: 'numpy' }, { name: 'scipy.linalg', minVersion: '1.10' }],
      forks: [{ path: 'vendor/mylib', module: 'mylib' }],
    });
  });

  const base = { datasetPath: 'd.csv', outputDir: 'ckpt' };
  it.each([
    [{ forkz: [] }, 'precheck', 'unknown field "forkz" in precheck; known fields: modules, forks'],
    [{ forks: [{ path: 'v', module: 'm', ref: 'main' }] }, 'precheck.forks[0]', 'unknown field "ref" in a precheck fork; known fields: path, module'],
    [{ modules: [{ name: 'numpy', version: '1' }] }, 'precheck.modules[0]', 'unknown field "version" in a precheck module; known fields: name, minVersion'],
    [{ modules: ['numpy>=1.20'] }, 'precheck.modules[0]', 'precheck.modules entries must be Python module names such as numpy or my_pkg.sub (dotted identifiers, no version: give one as {name, minVersion})'],
    [{ modules: [{ name: 'numpy', minVersion: 1.2 }] }, 'precheck.modules[0]', 'precheck.modules[].minVersion must be a string of dotted numbers; quote it in YAML, e.g. "1.20"'],
    [{ modules: [7] }, 'precheck.modules[0]', 'precheck.modules entries must be a module name such as numpy, or {name: numpy, minVersion: "1.20"}'],
    [{ modules: ['numpy', { name: 'numpy' }] }, 'precheck.modules', 'precheck.modules lists a module twice; list each module once'],
    [{ forks: [{ path: 'vendor/mylib' }] }, 'precheck.forks[0].module', 'precheck.forks[].module is required: a Python module name such as numpy or my_pkg.sub'],
    [{ forks: [{ path: 'a', module: 'm' }, { path: 'b', module: 'm' }] }, 'precheck.forks', 'precheck.forks names a module twice; stage each module from one fork'],
    [['numpy'], 'precheck', 'precheck must be a mapping of fields (key: value), with fields modules, forks'],
  ])('refuses precheck %j at %s', (precheck, path, message) => {
    expect(problemsOf(training.parse({ ...base, precheck }))).toEqual([{ path, message }]);
  });

  it('lands in job.json: modules merged with the plugin\'s (the request wins on a name), forks staged, verified and on PYTHONPATH', async () => {
    const root = await tempDir();
    await makeFork(join(root, 'vendor/mylib'));
    await writeFiles(root, { 'data/regression.csv': await readFile(join(EXAMPLES, 'data/regression.csv'), 'utf8') });
    const bundle = await build(
      training,
      {
        datasetPath: 'data/regression.csv',
        outputDir: 'checkpoints',
        env: { PYTHONPATH: 'inputs/extra' },
        precheck: { modules: [{ name: 'torch', minVersion: '2.1' }, 'json'], forks: [{ path: 'vendor/mylib', module: 'mylib' }] },
      },
      root,
    );
    const spec = await jobJson(bundle);
    expect(spec.precheck).toEqual({
      python: { interpreter: 'python3', modules: [{ name: 'torch', minVersion: '2.1' }, { name: 'json' }, { name: 'mylib' }] },
      provenance: [{ kind: 'tree-manifest', label: 'fork mylib', noun: 'fork', manifest: 'inputs/forks/mylib/FORK_MANIFEST.json', digest: 'sha256', module: 'mylib', required: true }],
    });
    expect(spec.env).toEqual({ PYTHONPATH: 'inputs/forks/mylib:inputs/extra' });
    expect(spec.inputs.map((i) => i.path)).toContain('forks/mylib/FORK_MANIFEST.json');
    // The manifest and the files it lists, nothing else of the folder.
    expect(await readFile(bundle.path('inputs/forks/mylib/mylib/core.py'), 'utf8')).toBe(CORE);
    expect(existsSync(bundle.path('inputs/forks/mylib/FORK_MANIFEST.json'))).toBe(true);
    expect(existsSync(bundle.path('inputs/forks/mylib/README.md'))).toBe(false);
    const precheckJson = JSON.parse(await readFile(bundle.path('scripts/orbit/precheck.json'), 'utf8')) as { provenance: unknown[] };
    expect(precheckJson.provenance).toHaveLength(1);
  });
});

describe('a staged fork that is not there is refused at validate, naming the field', () => {
  it.each(['training', 'evaluation', 'collection', 'upstream'])('%s', async (task) => {
    const root = await tempDir();
    const [, plugin, raw, baseDir] = (await requests(root)).find(([name]) => name === task)!;
    await mkdir(join(root, 'empty'));
    const forks = [
      { path: join(root, 'nope'), module: 'mylib' },
      { path: join(root, 'empty'), module: 'other' },
    ];
    expect(await plugin.validate(parsed(plugin, { ...raw, precheck: { forks } }), baseDir)).toEqual([
      { path: 'precheck.forks[0].path', message: `${join(root, 'nope')} does not exist; expected the folder of a staged fork holding FORK_MANIFEST.json (relative to the request file)` },
      {
        path: 'precheck.forks[1].path',
        message: `${join(root, 'empty')} holds no FORK_MANIFEST.json; add one at the fork's top listing every file of the fork with its sha256: {"repository": "...", "commit": "...", "files": {"mylib/__init__.py": "<sha256>", ...}}`,
      },
    ]);
  });

  it('checks the manifest: readable, listing files that are there, the module among them', async () => {
    const root = await tempDir();
    const fork = await makeFork(join(root, 'vendor/mylib'));
    const problems = async (manifest: string, module = 'mylib') => {
      await writeFile(join(fork, 'FORK_MANIFEST.json'), manifest);
      const r = training.parse({ datasetPath: join(EXAMPLES, 'data/regression.csv'), outputDir: 'c', precheck: { forks: [{ path: 'vendor/mylib', module }] } });
      return training.validate(r.ok ? r.value : (undefined as never), root);
    };
    const file = join(fork, 'FORK_MANIFEST.json');
    expect(await problems('{"files": ')).toEqual([{ path: 'precheck.forks[0].path', message: expect.stringMatching(new RegExp(`^${file} cannot be read as JSON \\(`)) }]);
    expect(await problems('{"files": {}}')).toEqual([{ path: 'precheck.forks[0].path', message: expect.stringMatching(new RegExp(`^${file} lists no files; `)) }]);
    expect(await problems(JSON.stringify({ files: { '../x.py': sha('') } }))).toEqual([
      { path: 'precheck.forks[0].path', message: `${file} lists "../x.py" with "${sha('')}"; each entry must be a relative path inside the fork (no '..', not FORK_MANIFEST.json) with a 64-hex sha256` },
    ]);
    expect(await problems(JSON.stringify({ files: [{ path: 'mylib/__init__.py', sha256: sha(INIT) }, { path: 'mylib/gone.py', sha256: sha('') }] }))).toEqual([
      { path: 'precheck.forks[0].path', message: `FORK_MANIFEST.json in ${fork} lists files that are not there (mylib/gone.py); regenerate it from the fork as it is` },
    ]);
    expect(await problems(JSON.stringify({ files: { 'mylib/core.py': sha(CORE) } }), 'otherlib')).toEqual([
      {
        path: 'precheck.forks[0].module',
        message: `FORK_MANIFEST.json in ${fork} lists no file of module otherlib (otherlib/__init__.py or otherlib.py); the folder goes on PYTHONPATH, so the module must be at its top`,
      },
    ]);
    expect(await problems(JSON.stringify({ files: [{ path: 'mylib/core.py', sha256: sha(CORE) }] }))).toEqual([]);
  });

  it('orbit validate: exit 2, one line naming the field and the fix', async () => {
    const root = await tempDir();
    const file = join(root, 'train.yaml');
    await writeFile(file, `task: training\ndatasetPath: ${join(EXAMPLES, 'data/regression.csv')}\noutputDir: c\nprecheck:\n  forks: [{path: vendor/mylib, module: mylib}]\n`);
    const error = await main(['validate', file], () => undefined, () => undefined).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(2);
    expect((error as CliError).message.split('\n')).toEqual([
      `${file} is not a valid training request:`,
      `${file}: precheck.forks[0].path: ${join(root, 'vendor/mylib')} does not exist; expected the folder of a staged fork holding FORK_MANIFEST.json (relative to the request file)`,
    ]);
  });
});

describe('a real run stops at the precheck when a dependency is missing or not as staged', () => {
  it('a python without torch on the job PATH: exit 86, the trainer never starts, diagnose names torch (missing-module)', async () => {
    // The premise: the system python3 on that PATH lacks torch (the project venv has it).
    expect(() => execFileSync('python3', ['-c', 'import torch'], { env: { PATH: BARE_PATH }, stdio: 'ignore' })).toThrow();
    const bundle = await build(training, { datasetPath: 'data/regression.csv', outputDir: 'checkpoints', steps: 5, env: { PATH: BARE_PATH } }, EXAMPLES);
    const { exitCode } = await runBundle(bundle.dir);
    expect(exitCode).toBe(86);
    expect(JSON.parse(await readFile(bundle.path('runtime/last_run.json'), 'utf8'))).toMatchObject({ exitCode: 86 });
    const runtimeLog = await readFile(bundle.path('runtime/runtime.log'), 'utf8');
    expect(runtimeLog).toContain('precheck FAILED code=86');
    expect(runtimeLog).not.toMatch(/ start pid=/);
    expect(existsSync(bundle.path('artifacts/training.log'))).toBe(false);

    const diagnosis = await diagnoseBundle(bundle.dir);
    expect(diagnosis.exitCode).toBe(86);
    expect(diagnosis.verdict).toMatchObject({ layer: 'precheck', status: 'failed', kind: 'missing-module' });
    expect(diagnosis.verdict?.summary).toBe("1 check failed (missing-module); first: module torch: not importable: ModuleNotFoundError: No module named 'torch'");
    expect(diagnosis.layers.find((l) => l.layer === 'task')).toMatchObject({ status: 'skipped', summary: 'not started: the precheck failed (exit code 86)' });
    const out: string[] = [];
    expect(await main(['diagnose', bundle.dir], (s) => out.push(s))).toBe(1);
    expect(out.join('\n')).toContain(`${bundle.dir}: FAILED at precheck (did the dependencies resolve? no)\n  1 check failed (missing-module); first: module torch: not importable`);
    expect(out.join('\n')).toContain("[FAIL] module torch: not importable: ModuleNotFoundError: No module named 'torch'");
  });

  it('a fork file edited after its FORK_MANIFEST.json was written: exit 86, diagnose names the fork and the file (fork-mismatch)', async () => {
    const root = await tempDir();
    await makeFork(join(root, 'vendor/mylib'), 'def answer():\n    return 41\n');
    const request = { datasetPath: join(EXAMPLES, 'data/regression.csv'), outputDir: 'checkpoints', steps: 5, precheck: { forks: [{ path: 'vendor/mylib', module: 'mylib' }] } };
    const bundle = await build(training, request, root);
    expect((await runBundle(bundle.dir)).exitCode).toBe(86);
    expect(existsSync(bundle.path('artifacts/training.log'))).toBe(false);
    const diagnosis = await diagnoseBundle(bundle.dir);
    expect(diagnosis.verdict).toMatchObject({ layer: 'precheck', kind: 'fork-mismatch' });
    expect(diagnosis.verdict?.summary).toBe(
      `1 check failed (fork-mismatch); first: fork mylib: staged fork https://example.org/me/mylib@${'c'.repeat(40)} does not match its manifest: mylib/core.py: expected sha256 ${sha(CORE)}, found ${sha('def answer():\n    return 41\n')}`,
    );
  });

  it('a fork as staged: the precheck verifies it, the job imports it (upstream, run in another folder), and diagnose counts it once', async () => {
    const root = await tempDir();
    await makeFork(join(root, 'vendor/mylib'));
    const { repo, commit } = await makeUpstream(root);
    const bundle = await build(upstream, { repository: repo, commit, entry: ['python3', 'bench.py'], precheck: { forks: [{ path: 'vendor/mylib', module: 'mylib' }] } }, root);
    expect((await runBundle(bundle.dir)).exitCode).toBe(0);
    const fromFork = bundle.path('inputs/forks/mylib/mylib/__init__.py');
    expect(await readFile(bundle.path('artifacts/upstream.log'), 'utf8')).toContain(`mylib 1.0-fork ${fromFork} 42`);
    const log = await readFile(bundle.path('artifacts/runtime-precheck.log'), 'utf8');
    expect(log).toContain(`[ok] fork mylib: repository=https://example.org/me/mylib commit=${'c'.repeat(40)} files=2 verified path=${fromFork}`);
    const precheck = (await diagnoseBundle(bundle.dir)).layers.find((l) => l.layer === 'precheck');
    expect(precheck).toMatchObject({
      status: 'ok',
      summary: '2 dependencies resolved: mylib 1.0-fork (staged fork, 2 files verified), upstream tree (1 file verified)',
    });
  });
});
