import { describe, expect, it } from 'vitest';
import { deepMerge, expandCells, parseMatrix } from '../../src/sweeps/matrix';

describe('the sweep matrix', () => {
  it('expands field axes and override lists into every combination, the last axis fastest', () => {
    const { axes, problems } = parseMatrix({
      checkpoint: { field: 'checkpoint', values: { 'step-100': 'c/step-100', 'step-300': 'c/step-300' } },
      env: [
        { name: 'holdout-a', set: { environments: [{ name: 'holdout-a', datasetPath: 'a.csv' }] } },
        { name: 'holdout-b', set: { environments: [{ name: 'holdout-b', datasetPath: 'b.csv' }] } },
      ],
    });
    expect(problems).toEqual([]);
    const cells = expandCells({ task: 'evaluation', environments: [{ name: 'x', datasetPath: 'x.csv' }], timeoutSeconds: 60 }, axes);
    expect(cells.map((c) => c.name)).toEqual(['step-100.holdout-a', 'step-100.holdout-b', 'step-300.holdout-a', 'step-300.holdout-b']);
    expect(cells[1]).toEqual({
      name: 'step-100.holdout-b',
      axes: { checkpoint: 'step-100', env: 'holdout-b' },
      request: { task: 'evaluation', checkpoint: 'c/step-100', environments: [{ name: 'holdout-b', datasetPath: 'b.csv' }], timeoutSeconds: 60 },
    });
  });

  it('sets nested fields by dotted path, merging mappings and keeping the base intact', () => {
    const base = { task: 'collection', source: { kind: 'synthetic', rows: 10, seed: 0 } };
    const { axes } = parseMatrix({ seed: { field: 'source.seed', values: { s1: 1, s2: 2 } } });
    const cells = expandCells(base, axes);
    expect(cells.map((c) => c.request)).toEqual([
      { task: 'collection', source: { kind: 'synthetic', rows: 10, seed: 1 } },
      { task: 'collection', source: { kind: 'synthetic', rows: 10, seed: 2 } },
    ]);
    expect(base.source.seed).toBe(0);
    expect(deepMerge({ a: [1, 2], b: { c: 1 } }, { a: [3], b: { d: 2 } })).toEqual({ a: [3], b: { c: 1, d: 2 } });
  });

  it('names every problem by its field', () => {
    expect(parseMatrix({}).problems).toEqual([{ path: 'matrix', message: expect.stringMatching(/is empty: name at least one axis/) }]);
    expect(parseMatrix({ ckpt: [] }).problems).toEqual([{ path: 'matrix.ckpt', message: 'lists no values: give at least one' }]);
    expect(parseMatrix({ ckpt: { field: 'checkpoint', values: {} } }).problems).toEqual([{ path: 'matrix.ckpt', message: 'lists no values: give at least one' }]);
    const p = parseMatrix({
      ckpt: [{ name: 'a.b', set: {} }, { set: { x: 1 } }, { name: 'c', set: 3 }, { name: 'd', set: {}, extra: 1 }],
      seed: { values: { 'bad name': 1 } },
      env: 'holdout',
    }).problems.map((x) => x.path);
    expect(p).toEqual(['matrix.ckpt[0].name', 'matrix.ckpt[1].name', 'matrix.ckpt[2].set', 'matrix.ckpt[3]', 'matrix.seed.field', 'matrix.seed.values.bad name', 'matrix.env']);
    expect(parseMatrix({ a: [{ name: 'x', set: {} }, { name: 'x', set: {} }] }).problems[0]?.message).toMatch(/"x" is used twice/);
  });

  it('refuses a matrix of more than 256 cells', () => {
    const values = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`v${i}`, i]));
    expect(parseMatrix({ a: { field: 'a', values }, b: { field: 'b', values } }).problems).toEqual([{ path: 'matrix', message: 'makes 289 cells; at most 256 are allowed' }]);
  });
});
