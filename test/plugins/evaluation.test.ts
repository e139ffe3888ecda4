import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Bundle, verifyManifest } from '../../src/bundle';
import { EvaluationPlugin } from '../../src/plugins/evaluation/plugin';
import type { EvaluationRequest } from '../../src/plugins/evaluation/schema';
import { TrainingPlugin } from '../../src/plugins/training/plugin';
import { EXAMPLES, loadRequest, outcomeOf, problemsOf, readJsonFile, runBundle, useTempDirs, writeText } from './helpers';

const plugin = new EvaluationPlugin();
const TABLE = 'a CSV file with a header row and numbers in every cell (features first, the target last), relative to the request file';
const HINT = 'the path of a checkpoint folder written by a training job (step-N, holding model.pt and COMPLETE), relative to the request file';
const ENVS = 'environments must list at least one environment: add items like {name: shakespeare, datasetPath: data/text/shakespeare-heldout.txt}';
const DATA = 'a .txt text to score a char-lm checkpoint on, or a .csv table with the training columns to score an mlp checkpoint on, relative to the request file';
const TEXT = 'a plain UTF-8 text file (.txt), relative to the request file';
const environments = [
  { name: 'holdout-a', datasetPath: 'data/holdout-a.csv' },
  { name: 'holdout-b', datasetPath: 'data/holdout-b.csv' },
];

function parsed(raw: Record<string, unknown>): EvaluationRequest {
  const r = plugin.parse(raw);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.value;
}

describe('evaluation request schema', () => {
  it('accepts `model` as another name for `checkpoint`', () => {
    expect(parsed({ model: 'ckpt', environments })).toEqual({ checkpoint: 'ckpt', environments, env: {}, secretEnv: [] });
    expect(parsed({ checkpoint: 'ckpt', environments }).checkpoint).toBe('ckpt');
  });

  it('requires the checkpoint and the environments, naming both at once', () => {
    expect(problemsOf(plugin.parse({}))).toEqual([
      { path: 'environments', message: ENVS },
      { path: 'checkpoint', message: `checkpoint is required: ${HINT} (\`model\` is accepted as another name)` },
    ]);
  });

  it.each([
    [{ environments: [] }, 'environments', ENVS],
    [{ environments: 'holdout-a' }, 'environments', 'environments must be a list of {name, datasetPath}'],
    [{ environments: [{ datasetPath: 'a.csv' }] }, 'environments[0].name', 'name is required: a short name such as holdout-a'],
    [{ environments: [{ name: 'a b', datasetPath: 'a.csv' }] }, 'environments[0].name', "name must be 1-63 characters of A-Z, a-z, 0-9, '.', '_' or '-', starting with a letter or digit"],
    [{ environments: [{ name: 'a' }] }, 'environments[0].datasetPath', `datasetPath is required: ${DATA}`],
    [{ environments: [{ name: 'a', datasetPath: 'a.csv', weight: 2 }] }, 'environments[0]', 'unknown field "weight" in an environment; known fields: name, datasetPath'],
    [
      { environments: [{ name: 'a', datasetPath: 'a.csv' }, { name: 'a', datasetPath: 'b.csv' }] },
      'environments[1].name',
      'name "a" is used twice; environment names must be unique',
    ],
    [{ checkpoint: '' }, 'checkpoint', `checkpoint is required: ${HINT}`],
    [{ model: 'm' }, 'model', 'give checkpoint or model, not both: they are two names for the same field'],
  ])('rejects %j at %s', (patch, path, message) => {
    expect(problemsOf(plugin.parse({ checkpoint: 'ckpt', environments, ...patch }))).toEqual([{ path, message }]);
  });
});

