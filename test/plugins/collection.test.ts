import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Bundle, verifyManifest } from '../../src/bundle';
import { CollectionPlugin } from '../../src/plugins/collection/plugin';
import type { CollectionRequest } from '../../src/plugins/collection/schema';
import { EXAMPLES, loadRequest, outcomeOf, problemsOf, readJsonFile, runBundle, useTempDirs, writeText } from './helpers';

const plugin = new CollectionPlugin();
const SOURCE =
  'a mapping such as {kind: synthetic, rows: 500, features: 4, seed: 7}, {kind: file, path: data/raw.csv} or {kind: rollouts, checkpoint: <a char-lm step-N folder>, prompts: prompts.txt}';
const OUTPUT = 'the CSV file to write under artifacts/, e.g. data/collected.csv (for rollouts: a folder, e.g. rollouts)';
const KIND = 'source.kind must be "synthetic" (generate rows), "file" (copy a local CSV) or "rollouts" (sample a char-lm checkpoint)';
const rollouts = { kind: 'rollouts', checkpoint: 'runs/lm/step-300', prompts: 'prompts.txt' };
const synthetic = { kind: 'synthetic', rows: 10 };
const base = { source: synthetic, output: 'data/out.csv' };

function parsed(raw: Record<string, unknown>): CollectionRequest {
  const r = plugin.parse(raw);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.value;
}

describe('collection request schema', () => {
  it('fills defaults of a synthetic source', () => {
    expect(parsed(base).source).toEqual({ kind: 'synthetic', rows: 10, features: 4, seed: 0, noise: 0.1 });
    expect(parsed({ ...base, source: { kind: 'file', path: 'a.csv' } }).source).toEqual({ kind: 'file', path: 'a.csv' });
  });

  it('fills defaults of a rollouts source, whose output is a folder', () => {
    expect(parsed({ source: rollouts, output: 'rollouts' })).toMatchObject({
      source: { ...rollouts, samplesPerPrompt: 4, maxNewChars: 200, temperature: 0.8, seed: 0, shardSize: 100 },
      output: 'rollouts',
    });
    expect(parsed({ source: { ...rollouts, temperature: 0 }, output: 'data/lm/samples' }).source).toMatchObject({ temperature: 0 });
  });

  it('requires source and output, naming both at once', () => {
    expect(problemsOf(plugin.parse({}))).toEqual([
      { path: 'source', message: `source is required: ${SOURCE}` },
      { path: 'output', message: `output is required: ${OUTPUT}` },
    ]);
  });

  it.each([
    [{ source: 'synthetic' }, 'source', `source must be ${SOURCE}`],
    [{ source: { kind: 'scrape' } }, 'source.kind', KIND],
    [{ source: { rows: 5 } }, 'source.kind', KIND],
    [{ source: { kind: 'synthetic' } }, 'source.rows', 'source.rows is required: a whole number from 1 to 10000000'],
    [{ source: { ...synthetic, features: 0 } }, 'source.features', 'source.features must be at least 1'],
    [{ source: { ...synthetic, seed: 1.5 } }, 'source.seed', 'source.seed must be a whole number (from 0 to 2147483647)'],
    [{ source: { ...synthetic, noise: -1 } }, 'source.noise', 'source.noise must be 0 or more'],
    [{ source: { ...synthetic, path: 'a.csv' } }, 'source', 'unknown field "path" in a synthetic source; known fields: kind, rows, features, seed, noise'],
    [{ source: { kind: 'file' } }, 'source.path', 'source.path is required: the path of a CSV file with a header row, relative to the request file'],
    [{ source: { kind: 'file', path: 'a.csv', limit: 0 } }, 'source.limit', 'source.limit must be at least 1'],
    [{ source: { kind: 'file', path: 'a.csv', rows: 5 } }, 'source', 'unknown field "rows" in a file source; known fields: kind, path, limit'],
    [{ output: '' }, 'output', `output is required: ${OUTPUT}`],
    [{ output: 'data/out.txt' }, 'output', 'output must name a .csv file under artifacts/, e.g. data/collected.csv'],
    [{ output: '../out.csv' }, 'output', `output must be a relative path under artifacts/ (${OUTPUT}), without a leading '/', '..', '.', empty parts or backslashes`],
    [{ source: { kind: 'rollouts', prompts: 'p.txt' }, output: 'r' }, 'source.checkpoint', "source.checkpoint is required: the step-N folder of a char-lm training run's checkpoint (holding model.pt and COMPLETE), relative to the request file"],
    [{ source: { kind: 'rollouts', checkpoint: 'c' }, output: 'r' }, 'source.prompts', 'source.prompts is required: a UTF-8 text file with one prompt per line, relative to the request file'],
    [{ source: { ...rollouts, samplesPerPrompt: 0 }, output: 'r' }, 'source.samplesPerPrompt', 'source.samplesPerPrompt must be at least 1'],
    [{ source: { ...rollouts, maxNewChars: 0 }, output: 'r' }, 'source.maxNewChars', 'source.maxNewChars must be at least 1'],
    [{ source: { ...rollouts, maxNewChars: 2.5 }, output: 'r' }, 'source.maxNewChars', 'source.maxNewChars must be a whole number (from 1 to 100000)'],
    [{ source: { ...rollouts, temperature: -1 }, output: 'r' }, 'source.temperature', 'source.temperature must be at least 0 (0: always the most likely character)'],
    [{ source: { ...rollouts, temperature: 9 }, output: 'r' }, 'source.temperature', 'source.temperature must be at most 5'],
    [{ source: { ...rollouts, temperature: 'hot' }, output: 'r' }, 'source.temperature', 'source.temperature must be a number from 0 to 5'],
    [{ source: { ...rollouts, shardSize: 0 }, output: 'r' }, 'source.shardSize', 'source.shardSize must be at least 1'],
    [{ source: { ...rollouts, seed: -1 }, output: 'r' }, 'source.seed', 'source.seed must be at least 0'],
    [{ source: { ...rollouts, rows: 5 }, output: 'r' }, 'source', 'unknown field "rows" in a rollouts source; known fields: kind, checkpoint, prompts, samplesPerPrompt, maxNewChars, temperature, seed, shardSize'],
    [
      { source: rollouts, output: 'rollouts.jsonl' },
      'output',
      'output must name a folder under artifacts/ for source.kind rollouts, e.g. rollouts (it receives shard-00000.jsonl, shard-00001.jsonl, ...), not a file such as rollouts.jsonl',
    ],
    [
      { source: rollouts, output: 'data/samples.csv' },
      'output',
      'output must name a folder under artifacts/ for source.kind rollouts, e.g. rollouts (it receives shard-00000.jsonl, shard-00001.jsonl, ...), not a file such as data/samples.csv',
    ],
    [
      { output: 'manifest.json' },
      'output',
      'output must not be manifest.json or collection.log or collection.json: the job writes those files itself; pick another name',
    ],
    [{ rows: 5 }, '', 'unknown field "rows" in a collection request; known fields: source, output, resources, env, secretEnv, timeoutSeconds, syncIntervalSeconds, precheck, health'],
  ])('rejects %j at %s', (patch, path, message) => {
    const problems = problemsOf(plugin.parse({ ...base, ...patch }));
    expect(problems[0]).toEqual({ path, message });
    // manifest.json is both reserved and not a .csv: the reserved-name message comes first.
    expect(problems.length).toBe((patch as { output?: string }).output === 'manifest.json' ? 2 : 1);
  });
});

