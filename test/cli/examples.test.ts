import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/temp-dirs';
import { orbit, ROOT } from '../helpers/orbit-cli';

const EXAMPLES = join(ROOT, 'examples');

/** Every file under examples/, but for data/ folders (the tables and checkpoints the requests read). */
function exampleFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const full = join(dir, name);
      if (!statSync(full).isDirectory()) return [full];
      return name === 'data' ? [] : exampleFiles(full);
    });
}

/** A sweep file has a `matrix` of cells over a `base` request; every other example is a request file. */
const isSweep = (file: string) => {
  const doc = parseYaml(readFileSync(file, 'utf8')) as Record<string, unknown> | null;
  return doc !== null && typeof doc === 'object' && 'matrix' in doc;
};

const files = exampleFiles(EXAMPLES).map((f) => relative(ROOT, f));

// bin/orbit as a user runs it on what we ship: `validate` and `sweep validate` need no Temporal.
describe('every shipped example validates', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    tmp = await tempDir('orbit-examples-');
    env = { ...process.env, ORBIT_HOME: join(tmp.dir, 'home') };
  });
  afterAll(async () => tmp.cleanup());

  it('finds the examples', () => {
    expect(files).toEqual(expect.arrayContaining(['examples/collect.yaml', 'examples/eval.yaml', 'examples/sweep.yaml', 'examples/train.yaml']));
  });

  it.concurrent.each(files)('%s', async (file) => {
    const path = join(ROOT, file);
    const r = await orbit(isSweep(path) ? ['sweep', 'validate', path] : ['validate', path], env, 60_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/: valid /);
  });
});
