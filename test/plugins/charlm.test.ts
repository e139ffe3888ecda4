/**
 * The language-model path end to end, on one tiny model trained once (beforeAll, real PyTorch on CPU):
 * training (the loss falls, checkpoints, the contract's variables), resume, evaluation of two of its
 * checkpoints on the three example texts, and rollouts (complete shards, and a kill mid-run).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Bundle, verifyManifest } from '../../src/bundle';
import { diagnoseBundle } from '../../src/diagnose';
import { CollectionPlugin } from '../../src/plugins/collection/plugin';
import type { CollectionRequest } from '../../src/plugins/collection/schema';
import { EvaluationPlugin } from '../../src/plugins/evaluation/plugin';
import type { EvaluationRequest } from '../../src/plugins/evaluation/schema';
import { TrainingPlugin } from '../../src/plugins/training/plugin';
import { tinyLmRequest, trainLm } from './charlm-helpers';
import { EXAMPLES, loadRequest, outcomeOf, readJsonFile, readJsonLines, runBundle, useTempDirs, VENV_BIN, writeText } from './helpers';

interface LogLine {
  step: number;
  loss: number;
  lr: number;
  time: number;
  valLoss?: number;
}

interface Rollout {
  id: number;
  prompt: string;
  promptIndex: number;
  sample: number;
  completion: string;
  checkpointStep: number;
  temperature: number;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** The example environments: held-out Shakespeare, Austen's prose, Whitman's verse. */
const ENVIRONMENTS = loadRequest(join(EXAMPLES, 'eval.yaml')).raw['environments'] as { name: string; datasetPath: string }[];

