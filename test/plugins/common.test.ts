import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkTable, jobSpecFor } from '../../src/plugins/common';
import { CollectionPlugin } from '../../src/plugins/collection/plugin';
import { EvaluationPlugin } from '../../src/plugins/evaluation/plugin';
import { TrainingPlugin } from '../../src/plugins/training/plugin';
import { problemsOf, useTempDirs, writeText } from './helpers';

const TABLE = 'a CSV file with a header row and numbers in every cell (features first, the target last), relative to the request file';

/** The run options are one shared fragment: every plugin reports them the same way. */
const requests = [
  ['training', new TrainingPlugin(), { datasetPath: 'd.csv', outputDir: 'ckpt' }],
  ['evaluation', new EvaluationPlugin(), { checkpoint: 'c', environments: [{ name: 'a', datasetPath: 'a.csv' }] }],
  ['collection', new CollectionPlugin(), { source: { kind: 'synthetic', rows: 3 }, output: 'out.csv' }],
] as const;

describe.each(requests)('run options of a %s request', (_name, plugin, base) => {
  it('accepts resources, env, secretEnv and timeoutSeconds', () => {
    const r = plugin.parse({ ...base, resources: { gpus: 1, gpuType: 'A100', cpus: 8, memoryGb: 16 }, env: { A_B: '1' }, secretEnv: ['TOKEN'], timeoutSeconds: 60 });
    expect(r.ok).toBe(true);
  });

  it.each([
    [{ resources: { gpus: -1 } }, 'resources.gpus', 'resources.gpus must be at least 0'],
    [{ resources: { cpus: 0 } }, 'resources.cpus', 'resources.cpus must be at least 1'],
    [{ resources: { cpus: 1.5 } }, 'resources.cpus', 'resources.cpus must be a whole number (from 1 to 1024)'],
    [{ resources: { memoryGb: 0 } }, 'resources.memoryGb', 'resources.memoryGb must be greater than 0'],
    [{ resources: { gpuType: '' } }, 'resources.gpuType', 'resources.gpuType is required: a GPU model name such as A100'],
    [{ resources: { ram: 4 } }, 'resources', 'unknown field "ram" in resources; known fields: gpus, gpuType, cpus, memoryGb'],
    [{ env: { 'BAD-NAME': 'x' } }, 'env.BAD-NAME', 'env names must be valid environment variable names ([A-Za-z_][A-Za-z0-9_]*)'],
    [{ env: { ORBIT_RUN_ID: 'x' } }, 'env.ORBIT_RUN_ID', 'env names starting with ORBIT_ are reserved for Orbit; rename the variable'],
    [{ env: { N: 1 } }, 'env.N', 'env values must be strings; quote numbers and booleans in YAML, e.g. "1"'],
    [{ env: ['A=1'] }, 'env', 'env must be a mapping of NAME: "value"'],
    [{ secretEnv: 'TOKEN' }, 'secretEnv', 'secretEnv must be a list of environment variable names'],
    [{ secretEnv: ['1TOKEN'] }, 'secretEnv[0]', 'secretEnv entries must be valid environment variable names ([A-Za-z_][A-Za-z0-9_]*)'],
    [{ secretEnv: ['T', 'T'] }, 'secretEnv', 'secretEnv lists a name twice; list each secret once'],
    [{ timeoutSeconds: 0 }, 'timeoutSeconds', 'timeoutSeconds must be at least 1'],
  ])('rejects %j at %s', (patch, path, message) => {
    expect(problemsOf(plugin.parse({ ...base, ...patch }))).toEqual([{ path, message }]);
  });
});

describe('jobSpecFor', () => {
  it('merges resource overrides over the plugin defaults and maps timeoutSeconds to timeouts.runSeconds', () => {
    const spec = jobSpecFor({ taskType: 't', jobKind: 'k' }, 'j', { env: {}, secretEnv: [], resources: { cpus: 3, gpus: undefined }, timeoutSeconds: 9 }, {
      defaults: { cpus: 1, memoryGb: 2 },
      command: ['true'],
      logFile: 'x.log',
      modules: [],
      inputs: [],
      expectedOutputs: [],
    });
    expect(spec).toMatchObject({ resources: { gpus: 0, cpus: 3, memoryGb: 2 }, timeouts: { runSeconds: 9 }, inputs: [{ path: 'config.json' }] });
    expect(jobSpecFor({ taskType: 't', jobKind: 'k' }, 'j', { env: {}, secretEnv: [] }, { defaults: { cpus: 1, memoryGb: 1 }, command: ['true'], logFile: 'x.log', modules: [], inputs: [], expectedOutputs: [] })).not.toHaveProperty('timeouts');
  });
});

describe('table format checks', () => {
  const tempDir = useTempDirs();

  it('accepts a header and numeric rows, with CRLF, blank lines and exponents', async () => {
    const dir = await tempDir();
    const path = await writeText(dir, 't.csv', '\uFEFFa,b,y\r\n1,2.5,-3e2\r\n\r\n.5,+1,0\r\n');
    expect(await checkTable(path, 'f')).toEqual({ problems: [], table: { columns: ['a', 'b', 'y'], rows: 2 } });
  });

  it.each([
    ['', 'is empty'],
    ['y\n1\n', 'line 1: the header must name at least 2 columns (features, then the target)'],
    ['a,,y\n1,2,3\n', 'line 1: the header must name at least 2 columns (features, then the target)'],
    ['1,2,3\n4,5,6\n', 'line 1 holds numbers, not column names: add a header row'],
    ['a,b,y\n', 'has a header but no data rows'],
    ['a,b,y\n1,2,3\n1,2\n', 'line 3: 2 cells, but the header has 3'],
    ['a,b,y\n1,2,3\n1,two,3\n', 'line 3: cell 2 ("two") is not a number'],
    ['a,b,y\n1,2,NaN\n', 'line 2: cell 3 ("NaN") is not a number'],
    ['a,b,y\n1,2,0x10\n', 'line 2: cell 3 ("0x10") is not a number'],
  ])('rejects %j: %s', async (text, message) => {
    const dir = await tempDir();
    const path = await writeText(dir, 't.csv', text);
    expect((await checkTable(path, 'datasetPath')).problems).toEqual([{ path: 'datasetPath', message: `${path} ${message}; expected ${TABLE}` }]);
  });

  it('rejects a folder and a missing file', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'folder.csv'));
    expect((await checkTable(join(dir, 'folder.csv'), 'f')).problems).toEqual([{ path: 'f', message: `${join(dir, 'folder.csv')} is not a file; expected ${TABLE}` }]);
    expect((await checkTable(join(dir, 'none.csv'), 'f')).problems).toEqual([{ path: 'f', message: `${join(dir, 'none.csv')} does not exist; expected ${TABLE}` }]);
  });

  it('checks only the header when rows need not be numeric', async () => {
    const dir = await tempDir();
    const path = await writeText(dir, 't.csv', 'a,y\nx,1\n');
    expect(await checkTable(path, 'f', { numericRows: false })).toEqual({ problems: [], table: { columns: ['a', 'y'], rows: 0 } });
  });
});
