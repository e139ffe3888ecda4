import Ajv from 'ajv';
import { readdirSync, readFileSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SCHEMAS_DIR, writeSchemas } from '../../scripts/gen-schemas';
import { CliError } from '../../src/cli/cli-error';
import { requestJsonSchema, schemaCommand, schemaFileName } from '../../src/cli/schema';
import { buildDefaultTaskRegistry, type TaskRegistry } from '../../src/plugins/registry';
import { useTempDirs } from '../helpers/use-temp-dirs';
import { ROOT } from '../helpers/orbit-cli';

const EXAMPLES = join(ROOT, 'examples');
const tempDir = useTempDirs('orbit-schema-');
let registry: TaskRegistry;
beforeAll(async () => {
  registry = await buildDefaultTaskRegistry();
});

const readYaml = (file: string) => parseYaml(readFileSync(file, 'utf8')) as Record<string, unknown>;
/** The request files among the examples: YAML with a `task` (sweep files have a `base` request instead). */
const requestExamples = readdirSync(EXAMPLES)
  .filter((name) => name.endsWith('.yaml') && typeof readYaml(join(EXAMPLES, name)).task === 'string')
  .sort();

// ajv@6 (draft-07) is installed with eslint; the schemas are generated for draft-07 so that it and editors read them.
function validator(task: string): (doc: unknown) => string[] {
  const schema = JSON.parse(readFileSync(join(DEFAULT_SCHEMAS_DIR, schemaFileName(task)), 'utf8')) as object;
  const check = new Ajv({ allErrors: true }).compile(schema);
  return (doc) => (check(doc) ? [] : (check.errors ?? []).map((e) => `${e.dataPath || '/'} ${e.message ?? ''}`));
}

describe('schemas/<task>.schema.json', () => {
  it('are exactly what scripts/gen-schemas.ts makes of the zod schemas (run it after changing a request schema)', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'gone.schema.json'), '{}');
    const { written, removed } = await writeSchemas(dir);
    expect(written).toEqual(registry.taskTypes().map(schemaFileName));
    expect(removed).toEqual(['gone.schema.json']);
    const checkedIn = (await readdir(DEFAULT_SCHEMAS_DIR)).sort();
    expect(checkedIn, 'schemas/ differs from the task types: run npx tsx scripts/gen-schemas.ts').toEqual([...written].sort());
    for (const name of written) {
      expect(await readFile(join(DEFAULT_SCHEMAS_DIR, name), 'utf8'), `schemas/${name} is stale: run npx tsx scripts/gen-schemas.ts`).toBe(
        await readFile(join(dir, name), 'utf8'),
      );
    }
  });

  it('describe the whole request file: task, optional jobId, then the task fields, nothing else; a task with a user-code form has one such shape per form', () => {
    type Shape = { properties: Record<string, unknown>; required: string[]; additionalProperties: unknown };
    const upstream = requestJsonSchema('upstream', registry) as Shape;
    expect(Object.keys(upstream.properties).slice(0, 4)).toEqual(['task', 'jobId', 'repository', 'commit']);
    expect(upstream.required).toEqual(['task', 'repository', 'commit', 'entry']);
    const [builtIn, code] = (requestJsonSchema('training', registry) as { anyOf: Shape[] }).anyOf;
    expect(Object.keys(builtIn!.properties).slice(0, 4)).toEqual(['task', 'jobId', 'datasetPath', 'outputDir']);
    expect(builtIn!.properties.task).toMatchObject({ const: 'training' });
    expect(builtIn!.required).toEqual(['task', 'datasetPath', 'outputDir']);
    expect(builtIn!.additionalProperties).toBe(false);
    expect(Object.keys(code!.properties).slice(0, 5)).toEqual(['task', 'jobId', 'workdir', 'setup', 'run']);
    expect(code!.required).toEqual(['task', 'workdir', 'run', 'datasets', 'outputDir']);
    expect(code!.additionalProperties).toBe(false);
  });

  it('refuse what the plugins refuse', () => {
    const training = validator('training');
    const evaluation = validator('evaluation');
    const ok = { task: 'training', datasetPath: 'd.csv', outputDir: 'out' };
    expect(training(ok)).toEqual([]);
    // Training has two forms (anyOf): a bad file is refused by both, and each says why.
    expect(training({ ...ok, jobId: 'Bad Id' })).toContain(".jobId should match pattern \"^[a-z0-9][a-z0-9._-]{0,62}$\"");
    expect(training({ ...ok, task: 'evaluation' })).toContain('.task should be equal to constant');
    expect(training({ ...ok, stpes: 3 })).toContain('/ should NOT have additional properties');
    expect(training({ task: 'training', outputDir: 'out', steps: 0 })).toEqual(expect.arrayContaining(["/ should have required property 'datasetPath'", '.steps should be >= 1']));
    const code = { task: 'training', workdir: '.', run: 'python3 train.py', datasets: { train: 'd.csv' }, outputDir: 'out' };
    expect(training(code)).toEqual([]);
    expect(training({ ...code, workdir: { path: '.', exclude: ['*.ckpt'], maxSizeMb: 500 } })).toEqual([]);
    expect(training({ ...code, workdir: { repository: '../r', commit: 'a'.repeat(40) } })).toEqual([]);
    expect(training({ ...code, workdir: { path: '.', excludes: [] } })).not.toEqual([]);
    expect(training({ ...code, run: [] })).not.toEqual([]);
    const environments = [{ name: 'a', datasetPath: 'a.csv' }];
    expect(evaluation({ task: 'evaluation', model: 'ckpt', environments })).toEqual([]);
    expect(evaluation({ task: 'evaluation', environments })).not.toEqual([]); // neither checkpoint nor model
    expect(evaluation({ task: 'evaluation', checkpoint: 'a', model: 'b', environments })).not.toEqual([]); // both
    expect(validator('upstream')({ task: 'upstream', repository: 'r', commit: 'main', entry: ['x'] })).toEqual(['.commit should match pattern "^[0-9a-f]{40}$"']);
  });
});

