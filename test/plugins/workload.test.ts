/**
 * The user-code form of the training and evaluation requests (src/plugins/workload): every rule of
 * the new fields with a failing input and its message, the checks that need the file system, the
 * bundle it builds (job.json's contract fields, the runner's config) and the summaries it writes.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Bundle, verifyManifest } from '../../src/bundle';
import { buildDefaultTaskRegistry } from '../../src/plugins/registry';
import type { TaskPlugin } from '../../src/plugins/types';
import { tempDir } from '../helpers/bundles';

const run = promisify(execFile);
const TRAIN = { workdir: '.', run: 'python3 train.py', datasets: { train: 'data/train.csv' }, outputDir: 'out' };
const EVAL = { workdir: '.', run: 'python3 eval.py', checkpoint: 'ckpt', environments: [{ name: 'a', path: 'data/a.txt' }] };

let training: TaskPlugin;
let evaluation: TaskPlugin;
let tmp: Awaited<ReturnType<typeof tempDir>>;
let project: string;

beforeAll(async () => {
  const registry = await buildDefaultTaskRegistry();
  training = registry.get('training');
  evaluation = registry.get('evaluation');
  tmp = await tempDir('orbit-workload-unit-');
  project = join(tmp.dir, 'project');
  await mkdir(join(project, 'data/empty'), { recursive: true });
  await mkdir(join(project, 'ckpt'), { recursive: true });
  await writeFile(join(project, 'train.py'), 'print("hi")\n');
  // Scores every environment: its path's size when given, else 0; and reads the staged checkpoint.
  await writeFile(
    join(project, 'eval.py'),
    [
      'import json, os',
      'model = open(os.path.join(os.environ["ORBIT_MODEL"], "model.pt")).read()',
      'scores = {}',
      'for name in os.environ["ORBIT_ENVIRONMENTS"].split(","):',
      '    path = os.environ.get("ORBIT_ENVIRONMENT_" + name.upper().replace("-", "_"))',
      '    scores[name] = {"bytes": os.path.getsize(path) if path else 0, "model": len(model)}',
      'json.dump({"environments": scores}, open(os.environ["ORBIT_SCORES_FILE"], "w"))',
      '',
    ].join('\n'),
  );
  await writeFile(join(project, 'ignored.py'), 'print("no")\n');
  await writeFile(join(project, '.gitignore'), 'ignored.py\n');
  await writeFile(join(project, 'data/train.csv'), 'x,y\n1,2\n');
  await writeFile(join(project, 'data/a.txt'), 'text\n');
  await writeFile(join(project, 'ckpt/model.pt'), 'weights');
});
afterAll(async () => {
  await tmp?.cleanup();
});

const strip = (o: Record<string, unknown>, key: string) => Object.fromEntries(Object.entries(o).filter(([k]) => k !== key));

describe('parsing: each rule of the new fields, with its message', () => {
  it.each<[string, Record<string, unknown>, string, RegExp]>([
    ['workdir missing (a run alone picks the form)', strip(TRAIN, 'workdir'), 'workdir', /^workdir is required: the folder of your code/],
    ['workdir empty', { ...TRAIN, workdir: ' ' }, 'workdir', /^workdir must not be empty/],
    ['workdir not a path or mapping', { ...TRAIN, workdir: 3 }, 'workdir', /^workdir must be the folder of your code, .* or \{path, exclude, maxSizeMb\}, or \{repository, commit\}$/],
    ['workdir.path missing', { ...TRAIN, workdir: { exclude: [] } }, 'workdir.path', /^workdir.path is required/],
    ['workdir unknown field', { ...TRAIN, workdir: { path: '.', excludes: [] } }, 'workdir', /^unknown field "excludes" in workdir; known fields: path, exclude, maxSizeMb$/],
    ['workdir.exclude not a list', { ...TRAIN, workdir: { path: '.', exclude: 'x' } }, 'workdir.exclude', /^workdir.exclude must be a list of gitignore patterns/],
    ['workdir.exclude empty entry', { ...TRAIN, workdir: { path: '.', exclude: [''] } }, 'workdir.exclude[0]', /^workdir.exclude entries must not be empty$/],
    ['workdir.maxSizeMb 0', { ...TRAIN, workdir: { path: '.', maxSizeMb: 0 } }, 'workdir.maxSizeMb', /^workdir.maxSizeMb must be more than 0$/],
    ['workdir.maxSizeMb too big', { ...TRAIN, workdir: { path: '.', maxSizeMb: 1e9 } }, 'workdir.maxSizeMb', /^workdir.maxSizeMb must be at most 100000 .*as a dataset/],
    ['git workdir, short commit', { ...TRAIN, workdir: { repository: '.', commit: 'abc1234' } }, 'workdir.commit', /is a short hash \(7 characters\).*git rev-parse abc1234/],
    ['git workdir, no commit', { ...TRAIN, workdir: { repository: '.' } }, 'workdir.commit', /^workdir.commit is required: the exact 40-character/],
    ['run missing', strip(TRAIN, 'run'), 'run', /^run is required: a shell command such as/],
    ['run empty', { ...TRAIN, run: '' }, 'run', /^run must not be empty/],
    ['run an empty list', { ...TRAIN, run: [] }, 'run', /^run must name a program/],
    ['run an empty argv item', { ...TRAIN, run: [''] }, 'run[0]', /^run items must not be empty$/],
    ['run a number', { ...TRAIN, run: 5 }, 'run', /^run must be a shell command such as .* or an argv list/],
    ['setup empty', { ...TRAIN, setup: '  ' }, 'setup', /^setup must not be empty/],
    ['datasets missing', strip(TRAIN, 'datasets'), 'datasets', /^datasets is required: a mapping of name: path/],
    ['datasets empty', { ...TRAIN, datasets: {} }, 'datasets', /^datasets must name at least one dataset/],
    ['datasets a list', { ...TRAIN, datasets: ['a'] }, 'datasets', /^datasets must be a mapping of name: path/],
    ['a dataset name', { ...TRAIN, datasets: { 'a b': 'x' } }, 'datasets.a b', /^dataset names must be 1-63 characters/],
    ['a dataset path empty', { ...TRAIN, datasets: { a: '' } }, 'datasets.a', /^datasets values must not be empty/],
    ['two dataset names, one variable', { ...TRAIN, datasets: { 'train-a': 'x', train_a: 'y' } }, 'datasets', /^names "train-a" and "train_a" both give ORBIT_DATASET_TRAIN_A; rename one$/],
    ['outputDir missing', strip(TRAIN, 'outputDir'), 'outputDir', /^outputDir is required/],
    ['outputDir escaping artifacts/', { ...TRAIN, outputDir: '../x' }, 'outputDir', /^outputDir must be a relative path under artifacts\//],
    ['outputDir a file the runner writes', { ...TRAIN, outputDir: 'workload.json' }, 'outputDir', /^outputDir must not be manifest.json or workload.json or job.log/],
    ['a metric key', { ...TRAIN, metrics: ['a b'] }, 'metrics[0]', /^metrics entries must be record keys such as loss/],
    ['a metric twice', { ...TRAIN, metrics: ['loss', 'loss'] }, 'metrics', /^metrics lists a key twice/],
    ['a metric goal', { ...TRAIN, metrics: [{ key: 'loss', goal: 'up' }] }, 'metrics[0]', /^metrics\[\].goal must be min or max$/],
    ['metrics not a list', { ...TRAIN, metrics: 'loss' }, 'metrics', /^metrics must be a list of record keys/],
    ['a built-in field in the code form', { ...TRAIN, datasetPath: 'x.csv' }, '', /^unknown field "datasetPath" in a training request that runs your code; known fields: workdir, setup, run, datasets/],
  ])('training: %s', (_name, raw, path, message) => {
    const r = training.parse(raw);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]!.path).toBe(path);
    expect(r.problems[0]!.message).toMatch(message);
  });

  it.each<[string, Record<string, unknown>, string, RegExp]>([
    ['checkpoint missing', strip(EVAL, 'checkpoint'), 'checkpoint', /^checkpoint is required: .*\(`model` is accepted as another name\)$/],
    ['checkpoint and model', { ...EVAL, model: 'm' }, 'model', /^give checkpoint or model, not both/],
    ['environments missing', strip(EVAL, 'environments'), 'environments', /^environments must list at least one environment/],
    ['environments empty', { ...EVAL, environments: [] }, 'environments', /^environments must list at least one environment/],
    ['an environment name twice', { ...EVAL, environments: [{ name: 'a' }, { name: 'a' }] }, 'environments[1].name', /^name "a" is used twice/],
    ['an environment name', { ...EVAL, environments: [{ name: '-a' }] }, 'environments[0].name', /^environments\[\].name must be 1-63 characters/],
    ['an environment path empty', { ...EVAL, environments: [{ name: 'a', path: '' }] }, 'environments[0].path', /^environments\[\].path is required/],
    ['two environment names, one variable', { ...EVAL, environments: [{ name: 'a-b' }, { name: 'a_b' }] }, 'environments', /both give ORBIT_ENVIRONMENT_A_B; rename one$/],
  ])('evaluation: %s', (_name, raw, path, message) => {
    const r = evaluation.parse(raw);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.map((p) => p.path)).toContain(path);
    expect(r.problems.find((p) => p.path === path)!.message).toMatch(message);
  });

  it('a request without workdir, run or setup stays the built-in form (its own messages)', () => {
    const r = training.parse({ outputDir: 'out' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.map((p) => p.path)).toContain('datasetPath');
  });

  it('accepts the forms: a workdir string or mapping, a git commit, commands as strings or argv, metrics as keys or {key, goal}', () => {
    const ok = (raw: Record<string, unknown>) => {
      const r = training.parse(raw);
      expect(r.ok, JSON.stringify(r)).toBe(true);
      return r.ok ? (r.value as Record<string, unknown>) : {};
    };
    expect(ok(TRAIN)['workdir']).toEqual({ kind: 'local', path: '.', exclude: [], maxSizeMb: 100, given: 'path' });
    expect(ok({ ...TRAIN, workdir: { repository: '../r', commit: 'a'.repeat(40) } })['workdir']).toEqual({ kind: 'git', repository: '../r', commit: 'a'.repeat(40), exclude: [], maxSizeMb: 100 });
    expect(ok({ ...TRAIN, run: ['python3', 'train.py'], setup: 'pip install -r req.txt' })['run']).toEqual(['python3', 'train.py']);
    expect(ok(TRAIN)['metrics']).toEqual([{ key: 'loss', goal: 'min' }]);
    expect(ok({ ...TRAIN, metrics: ['reward', { key: 'kl', goal: 'min' }] })['metrics']).toEqual([{ key: 'reward' }, { key: 'kl', goal: 'min' }]);
  });
});

describe('validation that needs the file system, each problem naming its field', () => {
  const problems = async (plugin: () => TaskPlugin, raw: Record<string, unknown>) => {
    const r = plugin().parse(raw);
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    return plugin().validate(r.value, project);
  };

  it('a valid request has no problems', async () => {
    expect(await problems(() => training, TRAIN)).toEqual([]);
    expect(await problems(() => evaluation, EVAL)).toEqual([]);
  });

  it.each<[string, () => TaskPlugin, Record<string, unknown>, string, RegExp]>([
    ['workdir does not exist', () => training, { ...TRAIN, workdir: 'nope' }, 'workdir', /nope/],
    ['the run script is not in the workdir', () => training, { ...TRAIN, run: 'python3 missing.py' }, 'run', /missing.py/],
    ['the run script is left out by .gitignore', () => training, { ...TRAIN, run: 'python3 ignored.py' }, 'run', /ignored.py is not staged: .gitignore excludes it/],
    ['the setup script is not there', () => training, { ...TRAIN, setup: 'bash setup.sh' }, 'setup', /setup.sh/],
    ['a dataset does not exist', () => training, { ...TRAIN, datasets: { train: 'data/none.csv' } }, 'datasets.train', /none.csv does not exist; give a dataset file or folder/],
    ['a dataset folder is empty', () => training, { ...TRAIN, datasets: { train: 'data/empty' } }, 'datasets.train', /is an empty folder/],
    ['the checkpoint does not exist', () => evaluation, { ...EVAL, checkpoint: 'gone' }, 'checkpoint', /gone does not exist; give the checkpoint file or folder to score/],
    ["an environment's path does not exist", () => evaluation, { ...EVAL, environments: [{ name: 'a', path: 'data/b.txt' }] }, 'environments[0].path', /b.txt does not exist/],
  ])('%s', async (_name, plugin, raw, path, message) => {
    const found = await problems(plugin, raw);
    expect(found.map((p) => p.path)).toContain(path);
    expect(found.find((p) => p.path === path)!.message).toMatch(message);
  });
});

describe('the bundle and the summaries', () => {
  let bundle: Bundle;
  beforeAll(async () => {
    const r = training.parse({ ...TRAIN, setup: 'echo ready > ready.txt', env: { MODE: 'fast' } });
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    await training.buildBundle(join(tmp.dir, 'b'), { request: r.value, jobId: 'fit', baseDir: project });
    bundle = await Bundle.open(join(tmp.dir, 'b'));
  });

  it('job.json states the contract: output folder, checkpoint folder with its marker, metrics series; the runner gets paths, not values', async () => {
    expect(bundle.spec.outputDir).toBe('out');
    expect(bundle.spec.sync.atomicDirs).toEqual([{ parent: 'out/checkpoints', marker: 'COMPLETE' }]);
    expect(bundle.spec.progress).toMatchObject({ file: 'out/metrics.jsonl', metrics: [{ key: 'loss', goal: 'min' }] });
    expect(bundle.spec.entrypoint).toEqual({ command: ['python3', 'scripts/workload_runner.py', '--config', 'inputs/config.json'], logFile: 'job.log' });
    expect(bundle.spec.health?.rules.map((r) => ('metric' in r ? `${r.rule}:${r.metric}` : r.rule))).toEqual(['not-finite:loss', 'stalled:loss', 'no-output', 'gpu-idle', 'gpu-memory', 'disk']);
    expect(bundle.spec.env).toEqual({ MODE: 'fast' });
    expect(training.describeBundle?.(bundle)).toEqual([expect.stringMatching(/^workdir \/.*\/project: 6 files, [\d.]+ K?B \(1 ignored by .gitignore\); datasets.train: .*data\/train.csv$/)]);
    const config = JSON.parse(await readFile(bundle.path('inputs/config.json'), 'utf8'));
    expect(config).toEqual({
      schemaVersion: 'orbit.workload.v1',
      workdir: 'inputs/workdir',
      setup: { shell: 'echo ready > ready.txt' },
      run: { shell: 'python3 train.py' },
      paths: { ORBIT_DATA_DIR: 'inputs/datasets', ORBIT_DATASET_TRAIN: 'inputs/datasets/train/train.csv' },
      values: { ORBIT_DATASETS: 'train' },
    });
  });

  it('runs by hand (as a host would): setup then run in a copy of the workdir; the inputs stay as frozen', async () => {
    await bundle.freeze();
    await run('bash', [bundle.path('scripts/orbit/run.sh')], { env: { ...process.env, ORBIT_RUN_ID: 'by-hand' } });
    const record = JSON.parse(await readFile(bundle.path('artifacts/workload.json'), 'utf8'));
    expect([record.setup.exitCode, record.run.exitCode]).toEqual([0, 0]);
    expect(await readFile(bundle.path('artifacts/job.log'), 'utf8')).toMatch(/\[orbit\] setup: echo ready > ready.txt\n[\s\S]*\[orbit\] run: python3 train.py\nhi\n/);
    await bundle.assertDigest();
    const summary = await training.summarizeResult(bundle, { status: 'succeeded', exitCode: 0, manifest: await verifyManifest(bundle.dir) });
    expect(summary.headline).toBe('trained ? steps: no metrics recorded; no complete checkpoint');
  });

  it('a failed setup: the run is not started, the exit code is the setup\'s, the summary says so', async () => {
    const r = training.parse({ ...TRAIN, setup: 'exit 7' });
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    await training.buildBundle(join(tmp.dir, 'failing'), { request: r.value, jobId: 'fails', baseDir: project });
    const failing = await Bundle.open(join(tmp.dir, 'failing'));
    await failing.freeze();
    const code = await run('bash', [failing.path('scripts/orbit/run.sh')], { env: { ...process.env, ORBIT_RUN_ID: 'by-hand' } }).then(() => 0, (e: { code: number }) => e.code);
    expect(code).toBe(7);
    expect(await readFile(failing.path('artifacts/job.log'), 'utf8')).toContain('[orbit] setup failed with exit code 7: the run command is not started');
    const summary = await training.summarizeResult(failing, { status: 'failed', exitCode: 7, manifest: await verifyManifest(failing.dir) });
    expect(summary.headline).toBe('failed (exit 7): setup `exit 7` failed with exit code 7; run not started; no metrics recorded; no complete checkpoint');
  });

  it("evaluation: the job reads its checkpoint and environments and writes ORBIT_SCORES_FILE; scores become <metric>.<environment>; environments it did not score are named, other keys ignored", async () => {
    const r = evaluation.parse({ ...EVAL, environments: [{ name: 'a', path: 'data/a.txt' }, { name: 'b' }] });
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    await evaluation.buildBundle(join(tmp.dir, 'eval'), { request: r.value, jobId: 'ev', baseDir: project });
    const ev = await Bundle.open(join(tmp.dir, 'eval'));
    const config = JSON.parse(await readFile(ev.path('inputs/config.json'), 'utf8'));
    expect(config.paths).toEqual({ ORBIT_MODEL: 'inputs/model/ckpt', ORBIT_SCORES_FILE: 'artifacts/eval/scores.json', ORBIT_ENVIRONMENT_A: 'inputs/environments/a/a.txt' });
    expect(config.values).toEqual({ ORBIT_ENVIRONMENTS: 'a,b' });
    await ev.freeze();
    await run('bash', [ev.path('scripts/orbit/run.sh')], { env: { ...process.env, ORBIT_RUN_ID: 'by-hand' } });
    const ran = await evaluation.summarizeResult(ev, { status: 'succeeded', exitCode: 0, manifest: await verifyManifest(ev.dir) });
    expect(ran.metrics).toEqual({ environments: 2, 'bytes.a': 5, 'model.a': 7, 'bytes.b': 0, 'model.b': 7 });
    // What a host sends back is untrusted: only numbers of the requested environments count.
    await writeFile(ev.path('artifacts/eval/scores.json'), JSON.stringify({ environments: { a: { perplexity: 4.5, accuracy: 0.41, note: 'x' }, zzz: { perplexity: 1 } } }));
    const summary = await evaluation.summarizeResult(ev, { status: 'succeeded', exitCode: 0, manifest: await verifyManifest(ev.dir) });
    expect(summary.metrics).toEqual({ environments: 1, 'perplexity.a': 4.5, 'accuracy.a': 0.41 });
    expect(summary.headline).toBe('scored 1 of 2 environments: a perplexity 4.5 accuracy 0.41; no scores for b');
  });
});