describe('evaluation with a real checkpoint', () => {
  let root: string;
  let checkpoint: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'orbit-plugins-eval-'));
    const training = new TrainingPlugin();
    const r = training.parse({ datasetPath: 'data/regression.csv', outputDir: 'checkpoints', steps: 150, checkpointEvery: 150 });
    if (!r.ok) throw new Error('bad training request');
    const bundle = await training.buildBundle(join(root, 'train'), { request: r.value, jobId: 'train', baseDir: EXAMPLES });
    const { exitCode } = await runBundle(bundle.dir);
    if (exitCode !== 0) throw new Error(await readFile(bundle.path('artifacts/training.log'), 'utf8'));
    checkpoint = bundle.path('artifacts/checkpoints/step-150');
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });
  const tempDir = useTempDirs();

  it('validates the example environments against the checkpoint', async () => {
    expect(await plugin.validate(parsed({ checkpoint, environments }), EXAMPLES)).toEqual([]);
  });

  it('reports checkpoint folders that are missing, files, partial or foreign', async () => {
    const dir = await tempDir();
    const check = async (c: string) => plugin.validate(parsed({ checkpoint: c, environments }), EXAMPLES);
    expect(await check(join(dir, 'none'))).toEqual([
      { path: 'checkpoint', message: `${join(dir, 'none')} does not exist; give the step-N folder of a training job's checkpoint (it holds model.pt and COMPLETE)` },
    ]);
    expect(await check(join(checkpoint, 'model.pt'))).toEqual([
      { path: 'checkpoint', message: `${join(checkpoint, 'model.pt')} is not a folder; give the step-N folder that holds model.pt, not the file itself` },
    ]);
    const partial = join(dir, 'partial');
    await cp(checkpoint, partial, { recursive: true });
    await rm(join(partial, 'COMPLETE'));
    expect(await check(partial)).toEqual([
      { path: 'checkpoint', message: `${partial} has no COMPLETE marker: the checkpoint is partial (its job stopped while writing it); pick a step-N folder that has COMPLETE` },
    ]);
    const noModel = join(dir, 'no-model');
    await cp(checkpoint, noModel, { recursive: true });
    await rm(join(noModel, 'model.pt'));
    expect(await check(noModel)).toEqual([
      { path: 'checkpoint', message: `${join(noModel, 'model.pt')} does not exist; expected a training checkpoint folder holding model.pt, meta.json, COMPLETE` },
    ]);
    const foreign = join(dir, 'foreign');
    await cp(checkpoint, foreign, { recursive: true });
    await writeText(foreign, 'meta.json', '{"step": 1}');
    expect(await check(foreign)).toEqual([
      { path: 'checkpoint', message: `${foreign}/meta.json does not give the model's input count; the folder was not written by the training task` },
    ]);
  });

  it('reports a text environment for an mlp checkpoint, naming the field', async () => {
    const problems = await plugin.validate(parsed({ checkpoint, environments: [...environments, { name: 'prose', datasetPath: 'data/text/austen-emma.txt' }] }), EXAMPLES);
    expect(problems).toEqual([
      {
        path: 'environments[2].datasetPath',
        message: 'data/text/austen-emma.txt is a text, but the checkpoint is an mlp (a regressor trained on a table of 4 features): give a .csv table with the same columns',
      },
    ]);
  });

  it('reports environment tables that are missing or have other columns', async () => {
    const dir = await tempDir();
    await writeText(dir, 'narrow.csv', 'x1,x2,y\n1,2,3\n');
    const problems = await plugin.validate(
      parsed({ checkpoint, environments: [{ name: 'gone', datasetPath: 'gone.csv' }, { name: 'narrow', datasetPath: 'narrow.csv' }] }),
      dir,
    );
    expect(problems).toEqual([
      { path: 'environments[0].datasetPath', message: `${join(dir, 'gone.csv')} does not exist; expected ${TABLE}` },
      { path: 'environments[1].datasetPath', message: 'has 2 feature columns but the checkpoint was trained on 4; score it on a table with the same columns' },
    ]);
  });

  it('builds a bundle that validates and freezes', async () => {
    const dir = join(await tempDir(), 'bundle');
    expect((await plugin.validate(parsed({ checkpoint: join(EXAMPLES, 'data/checkpoints/step-100'), environments }), EXAMPLES))).toEqual([]); // the shipped model.json weights
    const bundle = await plugin.buildBundle(dir, { request: parsed({ model: checkpoint, environments }), jobId: 'eval-1', baseDir: EXAMPLES });
    expect(await bundle.validate()).toEqual([]);
    await bundle.freeze();
    expect((await Bundle.open(dir)).spec).toMatchObject({
      taskType: 'evaluation',
      jobKind: 'eval',
      entrypoint: { command: ['python3', 'scripts/evaluator.py', '--config', 'inputs/config.json'], logFile: 'evaluation.log' },
      expectedOutputs: [
        { path: 'scores.json', required: true },
        { path: 'evaluation.log', required: true },
      ],
    });
    expect((await readdir(bundle.path('inputs/checkpoint'))).sort()).toEqual(['COMPLETE', 'meta.json', 'model.pt']);
    expect((await Bundle.open(dir)).spec.progress).toBeUndefined(); // it writes no per-step series
    expect((await readdir(bundle.path('inputs/environments'))).sort()).toEqual(['holdout-a.csv', 'holdout-b.csv']);
  });

  it('runs the evaluator: a score for every environment, a verified manifest', async () => {
    const { raw } = loadRequest(join(EXAMPLES, 'eval-mlp.yaml'));
    const dir = join(await tempDir(), 'bundle');
    const bundle = await plugin.buildBundle(dir, { request: parsed({ ...raw, checkpoint }), jobId: 'eval-2', baseDir: EXAMPLES });
    const digest = await bundle.freeze();
    const { exitCode } = await runBundle(dir);
    expect(exitCode, await readFile(bundle.path('artifacts/evaluation.log'), 'utf8')).toBe(0);

    const scores = await readJsonFile<{ checkpoint: { step: number }; environments: Record<string, { mse: number; mae: number; rows: number }> }>(
      bundle.path('artifacts/scores.json'),
    );
    expect(scores.checkpoint.step).toBe(150);
    expect(Object.keys(scores.environments)).toEqual(['holdout-a', 'holdout-b']);
    const a = scores.environments['holdout-a']!;
    const b = scores.environments['holdout-b']!;
    expect(a.rows).toBe(100);
    expect(a.mse).toBeGreaterThan(0);
    expect(a.mse).toBeLessThan(1);
    expect(b.mse).toBeGreaterThan(a.mse); // holdout-b lies outside the training range
    expect((await verifyManifest(dir)).verified).toBe(true);
    expect(await bundle.assertDigest()).toBe(digest);

    const summary = await plugin.summarizeResult(bundle, await outcomeOf(dir, exitCode));
    expect(summary.headline).toMatch(/^scored checkpoint step 150 on 2 environments: holdout-a mse [\d.e-]+, holdout-b mse [\d.e-]+$/);
    expect(summary.metrics).toMatchObject({ environments: 2, checkpointStep: 150, 'mse.holdout-a': a.mse, 'mse.holdout-b': b.mse });
    expect(summary.highlights).toEqual(['artifacts/scores.json', 'artifacts/evaluation.log']);
  });

  it('fails clearly when an environment table does not fit the model', async () => {
    const dir = await tempDir();
    const bundle = await plugin.buildBundle(join(dir, 'bundle'), { request: parsed({ checkpoint, environments }), jobId: 'eval-3', baseDir: EXAMPLES });
    // Tamper with the staged table after the build to exercise the script's own check.
    await writeText(bundle.path('inputs/environments'), 'holdout-b.csv', 'x1,y\n1,2\n');
    const { exitCode } = await runBundle(bundle.dir);
    expect(exitCode).toBe(2);
    expect(await readFile(bundle.path('artifacts/evaluation.log'), 'utf8')).toContain(
      'evaluator: error: environment holdout-b: inputs/environments/holdout-b.csv has 1 feature columns, the checkpoint expects 4',
    );
    const summary = await plugin.summarizeResult(bundle, await outcomeOf(bundle.dir, exitCode));
    expect(summary.headline).toBe('failed (exit 2): evaluation wrote no scores');
    expect(summary.highlights).toEqual(['artifacts/evaluation.log']); // not the scores.json it never wrote
  });
});

