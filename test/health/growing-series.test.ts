import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSeries } from '../../src/diagnose/sources';
import { GrowingSeries } from '../../src/health/facts';
import { useTempDirs } from '../helpers/use-temp-dirs';

const tempDir = useTempDirs('orbit-series-');
const SPEC = { file: 'logging.jsonl', format: 'jsonl' as const, step: 'step', metrics: [{ key: 'loss', goal: 'min' as const }] };
const rec = (i: number, loss: number | string) => `{"step": ${i}, "loss": ${loss}}\n`;

describe('GrowingSeries: the progress series read as it grows', () => {
  it('reads only what was appended, holds back a half-written line, and ends equal to a whole read', async () => {
    const dir = await tempDir();
    const file = join(dir, 'logging.jsonl');
    await writeFile(file, rec(1, 3) + rec(2, 2.5));
    const g = new GrowingSeries(dir, SPEC);
    expect((await g.read())?.series[0]?.points.map((p) => p.value)).toEqual([3, 2.5]);
    await appendFile(file, rec(3, 'NaN') + '{"step": 4, "lo');
    expect((await g.read())?.series[0]?.points.map((p) => [p.line, p.step])).toEqual([[1, 1], [2, 2], [3, 3]]);
    await appendFile(file, 'ss": 1.5}\n');
    const whole = parseSeries(rec(1, 3) + rec(2, 2.5) + rec(3, 'NaN') + rec(4, 1.5), SPEC);
    expect((await g.read())?.series).toEqual(whole);
  });

  it('starts again when the file shrank (rewritten), and picks the copy with the most points', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'ckpt', 'step-2'), { recursive: true });
    await writeFile(join(dir, 'ckpt', 'step-2', 'logging.jsonl'), rec(1, 3) + rec(2, 2));
    await writeFile(join(dir, 'logging.jsonl'), rec(1, 3));
    const g = new GrowingSeries(dir, SPEC);
    expect((await g.read())?.rel).toBe('ckpt/step-2/logging.jsonl');
    await writeFile(join(dir, 'logging.jsonl'), rec(1, 3) + rec(2, 2) + rec(3, 1));
    expect((await g.read())?.rel).toBe('logging.jsonl');
    await writeFile(join(dir, 'logging.jsonl'), rec(1, 9));
    const again = await g.read();
    expect(again?.rel).toBe('ckpt/step-2/logging.jsonl');
    await writeFile(join(dir, 'logging.jsonl'), rec(1, 9) + rec(2, 8) + rec(3, 7) + rec(4, 6));
    expect((await g.read())?.series[0]?.points.map((p) => p.value)).toEqual([9, 8, 7, 6]);
  });
});
