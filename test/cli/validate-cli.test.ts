import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/bundles';
import { orbit } from '../helpers/orbit-cli';
import { ALIAS_BOMB } from './inputs';

// bin/orbit as a user runs it; `validate` needs no Temporal.
describe('orbit validate refuses hostile request files in one line, exit code 2', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    tmp = await tempDir('validate-cli-');
    env = { ...process.env, ORBIT_HOME: join(tmp.dir, 'home') };
  });
  afterAll(async () => tmp.cleanup());

  it.each([
    ['an alias bomb', 'bomb.yaml', `task: training\n${ALIAS_BOMB}\n`, 'its aliases (*name) expand to more than 100 copies; write the values out instead of nesting anchors and aliases'],
    ['a 4 MB request', 'huge.yaml', `task: training\n#${'x'.repeat(4 * 1024 * 1024)}\n`, `is ${4 * 1024 * 1024 + 17} bytes, over the 1 MiB (1048576-byte) limit on YAML/JSON input; make the file smaller`],
    ['a duplicate key', 'dup.yaml', 'task: training\ntask: training\n', 'not valid YAML: line 2, column 1: Map keys must be unique'],
  ])('%s', async (_what, name, text, message) => {
    const path = join(tmp.dir, name);
    await writeFile(path, text);
    const r = await orbit(['validate', path], env, 60_000);
    expect(r).toEqual({ code: 2, stdout: '', stderr: `orbit: ${path}: ${message}\n` });
  });
});