let root: string;
let train: Bundle;
let trainSeconds: number;
const ckpt = (step: number) => train.path(`artifacts/checkpoints/step-${step}`);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'orbit-plugins-lm-'));
  const run = await trainLm(join(root, 'train'), tinyLmRequest({ steps: 120, checkpointEvery: 40 }));
  train = run.bundle;
  trainSeconds = run.seconds;
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('char-lm training (real PyTorch on CPU)', () => {
  it('trains: the loss falls from about ln(63) to below 0.75 of it; checkpoints are complete; the manifest verifies', async () => {
    const log = await readJsonLines<LogLine>(train.path('artifacts/checkpoints/step-120/logging.jsonl'));
    expect(log.map((l) => l.step)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    // A uniform guess over 62 characters and the unknown id: ln(63) = 4.14.
    expect(log[0]!.loss).toBeGreaterThan(4.0);
    expect(log[0]!.loss).toBeLessThan(4.3);
    // Seeds 0-3 of this model end at 0.62-0.70 of the first loss after 120 steps; seed 0 at 0.63.
    const late = mean(log.slice(-10).map((l) => l.loss));
    expect(late).toBeLessThan(0.75 * log[0]!.loss);
    // The validation loss (the text's last 5%, never trained on) falls from checkpoint to checkpoint.
    const val = log.filter((l) => l.valLoss !== undefined).map((l) => [l.step, l.valLoss!] as const);
    expect(val.map(([s]) => s)).toEqual([40, 80, 120]);
    expect(val[1]![1]).toBeLessThan(val[0]![1]);
    expect(val[2]![1]).toBeLessThan(val[1]![1]);
    expect(trainSeconds).toBeLessThan(60);

    expect((await readdir(train.path('artifacts/checkpoints'))).sort()).toEqual(['step-120', 'step-40', 'step-80']);
    expect((await readdir(ckpt(120))).sort()).toEqual(['COMPLETE', 'logging.jsonl', 'meta.json', 'model.pt', 'optimizer.pt']);
    const meta = await readJsonFile(join(ckpt(120), 'meta.json'));
    const text = await readFile(join(EXAMPLES, 'data/text/shakespeare-train.txt'), 'utf8');
    expect(meta).toMatchObject({
      kind: 'char-lm',
      vocab: [...new Set(text)].sort(),
      unknownId: 62,
      vocabSize: 63,
      architecture: { contextLength: 32, layers: 2, heads: 2, embedDim: 32, dropout: 0, parameters: 28_512 },
      step: 120,
      steps: 120,
      seed: 0,
      valLoss: val[2]![1],
    });
    expect(meta['datasetSha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(await readJsonFile(train.path('artifacts/metrics.json'))).toMatchObject({
      kind: 'char-lm',
      steps: 120,
      startStep: 0,
      parameters: 28_512,
      finalCheckpoint: 'checkpoints/step-120',
      checkpoints: ['checkpoints/step-40', 'checkpoints/step-80', 'checkpoints/step-120'],
    });
    expect((await verifyManifest(train.dir)).verified).toBe(true);

    const summary = await new TrainingPlugin().summarizeResult(train, await outcomeOf(train.dir, 0));
    expect(summary.headline).toMatch(/^trained 120 steps: loss 4\.1\d* -> 2\.\d+, validation loss 2\.\d+ \(perplexity \d+(\.\d+)?\)$/);
    expect(summary.metrics).toMatchObject({ steps: 120, checkpoints: 3, finalCheckpoint: 'artifacts/checkpoints/step-120', valLoss: val[2]![1] });
    const progress = (await diagnoseBundle(train.dir)).layers.find((l) => l.layer === 'progress');
    expect(progress).toMatchObject({ status: 'ok' });
  });

  it('resumes from ORBIT_RESUME_FROM to the same final loss as the uninterrupted run', async () => {
    const from = ckpt(80);
    const { bundle: resumed } = await trainLm(join(root, 'resumed'), tinyLmRequest({ steps: 120, checkpointEvery: 40 }), { ORBIT_RESUME_FROM: from });
    expect(await readdir(resumed.path('artifacts/checkpoints'))).toEqual(['step-120']);
    const full = await readJsonLines<LogLine>(ckpt(120) + '/logging.jsonl');
    const again = await readJsonLines<LogLine>(resumed.path('artifacts/checkpoints/step-120/logging.jsonl'));
    expect(again.map((l) => l.step)).toEqual(full.map((l) => l.step));
    // Batches, learning rate and dropout depend only on (seed, step): the continuation is the same run.
    expect(again.at(-1)!.loss).toBe(full.at(-1)!.loss);
    expect(again.map((l) => [l.loss, l.lr, l.valLoss])).toEqual(full.map((l) => [l.loss, l.lr, l.valLoss]));
    expect(await readJsonFile(resumed.path('artifacts/metrics.json'))).toMatchObject({ steps: 120, startStep: 80, resumedFrom: from });
    expect(await readFile(resumed.path('artifacts/training.log'), 'utf8')).toContain(`resuming from ${from} at step 80 of 120`);
  });

  it('writes where the contract says (ORBIT_CHECKPOINT_DIR, ORBIT_METRICS_FILE), else artifacts/<outputDir> and artifacts/logging.jsonl', async () => {
    const dir = join(root, 'by-hand');
    const bundle = await new TrainingPlugin().buildBundle(dir, { request: tinyLmRequest({ steps: 3, checkpointEvery: 2 }), jobId: 'by-hand', baseDir: EXAMPLES });
    const python = async (env: Record<string, string>) => {
      const child = spawn(join(VENV_BIN, 'python3'), ['scripts/trainer.py', '--config', 'inputs/config.json'], { cwd: bundle.dir, env: { ...process.env, ...env }, stdio: 'ignore' });
      return new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    };
    const elsewhere = join(root, 'elsewhere');
    const contract = { ORBIT_CHECKPOINT_DIR: join(elsewhere, 'ckpts'), ORBIT_CHECKPOINT_MARKER: 'DONE', ORBIT_METRICS_FILE: join(elsewhere, 'series/metrics.jsonl') };
    expect(await python(contract)).toBe(0);
    expect((await readdir(join(elsewhere, 'ckpts'))).sort()).toEqual(['step-2', 'step-3']);
    expect((await readdir(join(elsewhere, 'ckpts/step-3'))).sort()).toEqual(['DONE', 'logging.jsonl', 'meta.json', 'model.pt', 'optimizer.pt']);
    expect((await readJsonLines<LogLine>(join(elsewhere, 'series/metrics.jsonl'))).map((l) => l.step)).toEqual([1, 2, 3]);
    expect(existsSync(bundle.path('artifacts/checkpoints'))).toBe(false);
    // By hand, without the variables: today's paths.
    const bare = Object.fromEntries(Object.keys(contract).map((k) => [k, '']));
    expect(await python(bare)).toBe(0);
    expect((await readdir(bundle.path('artifacts/checkpoints'))).sort()).toEqual(['step-2', 'step-3']);
    expect(existsSync(bundle.path('artifacts/checkpoints/step-3/COMPLETE'))).toBe(true);
    expect((await readJsonLines<LogLine>(bundle.path('artifacts/logging.jsonl'))).map((l) => l.step)).toEqual([1, 2, 3]);
  });
});

describe('char-lm evaluation', () => {
  const plugin = new EvaluationPlugin();
  const tempDir = useTempDirs();
  const parsed = (raw: Record<string, unknown>): EvaluationRequest => {
    const r = plugin.parse(raw);
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    return r.value;
  };

  it('ranks the later checkpoint better on every environment: perplexity and accuracy per text, in scores.json and the summary', async () => {
    const dir = await tempDir();
    const runs = await Promise.all(
      [40, 120].map(async (step) => {
        const bundle = await plugin.buildBundle(join(dir, `step-${step}`), { request: parsed({ checkpoint: ckpt(step), environments: ENVIRONMENTS, resources: { cpus: 1 } }), jobId: `eval-${step}`, baseDir: EXAMPLES });
        const digest = await bundle.freeze();
        const { exitCode } = await runBundle(bundle.dir);
        expect(exitCode, await readFile(bundle.path('artifacts/evaluation.log'), 'utf8')).toBe(0);
        expect(await bundle.assertDigest()).toBe(digest);
        expect((await verifyManifest(bundle.dir)).verified).toBe(true);
        return { bundle, exitCode };
      }),
    );
    type Scores = { checkpoint: { step: number; kind: string }; environments: Record<string, { perplexity: number; accuracy: number; bitsPerChar: number; chars: number; oovChars: number }>; meanPerplexity: number };
    const [early, late] = await Promise.all(runs.map((r) => readJsonFile<Scores>(r.bundle.path('artifacts/scores.json'))));
    expect(early!.checkpoint).toMatchObject({ step: 40, kind: 'char-lm' });
    expect(late!.checkpoint).toMatchObject({ step: 120, kind: 'char-lm' });
    expect(Object.keys(late!.environments)).toEqual(['shakespeare', 'austen', 'whitman']);
    for (const name of ['shakespeare', 'austen', 'whitman']) {
      const a = early!.environments[name]!;
      const b = late!.environments[name]!;
      expect(b.perplexity, name).toBeLessThan(a.perplexity);
      expect(b.perplexity, name).toBeGreaterThan(1);
      expect(a.perplexity, name).toBeLessThan(63); // better than a uniform guess
      expect(b.accuracy, name).toBeGreaterThan(a.accuracy);
      expect(b.bitsPerChar).toBeCloseTo(Math.log2(b.perplexity), 6);
      expect(b.chars + b.oovChars).toBe(a.chars + a.oovChars);
    }
    // Held-out Shakespeare holds only the training text's characters; the other authors have a few more.
    expect(late!.environments['shakespeare']).toMatchObject({ chars: 21_902, oovChars: 0 });
    expect(late!.environments['austen']!.oovChars).toBeGreaterThan(0);

    const summary = await plugin.summarizeResult(runs[1]!.bundle, await outcomeOf(runs[1]!.bundle.dir, 0));
    expect(summary.headline).toMatch(/^scored checkpoint step 120 on 3 environments: shakespeare perplexity [\d.]+, austen perplexity [\d.]+, whitman perplexity [\d.]+$/);
    expect(summary.metrics).toMatchObject({
      checkpointStep: 120,
      environments: 3,
      meanPerplexity: late!.meanPerplexity,
      'perplexity.shakespeare': late!.environments['shakespeare']!.perplexity,
      'accuracy.whitman': late!.environments['whitman']!.accuracy,
    });
    expect(summary.highlights).toEqual(['artifacts/scores.json', 'artifacts/evaluation.log']);
    expect((await readdir(runs[0]!.bundle.path('inputs/environments'))).sort()).toEqual(['austen.txt', 'shakespeare.txt', 'whitman.txt']);
  });
});

describe('rollouts collection', () => {
  const plugin = new CollectionPlugin();
  const tempDir = useTempDirs();
  const parsed = (raw: Record<string, unknown>): CollectionRequest => {
    const r = plugin.parse(raw);
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    return r.value;
  };
  const SHARD = /^shard-\d{5}\.jsonl$/;

  /** Every file under `dir` is a shard of whole JSON lines; returns them by name. */
  async function shards(dir: string): Promise<Map<string, Rollout[]>> {
    const out = new Map<string, Rollout[]>();
    for (const name of (await readdir(dir)).sort()) {
      expect(name).toMatch(SHARD);
      const text = await readFile(join(dir, name), 'utf8');
      expect(text.endsWith('\n'), name).toBe(true);
      out.set(name, text.trimEnd().split('\n').map((l) => JSON.parse(l) as Rollout));
    }
    return out;
  }

  it('writes complete JSONL shards whose counts add up, and summarizes them', async () => {
    const dir = await tempDir();
    await writeText(dir, 'prompts.txt', 'To be, or not\n\nFirst Citizen:\nKING RICHARD III:\n');
    const request = parsed({
      source: { kind: 'rollouts', checkpoint: ckpt(120), prompts: 'prompts.txt', samplesPerPrompt: 3, maxNewChars: 40, temperature: 0.8, seed: 1, shardSize: 4 },
      output: 'rollouts',
      resources: { cpus: 1 },
    });
    const bundle = await plugin.buildBundle(join(dir, 'bundle'), { request, jobId: 'rollouts', baseDir: dir });
    expect(await bundle.validate()).toEqual([]);
    const digest = await bundle.freeze();
    expect((await Bundle.open(bundle.dir)).spec).toMatchObject({
      resources: { cpus: 1, memoryGb: 2 },
      precheck: { python: { modules: [{ name: 'torch', minVersion: '2.0' }] } },
    });
    const { exitCode } = await runBundle(bundle.dir);
    expect(exitCode, await readFile(bundle.path('artifacts/collection.log'), 'utf8')).toBe(0);

    // 3 prompts (the blank line skipped) x 3 samples = 9 records: shards of 4, 4 and 1.
    const written = await shards(bundle.path('artifacts/rollouts'));
    expect([...written.keys()]).toEqual(['shard-00000.jsonl', 'shard-00001.jsonl', 'shard-00002.jsonl']);
    expect([...written.values()].map((s) => s.length)).toEqual([4, 4, 1]);
    const records = [...written.values()].flat();
    expect(records.map((r) => r.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(records.map((r) => [r.promptIndex, r.sample])).toEqual([0, 1, 2].flatMap((p) => [0, 1, 2].map((s) => [p, s])));
    expect(records.map((r) => r.prompt)).toEqual(['To be, or not', 'First Citizen:', 'KING RICHARD III:'].flatMap((p) => [p, p, p]));
    expect(records.every((r) => [...r.completion].length === 40 && r.checkpointStep === 120 && r.temperature === 0.8)).toBe(true);
    expect(new Set(records.slice(0, 3).map((r) => r.completion)).size).toBeGreaterThan(1); // samples differ at temperature 0.8

    const stats = await readJsonFile<{ records: number; shards: { path: string; records: number; bytes: number }[]; bytes: number }>(bundle.path('artifacts/collection.json'));
    const sizes = await Promise.all([...written.keys()].map(async (n) => (await stat(bundle.path(`artifacts/rollouts/${n}`))).size));
    expect(stats).toMatchObject({ records: 9, bytes: sizes.reduce((a, b) => a + b, 0), keptShards: 0 });
    expect(stats.shards).toEqual([...written.keys()].map((n, i) => ({ path: `rollouts/${n}`, records: [4, 4, 1][i], bytes: sizes[i] })));
    expect(existsSync(bundle.path('.orbit-partial'))).toBe(false);
    expect((await verifyManifest(bundle.dir)).verified).toBe(true);
    expect(await bundle.assertDigest()).toBe(digest);

    const summary = await plugin.summarizeResult(bundle, await outcomeOf(bundle.dir, 0));
    expect(summary.headline).toMatch(/^collected 9 rollouts in 3 shards \(\d+\.\d KB\) into artifacts\/rollouts\/$/);
    expect(summary.metrics).toEqual({ records: 9, shards: 3, bytes: stats.bytes });
    expect(summary.highlights).toEqual(['artifacts/rollouts', 'artifacts/collection.json', 'artifacts/collection.log']);
  });

  it('a kill mid-run leaves no half shard under a final name; a relaunch keeps the shards there and completes the rest', async () => {
    const dir = await tempDir();
    await writeText(dir, 'prompts.txt', Array.from({ length: 8 }, (_, i) => `Prompt number ${i}:`).join('\n') + '\n');
    const request = parsed({
      source: { kind: 'rollouts', checkpoint: ckpt(40), prompts: 'prompts.txt', samplesPerPrompt: 2, maxNewChars: 400, seed: 3, shardSize: 3 },
      output: 'out/rollouts',
      resources: { cpus: 1 },
    });
    const bundle = await plugin.buildBundle(join(dir, 'bundle'), { request, jobId: 'rollouts-kill', baseDir: dir });
    const out = bundle.path('artifacts/out/rollouts');
    // The collector itself, as run.sh starts it; SIGKILL once two shards are out (no handler can run).
    const child = spawn(join(VENV_BIN, 'python3'), ['scripts/collector.py', '--config', 'inputs/config.json'], { cwd: bundle.dir, stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((done) => child.on('exit', (_code, signal) => done(signal)));
    const deadline = Date.now() + 30_000;
    while (!existsSync(join(out, 'shard-00001.jsonl')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    // 16 records in shards of 3: the run was stopped before its 6th shard.
    const before = await shards(out);
    expect(before.size).toBeGreaterThanOrEqual(2);
    expect(before.size).toBeLessThan(6);
    for (const [name, records] of before) expect(records.length, name).toBe(3);
    // The shard being written was outside artifacts/: nothing a sync or the manifest would pick up.
    const partial = await readdir(bundle.path('.orbit-partial/out/rollouts'));
    expect(partial.every((n) => /^\.shard-\d{5}\.jsonl\.partial$/.test(n))).toBe(true);
    const texts = new Map(await Promise.all([...before.keys()].map(async (n) => [n, await readFile(join(out, n), 'utf8')] as const)));

    // A relaunch in the same folder (the same host's run folder) keeps what is there and writes the rest.
    const { exitCode } = await runBundle(bundle.dir);
    expect(exitCode, await readFile(bundle.path('artifacts/collection.log'), 'utf8')).toBe(0);
    const after = await shards(out);
    expect([...after.values()].map((s) => s.length)).toEqual([3, 3, 3, 3, 3, 1]);
    expect([...after.values()].flat().map((r) => r.id)).toEqual(Array.from({ length: 16 }, (_, i) => i));
    for (const [name, text] of texts) expect(await readFile(join(out, name), 'utf8'), name).toBe(text);
    expect(await readJsonFile(bundle.path('artifacts/collection.json'))).toMatchObject({ records: 16, keptShards: before.size });
    expect(await readFile(bundle.path('artifacts/collection.log'), 'utf8')).toContain('shard-00000.jsonl: already there (an earlier attempt wrote it): kept');
    expect(existsSync(bundle.path('.orbit-partial'))).toBe(false);
  });

  it('summarizes a stopped run from the complete shards it left', async () => {
    const dir = await tempDir();
    await writeText(dir, 'prompts.txt', 'A prompt\n');
    const request = parsed({ source: { kind: 'rollouts', checkpoint: ckpt(40), prompts: 'prompts.txt', shardSize: 2 }, output: 'rollouts' });
    const bundle = await plugin.buildBundle(join(dir, 'bundle'), { request, jobId: 'r', baseDir: dir });
    await mkdir(bundle.path('artifacts/rollouts'), { recursive: true });
    await writeText(bundle.path('artifacts'), 'collection.log', '');
    await writeText(bundle.path('artifacts/rollouts'), 'shard-00000.jsonl', '{"id": 0}\n{"id": 1}\n');
    const summary = await plugin.summarizeResult(bundle, { status: 'cancelled', exitCode: 143, manifest: await verifyManifest(bundle.dir) });
    expect(summary.headline).toBe('cancelled (exit 143): collection wrote 1 complete shard (2 rollouts, 20 bytes) into artifacts/rollouts/');
    expect(summary.metrics).toEqual({ records: 2, shards: 1, bytes: 20 });
  });
});
