import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Bundle, verifyManifest } from '../../src/bundle';
import { CollectionPlugin } from '../../src/plugins/collection/plugin';
import type { CollectionRequest } from '../../src/plugins/collection/schema';
import { EXAMPLES, loadRequest, outcomeOf, problemsOf, readJsonFile, runBundle, useTempDirs, writeText } from './helpers';

const plugin = new CollectionPlugin();
const SOURCE = 'a mapping such as {kind: synthetic, rows: 500, features: 4, seed: 7} or {kind: file, path: data/raw.csv}';
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

  it('requires source and output, naming both at once', () => {
    expect(problemsOf(plugin.parse({}))).toEqual([
      { path: 'source', message: `source is required: ${SOURCE}` },
      { path: 'output', message: 'output is required: the CSV file to write under artifacts/, e.g. data/collected.csv' },
    ]);
  });

  it.each([
    [{ source: 'synthetic' }, 'source', `source must be ${SOURCE}`],
    [{ source: { kind: 'scrape' } }, 'source.kind', 'source.kind must be "synthetic" (generate rows) or "file" (copy a local CSV)'],
    [{ source: { rows: 5 } }, 'source.kind', 'source.kind must be "synthetic" (generate rows) or "file" (copy a local CSV)'],
    [{ source: { kind: 'synthetic' } }, 'source.rows', 'source.rows is required: a whole number from 1 to 10000000'],
    [{ source: { ...synthetic, features: 0 } }, 'source.features', 'source.features must be at least 1'],
    [{ source: { ...synthetic, seed: 1.5 } }, 'source.seed', 'source.seed must be a whole number (from 0 to 2147483647)'],
    [{ source: { ...synthetic, noise: -1 } }, 'source.noise', 'source.noise must be 0 or more'],
    [{ source: { ...synthetic, path: 'a.csv' } }, 'source', 'unknown field "path" in a synthetic source; known fields: kind, rows, features, seed, noise'],
    [{ source: { kind: 'file' } }, 'source.path', 'source.path is required: the path of a CSV file with a header row, relative to the request file'],
    [{ source: { kind: 'file', path: 'a.csv', limit: 0 } }, 'source.limit', 'source.limit must be at least 1'],
    [{ source: { kind: 'file', path: 'a.csv', rows: 5 } }, 'source', 'unknown field "rows" in a file source; known fields: kind, path, limit'],
    [{ output: '' }, 'output', 'output is required: the CSV file to write under artifacts/, e.g. data/collected.csv'],
    [{ output: 'data/out.txt' }, 'output', 'output must name a .csv file under artifacts/, e.g. data/collected.csv'],
    [
      { output: '../out.csv' },
      'output',
      "output must be a relative path under artifacts/ (the CSV file to write under artifacts/, e.g. data/collected.csv), without a leading '/', '..', '.', empty parts or backslashes",
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