describe('collection validate', () => {
  const tempDir = useTempDirs();

  it('checks a rollouts source: a char-lm checkpoint (not an mlp one) and a prompts file with a prompt', async () => {
    const dir = await tempDir();
    const lm = join(dir, 'lm');
    await mkdir(lm);
    await writeText(lm, 'model.pt', 'x');
    await writeText(lm, 'COMPLETE', 'step 1\n');
    await writeText(lm, 'meta.json', JSON.stringify({ kind: 'char-lm', vocab: ['a'], architecture: {}, step: 1 }));
    await writeText(dir, 'prompts.txt', 'To be\n');
    await writeText(dir, 'blank.txt', '\n  \n');
    const check = (source: Record<string, unknown>) => plugin.validate(parsed({ source: { kind: 'rollouts', checkpoint: 'lm', prompts: 'prompts.txt', ...source }, output: 'rollouts' }), dir);
    expect(await check({})).toEqual([]);
    const mlp = join(EXAMPLES, 'data/checkpoints/step-300');
    expect(await check({ checkpoint: mlp })).toEqual([
      {
        path: 'source.checkpoint',
        message: `${mlp} is an mlp checkpoint (a regressor trained on a CSV table); rollouts are sampled from a char-lm: give a step-N folder of a training run on a .txt text`,
      },
    ]);
    expect(await check({ checkpoint: 'gone', prompts: 'blank.txt' })).toEqual([
      { path: 'source.checkpoint', message: `${join(dir, 'gone')} does not exist; give the step-N folder of a training job's checkpoint (it holds model.pt and COMPLETE)` },
      { path: 'source.prompts', message: `${join(dir, 'blank.txt')} has 0 non-blank lines; it needs at least 1 (one prompt per line)` },
    ]);
    expect(await check({ prompts: 'none.txt' })).toEqual([
      { path: 'source.prompts', message: `${join(dir, 'none.txt')} does not exist; expected a plain UTF-8 text file (.txt), relative to the request file` },
    ]);
  });

  it('needs nothing on disk for a synthetic source', async () => {
    expect(await plugin.validate(parsed(base), '/nonexistent')).toEqual([]);
  });

  it('checks that a file source exists and has a header', async () => {
    const dir = await tempDir();
    await writeText(dir, 'empty.csv', '');
    expect(await plugin.validate(parsed({ ...base, source: { kind: 'file', path: 'gone.csv' } }), dir)).toEqual([
      {
        path: 'source.path',
        message: `${join(dir, 'gone.csv')} does not exist; expected a CSV file with a header row and numbers in every cell (features first, the target last), relative to the request file`,
      },
    ]);
    expect((await plugin.validate(parsed({ ...base, source: { kind: 'file', path: 'empty.csv' } }), dir))[0]?.message).toMatch(/empty\.csv is empty;/);
  });
});

