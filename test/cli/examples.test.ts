import { readdirSync, readFileSync, statSync } from 'node:fs';
import { cp } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/temp-dirs';
import { orbit, ROOT } from '../helpers/orbit-cli';
import { tinyLmRequest, trainLm } from '../plugins/charlm-helpers';

const EXAMPLES = join(ROOT, 'examples');

/**
 * Every file under examples/, but for data/ folders (the texts, tables and checkpoints the requests
 * read) and runs/ (a user's pulled training runs, ignored by git).
 */
function exampleFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const full = join(dir, name);
      if (!statSync(full).isDirectory()) return [full];
      return name === 'data' || (dir === EXAMPLES && name === 'runs') ? [] : exampleFiles(full);
    });
}

/** A sweep file has a `matrix` of cells over a `base` request; every other example is a request file. */
const isSweep = (file: string) => {
  const doc = parseYaml(readFileSync(file, 'utf8')) as Record<string, unknown> | null;
  return doc !== null && typeof doc === 'object' && 'matrix' in doc;
};

const files = exampleFiles(EXAMPLES).map((f) => relative(EXAMPLES, f));

// bin/orbit as a user runs it on what we ship: `validate` and `sweep validate` need no Temporal. The
// language-model examples (eval.yaml, sweep.yaml, collect-rollouts.yaml) read checkpoints of a
// training run of train.yaml that their comments say to pull into examples/runs/lm/: a copy of
// examples/ gets one, trained for real (a tiny model, so that it takes seconds), where they look.
describe('every shipped example validates', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let env: NodeJS.ProcessEnv;
  let copy: string;
  beforeAll(async () => {
    tmp = await tempDir('orbit-examples-');
    env = { ...process.env, ORBIT_HOME: join(tmp.dir, 'home') };
    copy = join(tmp.dir, 'examples');
    await cp(EXAMPLES, copy, { recursive: true, filter: (src) => src !== join(EXAMPLES, 'runs') });
    // As `orbit pull <run id> --to examples/runs/lm` lays it out: the run's bundle, artifacts/ in it.
    const request = tinyLmRequest({ steps: 400, checkpointEvery: 100, batchSize: 4, model: { kind: 'char-lm', contextLength: 16, layers: 1, heads: 2, embedDim: 16 } });
    await trainLm(join(copy, 'runs/lm'), request);
  });
  afterAll(async () => tmp.cleanup());

  it('finds the examples', () => {
    expect(files).toEqual(
      expect.arrayContaining(['collect.yaml', 'collect-rollouts.yaml', 'eval.yaml', 'eval-mlp.yaml', 'sweep.yaml', 'sweep-mlp.yaml', 'train.yaml', 'train-mlp.yaml']),
    );
  });

  it.concurrent.each(files)('%s', async (file) => {
    const path = join(copy, file);
    const r = await orbit(isSweep(path) ? ['sweep', 'validate', path] : ['validate', path], env, 60_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/: valid /);
  });

  it('the language-model examples need the trained run: without it, each names the checkpoint it lacks', async () => {
    const bare = join(tmp.dir, 'bare');
    await cp(EXAMPLES, bare, { recursive: true, filter: (src) => src !== join(EXAMPLES, 'runs') });
    const r = await orbit(['validate', join(bare, 'eval.yaml')], env, 60_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`checkpoint: ${join(bare, 'runs/lm/artifacts/checkpoints/step-400')} does not exist`);
  });
});