/** A folder that reads as a char-lm checkpoint to the client (its checks read meta.json, not the weights). */
async function fakeLmCheckpoint(dir: string, meta: Record<string, unknown> = {}): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeText(dir, 'model.pt', 'not read by the client');
  await writeText(dir, 'COMPLETE', 'step 1\n');
  await writeText(dir, 'meta.json', JSON.stringify({ kind: 'char-lm', vocab: ['a', 'b', ' '], unknownId: 3, vocabSize: 4, architecture: { contextLength: 8 }, step: 1, ...meta }));
  return dir;
}

describe('evaluation of a char-lm checkpoint: validate', () => {
  const tempDir = useTempDirs();
  const texts = [
    { name: 'shakespeare', datasetPath: 'data/text/shakespeare-heldout.txt' },
    { name: 'austen', datasetPath: 'data/text/austen-emma.txt' },
  ];

  it('accepts the example texts', async () => {
    const checkpoint = await fakeLmCheckpoint(join(await tempDir(), 'step-1'));
    expect(await plugin.validate(parsed({ checkpoint, environments: texts }), EXAMPLES)).toEqual([]);
  });

  it('reports a table environment, a missing, non-UTF-8 or too short text, each at its field', async () => {
    const dir = await tempDir();
    const checkpoint = await fakeLmCheckpoint(join(dir, 'step-1'));
    await writeText(dir, 'one.txt', 'x');
    await writeFile(join(dir, 'bytes.txt'), Buffer.from([0xff, 0xfe, 0x00, 0x41]));
    await writeText(dir, 'table.csv', 'x1,y\n1,2\n');
    const problems = await plugin.validate(
      parsed({
        checkpoint,
        environments: [
          { name: 'table', datasetPath: 'table.csv' },
          { name: 'gone', datasetPath: 'gone.txt' },
          { name: 'bytes', datasetPath: 'bytes.txt' },
          { name: 'one', datasetPath: 'one.txt' },
        ],
      }),
      dir,
    );
    expect(problems).toEqual([
      { path: 'environments[0].datasetPath', message: 'table.csv is a CSV table, but the checkpoint is a char-lm (a language model): give a .txt text to score its perplexity on' },
      { path: 'environments[1].datasetPath', message: `${join(dir, 'gone.txt')} does not exist; expected ${TEXT}` },
      { path: 'environments[2].datasetPath', message: `${join(dir, 'bytes.txt')} is not UTF-8 text; expected ${TEXT} (convert it, e.g. iconv -f latin1 -t utf-8)` },
      { path: 'environments[3].datasetPath', message: `${join(dir, 'one.txt')} has 1 characters; it needs at least 2 (a first character, and one to predict)` },
    ]);
  });

  it('reports a char-lm meta.json without a vocabulary, a kind it does not know, and a char-lm without model.pt', async () => {
    const dir = await tempDir();
    const check = async (c: string) => plugin.validate(parsed({ checkpoint: c, environments: texts }), EXAMPLES);
    const noVocab = await fakeLmCheckpoint(join(dir, 'no-vocab'), { vocab: undefined });
    expect(await check(noVocab)).toEqual([
      { path: 'checkpoint', message: `${noVocab}/meta.json says kind char-lm but gives no vocabulary (vocab) and architecture; the folder was not written by the training task` },
    ]);
    const other = await fakeLmCheckpoint(join(dir, 'other'), { kind: 'gpt2' });
    expect(await check(other)).toEqual([{ path: 'checkpoint', message: `${other}/meta.json gives kind "gpt2"; the training task writes char-lm or mlp checkpoints` }]);
    const jsonWeights = await fakeLmCheckpoint(join(dir, 'json-weights'));
    await rm(join(jsonWeights, 'model.pt'));
    await writeText(jsonWeights, 'model.json', '{}');
    expect(await check(jsonWeights)).toEqual([{ path: 'checkpoint', message: `${join(jsonWeights, 'model.pt')} does not exist; a char-lm checkpoint holds its weights in model.pt` }]);
  });

  it('stages the texts as .txt and the checkpoint with charlm.py', async () => {
    const dir = await tempDir();
    const checkpoint = await fakeLmCheckpoint(join(dir, 'step-1'));
    const bundle = await plugin.buildBundle(join(dir, 'bundle'), { request: parsed({ checkpoint, environments: texts }), jobId: 'e', baseDir: EXAMPLES });
    expect(await bundle.validate()).toEqual([]);
    expect((await readdir(bundle.path('inputs/environments'))).sort()).toEqual(['austen.txt', 'shakespeare.txt']);
    expect((await readdir(bundle.path('inputs/checkpoint'))).sort()).toEqual(['COMPLETE', 'meta.json', 'model.pt']);
    expect(await readdir(bundle.path('scripts'))).toEqual(expect.arrayContaining(['evaluator.py', 'charlm.py', 'tabular.py']));
    expect(bundle.spec.metadata).toMatchObject({ checkpointKind: 'char-lm', environments: 'shakespeare,austen' });
    // A run that wrote no scores still reads as a language-model evaluation.
    const summary = await plugin.summarizeResult(bundle, { status: 'failed', exitCode: 1, manifest: await verifyManifest(bundle.dir) });
    expect(summary.headline).toBe('failed (exit 1): evaluation wrote no scores');
    expect(summary.metrics).toEqual({ checkpointStep: null, meanPerplexity: null, environments: 0 });
  });
});