describe('collection run', () => {
  const tempDir = useTempDirs();

  it('runs the example: writes the requested rows, deterministically, with a verified manifest', async () => {
    const { raw } = loadRequest(join(EXAMPLES, 'collect.yaml'));
    const root = await tempDir();
    const outputs: string[] = [];
    for (const name of ['one', 'two']) {
      const bundle = await plugin.buildBundle(join(root, name), { request: parsed(raw), jobId: `collect-${name}`, baseDir: EXAMPLES });
      expect(await bundle.validate()).toEqual([]);
      const digest = await bundle.freeze();
      expect((await Bundle.open(bundle.dir)).spec).toMatchObject({ taskType: 'collection', jobKind: 'collect', resources: { cpus: 1, memoryGb: 1 } });
      expect((await Bundle.open(bundle.dir)).spec.progress).toBeUndefined(); // it writes no per-step series
      const { exitCode } = await runBundle(bundle.dir);
      expect(exitCode, await readFile(bundle.path('artifacts/collection.log'), 'utf8')).toBe(0);
      const csv = await readFile(bundle.path('artifacts/data/collected.csv'), 'utf8');
      const lines = csv.trimEnd().split('\n');
      expect(lines[0]).toBe('x1,x2,x3,x4,y');
      expect(lines.length).toBe(501);
      expect(lines.slice(1).every((l) => l.split(',').length === 5 && l.split(',').every((c) => Number.isFinite(Number(c))))).toBe(true);
      outputs.push(csv);
      expect(await readJsonFile(bundle.path('artifacts/collection.json'))).toMatchObject({ output: 'data/collected.csv', rows: 500, columns: 5, dropped: 0 });
      const manifest = await verifyManifest(bundle.dir);
      expect(manifest.verified).toBe(true);
      expect(manifest.verifiedFiles).toEqual(expect.arrayContaining(['data/collected.csv', 'collection.json', 'collection.log']));
      expect(await bundle.assertDigest()).toBe(digest);
      const summary = await plugin.summarizeResult(bundle, await outcomeOf(bundle.dir, exitCode));
      expect(summary).toEqual({
        headline: 'collected 500 rows x 5 columns into artifacts/data/collected.csv',
        metrics: { rows: 500, columns: 5, dropped: 0 },
        highlights: ['artifacts/data/collected.csv', 'artifacts/collection.json', 'artifacts/collection.log'],
      });
    }
    expect(outputs[0]).toBe(outputs[1]);
  });

  it('copies a file source, dropping rows that are not numbers and keeping at most `limit`', async () => {
    const dir = await tempDir();
    await writeText(dir, 'raw.csv', 'a,b,y\n1,2,3\nx,2,3\n4,5\n4,5,6\n7,8,9\n10,11,12\n');
    const request = parsed({ source: { kind: 'file', path: 'raw.csv', limit: 3 }, output: 'clean.csv' });
    const bundle = await plugin.buildBundle(join(dir, 'bundle'), { request, jobId: 'collect-file', baseDir: dir });
    expect(await bundle.validate()).toEqual([]);
    expect((await runBundle(bundle.dir)).exitCode).toBe(0);
    expect(await readFile(bundle.path('artifacts/clean.csv'), 'utf8')).toBe('a,b,y\n1,2,3\n4,5,6\n7,8,9\n');
    const summary = await plugin.summarizeResult(bundle, await outcomeOf(bundle.dir, 0));
    expect(summary.headline).toBe('collected 3 rows x 3 columns into artifacts/clean.csv (dropped 2 bad rows)');
  });
});
