import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Bundle, ValidationError, verifyManifest } from '../../src/bundle';
import { diagnoseBundle } from '../../src/diagnose';
import { TrainingPlugin } from '../../src/plugins/training/plugin';
import type { TrainingRequest } from '../../src/plugins/training/schema';
import { EXAMPLES, loadRequest, outcomeOf, problemsOf, readJsonFile, readJsonLines, runBundle, useTempDirs, writeText } from './helpers';

const plugin = new TrainingPlugin();
const TABLE = 'a CSV file with a header row and numbers in every cell (features first, the target last), relative to the request file';
const DATASET =
  'a .txt file (UTF-8 text: a char-lm language model) or a .csv file (a header row, numbers in every cell, the target last: an mlp regressor), relative to the request file';
const base = { datasetPath: 'data/regression.csv', outputDir: 'checkpoints' };
const lm = { datasetPath: 'data/text/shakespeare-train.txt', outputDir: 'checkpoints' };
const LM_DEFAULTS = { kind: 'char-lm', contextLength: 64, layers: 3, heads: 4, embedDim: 96, dropout: 0 };

function parsed(raw: Record<string, unknown>): TrainingRequest {
  const r = plugin.parse(raw);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.value;
}

interface LogLine {
  step: number;
  loss: number;
  lr: number;
  time: number;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('training request schema', () => {
  it('fills defaults for an minimal request', () => {
    expect(parsed(base)).toEqual({
      ...base,
      model: { kind: 'mlp', hiddenSize: 32, layers: 2 },
      steps: 300,
      batchSize: 64,
      learningRate: 0.01,
      checkpointEvery: 100,
      seed: 0,
      secondsPerStep: 0,
      env: {},
      secretEnv: [],
    });
  });

  it('requires datasetPath and outputDir, naming both at once', () => {
    expect(problemsOf(plugin.parse({}))).toEqual([
      { path: 'datasetPath', message: `datasetPath is required: ${DATASET}` },
      { path: 'outputDir', message: 'outputDir is required: the folder under artifacts/ for checkpoints, e.g. checkpoints' },
    ]);
  });

  it.each([
    [{ datasetPath: '' }, 'datasetPath', `datasetPath is required: ${DATASET}`],
    [{ datasetPath: '   ' }, 'datasetPath', `datasetPath is required: ${DATASET}`],
    [{ datasetPath: 7 }, 'datasetPath', `datasetPath must be a string: ${DATASET}`],
    [{ outputDir: '' }, 'outputDir', 'outputDir is required: the folder under artifacts/ for checkpoints, e.g. checkpoints'],
    [
      { outputDir: '../elsewhere' },
      'outputDir',
      "outputDir must be a relative path under artifacts/ (the folder under artifacts/ for checkpoints, e.g. checkpoints), without a leading '/', '..', '.', empty parts or backslashes",
    ],
    [
      { outputDir: '/abs/ckpt' },
      'outputDir',
      "outputDir must be a relative path under artifacts/ (the folder under artifacts/ for checkpoints, e.g. checkpoints), without a leading '/', '..', '.', empty parts or backslashes",
    ],
    [
      { outputDir: 'metrics.json' },
      'outputDir',
      'outputDir must not be manifest.json or training.log or metrics.json or logging.jsonl: the job writes those files itself; pick another name',
    ],
    [{ steps: 0 }, 'steps', 'steps must be at least 1'],
    [{ steps: 2.5 }, 'steps', 'steps must be a whole number (from 1 to 10000000)'],
    [{ steps: '300' }, 'steps', 'steps must be a number: a whole number from 1 to 10000000'],
    [{ batchSize: 0 }, 'batchSize', 'batchSize must be at least 1'],
    [{ learningRate: 0 }, 'learningRate', 'learningRate must be greater than 0'],
    [{ learningRate: 'fast' }, 'learningRate', 'learningRate must be a number greater than 0'],
    [{ learningRate: 1e31 }, 'learningRate', 'learningRate must be at most 1e+30'],
    [{ secondsPerStep: -1 }, 'secondsPerStep', 'secondsPerStep must be at least 0'],
    [{ checkpointEvery: 0 }, 'checkpointEvery', 'checkpointEvery must be at least 1'],
    [{ seed: -1 }, 'seed', 'seed must be at least 0'],
    [{ model: { hiddenSize: 0 } }, 'model.hiddenSize', 'model.hiddenSize must be at least 1'],
    [{ model: { layers: 17 } }, 'model.layers', 'model.layers must be at most 16'],
    [{ model: { width: 8 } }, 'model', 'unknown field "width" in an mlp model; known fields: kind, hiddenSize, layers'],
    [
      { model: 'mlp' },
      'model',
      'model must be a mapping of fields, e.g. {kind: char-lm, contextLength: 64, layers: 3, heads: 4, embedDim: 96} or {kind: mlp, hiddenSize: 32, layers: 2}',
    ],
    [{ model: { kind: 'gpt' } }, 'model.kind', 'model.kind must be one of char-lm, mlp: char-lm trains a language model on a .txt text, mlp fits a regressor to a .csv table'],
    [
      { model: { kind: 'char-lm' } },
      'model.kind',
      'model.kind is char-lm (a language model on a text), but datasetPath data/regression.csv is a .csv table: give a .txt text, or set model.kind to mlp (or leave it out) to fit the table',
    ],
    [
      { datasetPath: 'data/corpus.md' },
      'datasetPath',
      "datasetPath data/corpus.md ends in neither .txt nor .csv, so the model's kind is not known: rename it, or set model.kind (char-lm for a UTF-8 text, mlp for a CSV table)",
    ],
    [
      { epochs: 3 },
      '',
      'unknown field "epochs" in a training request; known fields: datasetPath, outputDir, model, steps, batchSize, learningRate, checkpointEvery, seed, secondsPerStep, resources, env, secretEnv, timeoutSeconds, syncIntervalSeconds, precheck, health',
    ],
    [
      { task: 'training' },
      '',
      'unknown field "task" in a training request; known fields: datasetPath, outputDir, model, steps, batchSize, learningRate, checkpointEvery, seed, secondsPerStep, resources, env, secretEnv, timeoutSeconds, syncIntervalSeconds, precheck, health',
    ],
  ])('rejects %j at %s', (patch, path, message) => {
    expect(problemsOf(plugin.parse({ ...base, ...patch }))).toEqual([{ path, message }]);
  });

  it('a .txt dataset trains a char-lm: its defaults, and batchSize and learningRate of its own', () => {
    expect(parsed(lm)).toMatchObject({ ...lm, model: LM_DEFAULTS, steps: 300, batchSize: 32, learningRate: 0.005, checkpointEvery: 100, seed: 0 });
    expect(parsed({ ...lm, model: { layers: 2, dropout: 0.1 } }).model).toEqual({ ...LM_DEFAULTS, layers: 2, dropout: 0.1 });
    expect(parsed({ ...lm, model: { kind: 'char-lm' }, batchSize: 8, learningRate: 0.001 })).toMatchObject({ batchSize: 8, learningRate: 0.001 });
    // An explicit kind takes any extension but the other kind's.
    expect(parsed({ ...lm, datasetPath: 'notes.md', model: { kind: 'char-lm' } }).model).toEqual(LM_DEFAULTS);
    expect(parsed({ ...base, model: { kind: 'mlp', hiddenSize: 8 } }).model).toEqual({ kind: 'mlp', hiddenSize: 8, layers: 2 });
  });

  it.each([
    [
      { model: { kind: 'mlp' } },
      'model.kind',
      'model.kind is mlp (a regressor on a CSV table), but datasetPath data/text/shakespeare-train.txt is a .txt text: set model.kind to char-lm (or leave it out) to train a language model on it, or give a .csv table',
    ],
    [{ model: { hiddenSize: 32 } }, 'model', 'unknown field "hiddenSize" in a char-lm model; known fields: kind, contextLength, layers, heads, embedDim, dropout'],
    [{ model: { contextLength: 4 } }, 'model.contextLength', 'model.contextLength must be at least 8'],
    [{ model: { contextLength: 2048 } }, 'model.contextLength', 'model.contextLength must be at most 1024'],
    [{ model: { layers: 0 } }, 'model.layers', 'model.layers must be at least 1'],
    [{ model: { layers: 13 } }, 'model.layers', 'model.layers must be at most 12'],
    [{ model: { heads: 0 } }, 'model.heads', 'model.heads must be at least 1'],
    [{ model: { embedDim: 4 } }, 'model.embedDim', 'model.embedDim must be at least 8'],
    [{ model: { embedDim: 1.5 } }, 'model.embedDim', 'model.embedDim must be a whole number (from 8 to 1024)'],
    [
      { model: { embedDim: 100, heads: 3 } },
      'model.embedDim',
      'model.embedDim (100) must be a multiple of model.heads (3): each head takes embedDim / heads dimensions, e.g. embedDim 99',
    ],
    [{ model: { dropout: 0.6 } }, 'model.dropout', 'model.dropout must be at most 0.5'],
    [{ model: { dropout: -0.1 } }, 'model.dropout', 'model.dropout must be at least 0'],
    [{ model: { dropout: 'none' } }, 'model.dropout', 'model.dropout must be a number from 0 to 0.5'],
  ])('rejects a char-lm request with %j at %s', (patch, path, message) => {
    expect(problemsOf(plugin.parse({ ...lm, ...patch }))).toEqual([{ path, message }]);
  });

  it('rejects a request that is not a mapping', () => {
    expect(problemsOf(plugin.parse(['datasetPath']))).toEqual([
      {
        path: '',
        message:
          'a training request must be a mapping of fields (key: value), with fields datasetPath, outputDir, model, steps, batchSize, learningRate, checkpointEvery, seed, secondsPerStep, resources, env, secretEnv, timeoutSeconds, syncIntervalSeconds, precheck, health',
      },
    ]);
  });
});

describe('training validate', () => {
  const tempDir = useTempDirs();

  it('accepts the example datasets', async () => {
    expect(await plugin.validate(parsed(base), EXAMPLES)).toEqual([]);
    expect(await plugin.validate(parsed(lm), EXAMPLES)).toEqual([]);
  });

  it('checks a char-lm text: there, UTF-8, long enough for its context, a vocabulary of at most 2000 characters', async () => {
    const dir = await tempDir();
    const TEXT = 'a plain UTF-8 text file (.txt), relative to the request file';
    const check = (datasetPath: string, model: Record<string, unknown> = {}) => plugin.validate(parsed({ ...lm, datasetPath, model }), dir);
    expect(await check('gone.txt')).toEqual([{ path: 'datasetPath', message: `${join(dir, 'gone.txt')} does not exist; expected ${TEXT}` }]);
    await writeFile(join(dir, 'latin1.txt'), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
    expect(await check('latin1.txt')).toEqual([
      { path: 'datasetPath', message: `${join(dir, 'latin1.txt')} is not UTF-8 text; expected ${TEXT} (convert it, e.g. iconv -f latin1 -t utf-8)` },
    ]);
    await writeText(dir, 'short.txt', 'x'.repeat(500));
    expect(await check('short.txt', { contextLength: 32 })).toEqual([
      {
        path: 'datasetPath',
        message: `${join(dir, 'short.txt')} has 500 characters; it needs at least 660 (20 x (model.contextLength + 1) for a char-lm with contextLength 32: the last 5% is held out for validation)`,
      },
    ]);
    expect(await check('short.txt', { contextLength: 8 })).toEqual([]);
    // A sparse file: its size is refused before anything of it is read.
    await writeFile(join(dir, 'huge.txt'), '');
    await truncate(join(dir, 'huge.txt'), 300 * 2 ** 20);
    expect(await check('huge.txt')).toEqual([{ path: 'datasetPath', message: `${join(dir, 'huge.txt')} is 300 MiB; a text for these tasks is at most 256 MiB` }]);
    await writeText(dir, 'wide.txt', Array.from({ length: 2100 }, (_, i) => String.fromCodePoint(0x4e00 + i)).join(''));
    expect(await check('wide.txt', { contextLength: 8 })).toEqual([
      { path: 'datasetPath', message: `${join(dir, 'wide.txt')} has 2100 distinct characters; a char-lm's vocabulary holds at most 2000 (one embedding row each)` },
    ]);
  });

  it('resolves datasetPath against the request folder and reports a missing file', async () => {
    const dir = await tempDir();
    expect(await plugin.validate(parsed({ ...base, datasetPath: 'nope.csv' }), dir)).toEqual([
      { path: 'datasetPath', message: `${join(dir, 'nope.csv')} does not exist; expected ${TABLE}` },
    ]);
  });
});

describe('training bundle', () => {
  const tempDir = useTempDirs();

  it('builds a bundle that validates and freezes', async () => {
    const dir = join(await tempDir(), 'bundle');
    const request = parsed({ ...base, steps: 50, resources: { cpus: 4, gpus: 1 }, env: { MODE: 'x' }, secretEnv: ['HF_TOKEN'], timeoutSeconds: 120 });
    const bundle = await plugin.buildBundle(dir, { request, jobId: 'demo-train', baseDir: EXAMPLES });
    expect(await bundle.validate()).toEqual([]);
    expect(await bundle.freeze()).toMatch(/^sha256:[0-9a-f]{64}$/);
    const spec = (await Bundle.open(dir)).spec;
    expect(spec).toMatchObject({
      jobId: 'demo-train',
      taskType: 'training',
      jobKind: 'train',
      resources: { gpus: 1, cpus: 4, memoryGb: 2 },
      env: { MODE: 'x' },
      secretEnv: ['HF_TOKEN'],
      entrypoint: { command: ['python3', 'scripts/trainer.py', '--config', 'inputs/config.json'], logFile: 'training.log' },
      timeouts: { runSeconds: 120 },
      inputs: [{ path: 'config.json' }, { path: 'data/regression.csv' }],
      metadata: { outputDir: 'checkpoints', steps: 50, datasetFile: 'regression.csv', modelKind: 'mlp' },
      expectedOutputs: [
        { path: 'metrics.json', required: true },
        { path: 'training.log', required: true },
        { path: 'checkpoints/step-50/model.pt', required: true },
        { path: 'checkpoints/step-50/COMPLETE', required: true },
      ],
    });
    expect(await readJsonFile(join(dir, 'inputs/config.json'))).toEqual({
      dataset: 'inputs/data/regression.csv',
      outputDir: 'checkpoints',
      model: { kind: 'mlp', hiddenSize: 32, layers: 2 },
      steps: 50,
      batchSize: 64,
      learningRate: 0.01,
      checkpointEvery: 100,
      seed: 0,
      secondsPerStep: 0,
      threads: 2,
    });
    // The series the core diagnoses and charts, declared by the plugin (the core names no file or metric).
    expect(spec.progress).toEqual({ file: 'logging.jsonl', format: 'jsonl', step: 'step', metrics: [{ key: 'loss', goal: 'min' }] });
    expect(await readdir(join(dir, 'scripts'))).toEqual(expect.arrayContaining(['trainer.py', 'tabular.py', 'charlm.py', 'orbit']));
    expect(await readFile(join(dir, 'inputs/data/regression.csv'), 'utf8')).toBe(await readFile(join(EXAMPLES, 'data/regression.csv'), 'utf8'));
  });

  it('builds the language-model example: the text staged, the model and its defaults in the config', async () => {
    const dir = join(await tempDir(), 'bundle');
    const { raw } = loadRequest(join(EXAMPLES, 'train.yaml'));
    const bundle = await plugin.buildBundle(dir, { request: parsed(raw), jobId: 'train', baseDir: EXAMPLES });
    expect(await bundle.validate()).toEqual([]);
    expect(bundle.spec).toMatchObject({
      inputs: [{ path: 'config.json' }, { path: 'data/shakespeare-train.txt' }],
      sync: { atomicDirs: [{ parent: 'checkpoints', marker: 'COMPLETE' }] },
      progress: { file: 'logging.jsonl', metrics: [{ key: 'loss', goal: 'min' }] },
      metadata: { modelKind: 'char-lm', steps: 400 },
    });
    expect(await readJsonFile(join(dir, 'inputs/config.json'))).toEqual({
      dataset: 'inputs/data/shakespeare-train.txt',
      outputDir: 'checkpoints',
      model: { kind: 'char-lm', contextLength: 64, layers: 3, heads: 4, embedDim: 96, dropout: 0 },
      steps: 400,
      batchSize: 32,
      learningRate: 0.005,
      checkpointEvery: 100,
      seed: 0,
      secondsPerStep: 0,
      threads: 2,
    });
    expect(await readdir(join(dir, 'scripts'))).toEqual(expect.arrayContaining(['trainer.py', 'tabular.py', 'charlm.py']));
  });

  it('refuses to build from a request that does not validate', async () => {
    const dir = join(await tempDir(), 'bundle');
    const request = parsed({ ...base, datasetPath: 'missing.csv' });
    await expect(plugin.buildBundle(dir, { request, jobId: 'x', baseDir: EXAMPLES })).rejects.toThrow(ValidationError);
    expect(existsSync(dir)).toBe(false);
  });

  it('summarizes a run that never started', async () => {
    const dir = join(await tempDir(), 'bundle');
    const bundle = await plugin.buildBundle(dir, { request: parsed(base), jobId: 'x', baseDir: EXAMPLES });
    const summary = await plugin.summarizeResult(bundle, { status: 'lost', exitCode: null, manifest: await verifyManifest(dir) });
    expect(summary.headline).toBe('lost: training recorded no step (of 300); no complete checkpoint');
    expect(summary.metrics).toEqual({ firstLoss: null, finalLoss: null, steps: null, checkpoints: 0, finalCheckpoint: null });
    expect(summary.highlights).toEqual([]);
  });

  it('summarizes a run that timed out before it recorded a step: no "step 0", no metrics.json it never wrote', async () => {
    const dir = join(await tempDir(), 'bundle');
    const bundle = await plugin.buildBundle(dir, { request: parsed(base), jobId: 'x', baseDir: EXAMPLES });
    await mkdir(join(dir, 'artifacts'), { recursive: true });
    await writeText(dir, 'artifacts/training.log', 'torch 2.x from /venv; python 3.12; threads 2\ndataset inputs/data/regression.csv: 200 rows\n');
    const summary = await plugin.summarizeResult(bundle, { status: 'timed-out', exitCode: 143, manifest: await verifyManifest(dir) });
    expect(summary.headline).toBe('timed-out (exit 143): training recorded no step (of 300); no complete checkpoint');
    expect(summary.headline).not.toMatch(/step 0\b/);
    expect(summary.metrics['steps']).toBeNull();
    expect(summary.highlights).toEqual(['artifacts/training.log']);
  });

  it('summarizes a run that timed out between checkpoints from the last step its log printed', async () => {
    const dir = join(await tempDir(), 'bundle');
    const bundle = await plugin.buildBundle(dir, { request: parsed(base), jobId: 'x', baseDir: EXAMPLES });
    const steps = Array.from({ length: 42 }, (_, i) => `step ${i + 1}/300 loss 0.${900 - i} lr 0.01000`).join('\n');
    await mkdir(join(dir, 'artifacts'), { recursive: true });
    await writeText(dir, 'artifacts/training.log', `dataset inputs/data/regression.csv: 200 rows\n${steps}\n`);
    const summary = await plugin.summarizeResult(bundle, { status: 'timed-out', exitCode: 143, manifest: await verifyManifest(dir) });
    expect(summary.headline).toBe('timed-out (exit 143): training logged step 42 of 300 in training.log; no complete checkpoint');
    expect(summary.metrics).toMatchObject({ steps: 42, checkpoints: 0, finalCheckpoint: null });
    expect(summary.highlights).toEqual(['artifacts/training.log']);
  });
});

describe('training run (real PyTorch on CPU)', () => {
  const tempDir = useTempDirs();

  it('runs the MLP example: the loss goes down, checkpoints are complete, the manifest verifies', async () => {
    const { raw } = loadRequest(join(EXAMPLES, 'train-mlp.yaml'));
    const dir = join(await tempDir(), 'bundle');
    const bundle = await plugin.buildBundle(dir, { request: parsed(raw), jobId: 'demo-train', baseDir: EXAMPLES });
    const digest = await bundle.freeze();

    const { exitCode } = await runBundle(dir);
    expect(exitCode, await readFile(join(dir, 'artifacts/training.log'), 'utf8')).toBe(0);

    const ckpt = join(dir, 'artifacts/checkpoints');
    expect((await readdir(ckpt)).sort()).toEqual(['step-100', 'step-200', 'step-300']);
    for (const step of [100, 200, 300]) {
      expect((await readdir(join(ckpt, `step-${step}`))).sort()).toEqual(['COMPLETE', 'logging.jsonl', 'meta.json', 'model.pt', 'optimizer.pt']);
      const lines = await readJsonLines<LogLine>(join(ckpt, `step-${step}`, 'logging.jsonl'));
      expect(lines.map((l) => l.step)).toEqual(Array.from({ length: step }, (_, i) => i + 1));
    }
    const log = await readJsonLines<LogLine>(join(ckpt, 'step-300/logging.jsonl'));
    expect(Object.keys(log[0]!).sort()).toEqual(['loss', 'lr', 'step', 'time']);
    const early = mean(log.slice(0, 10).map((l) => l.loss));
    const late = mean(log.slice(-20).map((l) => l.loss));
    expect(late).toBeLessThan(early / 20);
    expect(log.at(-1)!.lr).toBeLessThan(log[0]!.lr);

    const metrics = await readJsonFile(join(dir, 'artifacts/metrics.json'));
    expect(metrics).toMatchObject({ steps: 300, startStep: 0, resumedFrom: null, rows: 400, features: 4, finalCheckpoint: 'checkpoints/step-300' });
    expect(metrics['fullDataLoss']).toBeLessThan(0.5);
    expect(await readFile(join(dir, 'artifacts/training.log'), 'utf8')).toMatch(/^torch 2\.13\.0/);

    const manifest = await verifyManifest(dir);
    expect(manifest.problems).toEqual([]);
    expect(manifest.verified).toBe(true);
    expect(manifest.verifiedFiles).toEqual(expect.arrayContaining(['metrics.json', 'training.log', 'checkpoints/step-300/COMPLETE', 'checkpoints/step-300/model.pt']));
    // The run left job.json, inputs/ and scripts/ alone (no __pycache__ under scripts/).
    expect(await bundle.assertDigest()).toBe(digest);

    const summary = await plugin.summarizeResult(bundle, await outcomeOf(dir, exitCode));
    expect(summary.headline).toMatch(/^trained 300 steps: loss [\d.]+ -> [\d.e-]+$/);
    expect(summary.metrics).toMatchObject({ steps: 300, checkpoints: 3, finalCheckpoint: 'artifacts/checkpoints/step-300' });
    expect(summary.metrics['finalLoss']).toBeLessThan(summary.metrics['firstLoss'] as number);
    expect(summary.highlights).toEqual(['artifacts/metrics.json', 'artifacts/training.log', 'artifacts/checkpoints/step-300']);
    const progress = (await diagnoseBundle(dir)).layers.find((l) => l.layer === 'progress');
    expect(progress).toMatchObject({ status: 'ok', summary: expect.stringMatching(/^loss [\d.]+ -> [\d.e-]+ over 300 points \(step 1 to 300\)$/) });
    // The live series (written step by step) has as many points as the last checkpoint's copy; either is the curve.
    expect(progress?.evidence[0]?.file).toMatch(/^artifacts\/(checkpoints\/step-300\/)?logging\.jsonl$/);
  });

  it('resumes from ORBIT_RESUME_FROM to the same final step, continuing the loss exactly', async () => {
    const root = await tempDir();
    const request = parsed({ ...base, steps: 120, checkpointEvery: 60 });
    const first = await plugin.buildBundle(join(root, 'first'), { request, jobId: 'first', baseDir: EXAMPLES });
    const second = await plugin.buildBundle(join(root, 'second'), { request, jobId: 'second', baseDir: EXAMPLES });
    await first.freeze();
    await second.freeze();
    expect((await runBundle(first.dir)).exitCode).toBe(0);
    const from = first.path('artifacts/checkpoints/step-60');
    expect((await runBundle(second.dir, { ORBIT_RESUME_FROM: from })).exitCode).toBe(0);

    expect(await readdir(second.path('artifacts/checkpoints'))).toEqual(['step-120']);
    const full = await readJsonLines<LogLine>(first.path('artifacts/checkpoints/step-120/logging.jsonl'));
    const resumed = await readJsonLines<LogLine>(second.path('artifacts/checkpoints/step-120/logging.jsonl'));
    expect(resumed.map((l) => l.step)).toEqual(full.map((l) => l.step));
    // Batches and learning rate depend only on (seed, step), so the continuation is the same run.
    expect(resumed.map((l) => [l.loss, l.lr])).toEqual(full.map((l) => [l.loss, l.lr]));
    expect(resumed[60]!.loss).toBeLessThan(resumed[0]!.loss / 10);
    expect(await readJsonFile(second.path('artifacts/metrics.json'))).toMatchObject({ steps: 120, startStep: 60, resumedFrom: from });
    expect(await readFile(second.path('artifacts/training.log'), 'utf8')).toContain(`resuming from ${from} at step 60 of 120`);
    expect((await verifyManifest(second.dir)).verified).toBe(true);
  });

  it('refuses to resume from a partial checkpoint (no COMPLETE marker)', async () => {
    const root = await tempDir();
    const partial = join(root, 'step-10');
    await mkdir(partial);
    await writeText(partial, 'meta.json', '{}');
    const bundle = await plugin.buildBundle(join(root, 'b'), { request: parsed({ ...base, steps: 20 }), jobId: 'b', baseDir: EXAMPLES });
    const { exitCode } = await runBundle(bundle.dir, { ORBIT_RESUME_FROM: partial });
    expect(exitCode).toBe(2);
    expect(await readFile(bundle.path('artifacts/training.log'), 'utf8')).toContain(`trainer: error: ${partial}: not a complete checkpoint (no COMPLETE marker)`);
    const summary = await plugin.summarizeResult(bundle, await outcomeOf(bundle.dir, exitCode));
    expect(summary.headline).toBe('failed (exit 2): training recorded no step (of 20); no complete checkpoint');
    await rm(partial, { recursive: true });
  });
});