describe('the example requests', () => {
  it('are the six shipped ones: the language-model examples and the MLP ones', () => {
    expect(requestExamples).toEqual(['collect-rollouts.yaml', 'collect.yaml', 'eval-mlp.yaml', 'eval.yaml', 'train-mlp.yaml', 'train.yaml']);
  });

  it.each(requestExamples)('%s names its schema on its first line, for editors, and validates against it', (name) => {
    const text = readFileSync(join(EXAMPLES, name), 'utf8');
    const task = String(readYaml(join(EXAMPLES, name)).task);
    expect(text.split('\n')[0]).toBe(`# yaml-language-server: $schema=../schemas/${schemaFileName(task)}`);
    expect(validator(task)(readYaml(join(EXAMPLES, name)))).toEqual([]);
  });
});

describe('orbit schema TASK', () => {
  const capture = () => {
    const out: string[] = [];
    const note: string[] = [];
    return { io: { out: (s: string) => out.push(s), note: (s: string) => note.push(s) }, out, note };
  };

  it.each(['collection', 'evaluation', 'training', 'upstream'])('prints the %s schema as JSON, the text of its checked-in file', async (task) => {
    const { io, out, note } = capture();
    expect(await schemaCommand(task, io)).toBe(0);
    expect(out).toHaveLength(1);
    expect(JSON.parse(out[0]!)).toEqual(requestJsonSchema(task, registry));
    expect(`${out[0]}\n`).toBe(readFileSync(join(DEFAULT_SCHEMAS_DIR, schemaFileName(task)), 'utf8'));
    expect(note).toEqual([]);
  });

  it.each([
    ['an unknown task', 'finetune', 'unknown task type "finetune"; known task types: collection, evaluation, training, upstream'],
    ['no task', undefined, 'orbit schema TASK: name a task type (one of: collection, evaluation, training, upstream)'],
  ])('refuses %s with exit 2, naming the known tasks', async (_what, task, message) => {
    const { io, out } = capture();
    const refusal = await schemaCommand(task, io).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(CliError);
    expect(refusal).toMatchObject({ message, exitCode: 2 });
    expect(out).toEqual([]);
  });
});
