import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliError } from '../../src/cli/errors';
import { clipMessage, loadRequest, MAX_PROBLEM_CHARS, MAX_PROBLEMS_LISTED, problemsText } from '../../src/cli/request';
import { buildDefaultTaskRegistry, type TaskRegistry } from '../../src/plugins/registry';
import { tempDir } from '../helpers/bundles';
import { ROOT } from '../helpers/orbit-cli';
import { ALIAS_BOMB } from './inputs';

const TRAINING = `task: training\ndatasetPath: ${join(ROOT, 'examples/data/regression.csv')}\noutputDir: checkpoints\nsteps: 10\n`;

/** A training request with `extra` lines appended until it is just under `bytes`. */
function padded(line: (i: number) => string, bytes: number): { text: string; count: number } {
  const parts = [TRAINING];
  let size = Buffer.byteLength(TRAINING);
  let count = 0;
  for (;;) {
    const l = `${line(count)}\n`;
    if (size + l.length > bytes) break;
    parts.push(l);
    size += l.length;
    count++;
  }
  return { text: parts.join(''), count };
}

async function refusal(p: Promise<unknown>): Promise<CliError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(CliError);
  return e as CliError;
}

describe('request files: limits and how problems are listed', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let registry: TaskRegistry;
  const file = async (name: string, text: string) => {
    const path = join(tmp.dir, name);
    await writeFile(path, text);
    return path;
  };
  beforeAll(async () => {
    tmp = await tempDir('request-');
    registry = await buildDefaultTaskRegistry();
  });
  afterAll(async () => tmp.cleanup());

  it('accepts a plain training request', async () => {
    const loaded = await loadRequest(await file('train.yaml', TRAINING), registry);
    expect(loaded.plugin.taskType).toBe('training');
  });

  it('refuses an alias bomb in one line naming the file, exit code 2', async () => {
    const path = await file('bomb.yaml', `${TRAINING}${ALIAS_BOMB}\n`);
    const e = await refusal(loadRequest(path, registry));
    expect(e.exitCode).toBe(2);
    expect(e.message).toBe(`${path}: its aliases (*name) expand to more than 100 copies; write the values out instead of nesting anchors and aliases`);
  });

  it('refuses a 4 MB request by its size, before parsing it', async () => {
    const { text, count } = padded((i) => `extraKey${String(i).padStart(6, '0')}: "value number ${i} padding padding"`, 4 * 1024 * 1024);
    expect(count).toBeGreaterThan(79_000);
    const path = await file('huge.yaml', text);
    const e = await refusal(loadRequest(path, registry));
    expect(e.exitCode).toBe(2);
    expect(e.message).toBe(`${path}: is ${Buffer.byteLength(text)} bytes, over the 1 MiB (1048576-byte) limit on YAML/JSON input; make the file smaller`);
  });

  it('reports 20,000 unknown fields just under the limit in one bounded line that keeps the known fields', async () => {
    const { text, count } = padded((i) => `extraKey${String(i).padStart(6, '0')}: "value number ${i} padding padding"`, 1024 * 1024);
    expect(count).toBeGreaterThan(19_000);
    const path = await file('wide.yaml', text);
    const e = await refusal(loadRequest(path, registry));
    expect(e.exitCode).toBe(2);
    const [head, problem, ...rest] = e.message.split('\n');
    expect(head).toBe(`${path} is not a valid training request:`);
    expect(rest).toEqual([]);
    expect(problem!.length).toBeLessThan(path.length + MAX_PROBLEM_CHARS + 60);
    expect(problem).toMatch(new RegExp(`^${path}: unknown fields "extraKey000000", "extraKey000001", .*, \\.\\.\\. \\d+ more \\.\\.\\., .*"extraKey0${count - 1}" in a training request; known fields: datasetPath, outputDir, `));
    const shown = problem!.match(/"extraKey\d+"/g)!.length;
    const more = Number(/\.\.\. (\d+) more \.\.\./.exec(problem!)![1]);
    expect(shown + more).toBe(count);
  });

  it('lists at most 20 problems, then counts the rest', async () => {
    const { text, count } = padded((i) => (i === 0 ? 'env:' : `  VAR_${i}: ${i}`), 64 * 1024);
    const path = await file('env.yaml', text);
    const e = await refusal(loadRequest(path, registry));
    const lines = e.message.split('\n');
    expect(lines).toHaveLength(1 + MAX_PROBLEMS_LISTED + 1);
    expect(lines[1]).toBe(`${path}: env.VAR_1: env values must be strings; quote numbers and booleans in YAML, e.g. "1"`);
    expect(lines.at(-1)).toBe(`${path}: ... and ${count - 1 - MAX_PROBLEMS_LISTED} more problems`);
  });

  it('refuses YAML with a duplicate key in one line with its place', async () => {
    const path = await file('dup.yaml', `${TRAINING}steps: 20\n`);
    const e = await refusal(loadRequest(path, registry));
    expect(e.message).toBe(`${path}: not valid YAML: line 5, column 1: Map keys must be unique`);
  });

  it('clips only long messages, at list separators, keeping both ends', () => {
    expect(clipMessage('short')).toBe('short');
    const long = `items ${Array.from({ length: 1000 }, (_, i) => `"k${i}"`).join(', ')} in x; known fields: a, b`;
    const clipped = clipMessage(long);
    expect(clipped.length).toBeLessThanOrEqual(MAX_PROBLEM_CHARS + 40);
    expect(clipped).toMatch(/^items "k0", "k1", .*"k\d+", \.\.\. \d+ more \.\.\., "k\d+", .*"k999" in x; known fields: a, b$/);
    expect(problemsText('f.yaml', [{ path: 'a', message: 'bad' }])).toBe('f.yaml: a: bad');
  });
});
