import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Bundle } from '../../src/bundle';
import { TrainingPlugin } from '../../src/plugins/training/plugin';
import type { TrainingRequest } from '../../src/plugins/training/schema';
import { EXAMPLES, loadRequest, runBundle } from './helpers';

/**
 * A language model small enough for a unit test (28k parameters): 120 steps of it take 2-4 s on one
 * core, most of it importing torch. With seed 0 its loss falls from ln(63) = 4.15 to about 2.6.
 */
export const TINY_LM = { kind: 'char-lm', contextLength: 32, layers: 2, heads: 2, embedDim: 32 } as const;

/** examples/train.yaml with a tiny model and `overrides`, parsed by the training plugin (one thread: the unit suite runs files in parallel). */
export function tinyLmRequest(overrides: Record<string, unknown> = {}): TrainingRequest {
  const { raw } = loadRequest(join(EXAMPLES, 'train.yaml'));
  const r = new TrainingPlugin().parse({ ...raw, model: TINY_LM, batchSize: 32, learningRate: 0.01, resources: { cpus: 1 }, ...overrides });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.value;
}

/** Builds a training bundle of `request` in `dir` (relative paths against examples/), freezes and runs it; throws with the log when it fails. */
export async function trainLm(dir: string, request: TrainingRequest, env: Record<string, string> = {}): Promise<{ bundle: Bundle; digest: string; seconds: number }> {
  const bundle = await new TrainingPlugin().buildBundle(dir, { request, jobId: 'lm', baseDir: EXAMPLES });
  const digest = await bundle.freeze();
  const { exitCode, seconds } = await runBundle(dir, env);
  if (exitCode !== 0) throw new Error(`training failed (exit ${exitCode}):\n${await readFile(bundle.path('artifacts/training.log'), 'utf8').catch(() => '')}`);
  return { bundle, digest, seconds };
}
