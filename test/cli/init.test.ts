import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CliError } from '../../src/cli/cli-error';
import { INIT_FILES, TEMPLATE_DIR, trainingTable } from '../../src/cli/init';
import { main } from '../../src/cli/main';
import { loadRequest } from '../../src/cli/request';
import { buildDefaultTaskRegistry } from '../../src/plugins/registry';
import { orbit } from '../helpers/orbit-cli';
import { useTempDirs } from '../helpers/use-temp-dirs';

const tempDir = useTempDirs('orbit-init-');
const exec = promisify(execFile);

async function run(argv: string[]): Promise<{ code: number | Error; out: string[]; note: string[] }> {
  const out: string[] = [];
  const note: string[] = [];
  const code = await main(argv, (s) => out.push(s), (s) => note.push(s)).catch((e: Error) => e);
  return { code, out, note };
}

/** Every file under `dir` with its bytes, for "nothing changed". */
function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) files[join(e.parentPath, e.name).slice(dir.length + 1)] = readFileSync(join(e.parentPath, e.name), 'utf8');
  }
  return files;
}

/** The process's environment without Orbit's variables (a run by hand), plus `extra`. */
function envWith(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ORBIT_') && k !== 'CUDA_VISIBLE_DEVICES'));
  return { ...env, ...extra };
}

/** The contract's variables for a job whose results go to `output`. */
function contract(output: string, project: string, resumeFrom = ''): Record<string, string> {
  return {
    ORBIT_OUTPUT_DIR: output,
    ORBIT_CHECKPOINT_DIR: join(output, 'checkpoints'),
    ORBIT_CHECKPOINT_MARKER: 'COMPLETE',
    ORBIT_METRICS_FILE: join(output, 'metrics.jsonl'),
    ORBIT_RESUME_FROM: resumeFrom,
    ORBIT_RUN_ID: 'run-test',
    ORBIT_WORKDIR: project,
    ORBIT_GPUS: '',
    ORBIT_DATA_DIR: join(project, 'data'),
    ORBIT_DATASET_TRAIN: join(project, 'data', 'train.csv'),
  };
}

async function train(project: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const r = await exec('python3', ['train.py', ...args], { cwd: project, env, timeout: 60_000 });
  return r.stdout;
}

type Metric = { step: number; loss: number };
const metrics = (file: string): Metric[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Metric);

async function initProject(): Promise<string> {
  const project = join(await tempDir(), 'proj');
  const r = await run(['init', project]);
  expect(r.code).toBe(0);
  return project;
}

describe('orbit init', () => {
  it('writes the starter project into a folder it makes, and says what to run next', async () => {
    const project = join(await tempDir(), 'a', 'proj');
    const r = await run(['init', project]);
    expect(r.code).toBe(0);
    expect(r.out).toEqual(INIT_FILES.map((f) => `wrote ${join(project, f)}`));
    expect(r.note).toEqual([expect.stringContaining(`orbit submit ${join(project, 'orbit.yaml')} --follow`)]);
    expect(Object.keys(snapshot(project)).sort()).toEqual(['.gitignore', 'README.md', 'data/train.csv', 'orbit.yaml', 'train.py']);
    expect(readFileSync(join(project, 'train.py'), 'utf8')).toBe(readFileSync(join(TEMPLATE_DIR, 'train.py'), 'utf8'));
    expect(statSync(join(project, 'train.py')).mode & 0o100).toBeTruthy();
    expect(readFileSync(join(project, '.gitignore'), 'utf8').split('\n')).toEqual(expect.arrayContaining(['out/', '__pycache__/', '.venv/']));

    const request = parseYaml(readFileSync(join(project, 'orbit.yaml'), 'utf8')) as Record<string, unknown>;
    expect(request).toEqual({
      task: 'training',
      jobId: 'proj',
      workdir: '.',
      run: 'python3 train.py --steps 200',
      datasets: { train: 'data/train.csv' },
      outputDir: 'out',
      metrics: ['loss'],
      resources: { cpus: 1 },
      timeoutSeconds: 600,
    });

    const table = readFileSync(join(project, 'data', 'train.csv'), 'utf8');
    expect(table).toBe(trainingTable()); // the same bytes every time
    expect(table.trimEnd().split('\n')).toHaveLength(201);
    expect(table.split('\n')[0]).toBe('x1,x2,x3,y');
  });

  it('its request is one the training plugin takes as is: parsed, validated, built into a bundle of the project', async () => {
    const project = join(await tempDir(), 'My Project');
    expect((await run(['init', project])).code).toBe(0);
    const loaded = await loadRequest(join(project, 'orbit.yaml'), await buildDefaultTaskRegistry());
    expect(loaded.jobId).toBe('my-project');
    const bundle = await loaded.plugin.buildBundle(join(project, '..', 'bundle'), { request: loaded.request, jobId: loaded.jobId, baseDir: loaded.baseDir });
    expect(bundle.spec.metadata['mode']).toBe('code');
    expect(existsSync(bundle.path('inputs/workdir/train.py'))).toBe(true);
    expect(existsSync(bundle.path('inputs/datasets/train/train.csv'))).toBe(true);
  });

  it('writes into the current folder by default', async () => {
    const dir = await tempDir();
    const cwd = process.cwd();
    try {
      process.chdir(dir);
      const r = await run(['init']);
      expect(r.code).toBe(0);
      expect(r.out[0]).toBe('wrote orbit.yaml');
      expect(r.note[0]).toContain('orbit submit orbit.yaml --follow');
    } finally {
      process.chdir(cwd);
    }
    expect(existsSync(join(dir, 'orbit.yaml'))).toBe(true);
  });

  it('refuses to overwrite, naming the file and --force, exit 2, writing nothing; --force overwrites', async () => {
    const project = await initProject();
    await writeFile(join(project, 'train.py'), '# mine\n');
    await rm(join(project, 'README.md'));
    const before = snapshot(project);

    const r = await run(['init', project]);
    expect(r.code).toBeInstanceOf(CliError);
    expect((r.code as CliError).exitCode).toBe(2);
    expect((r.code as CliError).message).toBe(`${join(project, 'orbit.yaml')} exists; use --force to overwrite it`);
    expect(snapshot(project)).toEqual(before); // README.md not written back, train.py kept

    // As a user sees it: one line on stderr, exit 2.
    const cli = await orbit(['init', project], envWith({ ORBIT_HOME: join(project, '..', 'home') }));
    expect(cli.code).toBe(2);
    expect(cli.stderr.trim()).toBe(`orbit: ${join(project, 'orbit.yaml')} exists; use --force to overwrite it`);
    expect(snapshot(project)).toEqual(before);

    const forced = await run(['init', project, '--force']);
    expect(forced.code).toBe(0);
    expect(readFileSync(join(project, 'train.py'), 'utf8')).toBe(readFileSync(join(TEMPLATE_DIR, 'train.py'), 'utf8'));
    expect(existsSync(join(project, 'README.md'))).toBe(true);
  });

  it('refuses a DIR that is a file', async () => {
    const file = join(await tempDir(), 'f');
    await writeFile(file, 'x');
    const r = await run(['init', file]);
    expect((r.code as CliError).exitCode).toBe(2);
    expect((r.code as CliError).message).toBe(`${file} exists and is not a folder`);
  });
});

describe("the starter train.py, run for real", () => {
  it('writes a metrics record per step with a falling loss, and complete checkpoints, marker last', async () => {
    const project = await initProject();
    const output = join(await tempDir(), 'artifacts', 'out');
    await train(project, [], envWith(contract(output, project)));

    const records = metrics(join(output, 'metrics.jsonl'));
    expect(records.map((r) => r.step)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    const mean = (xs: Metric[]) => xs.reduce((s, r) => s + r.loss, 0) / xs.length;
    expect(mean(records.slice(-20))).toBeLessThan(mean(records.slice(0, 20)) / 10);
    expect(records.at(-1)!.loss).toBeLessThan(0.05); // noise sd 0.1: the floor is about 0.01

    const checkpoints = join(output, 'checkpoints');
    expect(readdirSync(checkpoints).sort()).toEqual(['step-100', 'step-150', 'step-200', 'step-50']); // no temporary folder left
    for (const name of readdirSync(checkpoints)) {
      const folder = join(checkpoints, name);
      const step = Number(name.slice('step-'.length));
      expect(readdirSync(folder).sort()).toEqual(['COMPLETE', 'metrics.jsonl', 'weights.json']);
      const marker = statSync(join(folder, 'COMPLETE')).mtimeMs;
      for (const f of ['metrics.jsonl', 'weights.json']) expect(statSync(join(folder, f)).mtimeMs).toBeLessThanOrEqual(marker);
      expect(metrics(join(folder, 'metrics.jsonl'))).toEqual(records.slice(0, step));
      expect((JSON.parse(readFileSync(join(folder, 'weights.json'), 'utf8')) as { step: number }).step).toBe(step);
    }
    const model = JSON.parse(readFileSync(join(output, 'model.json'), 'utf8')) as { w: number[]; b: number; loss: number };
    expect(model.loss).toBe(records.at(-1)!.loss);
    // It found the line: y = 2*x1 - 3*x2 + 0.5*x3 + 1.
    [2, -3, 0.5].forEach((w, i) => expect(model.w[i]).toBeCloseTo(w, 1));
    expect(model.b).toBeCloseTo(1, 1);
  });

  it('resumed from a checkpoint (ORBIT_RESUME_FROM), ends as an uninterrupted run does', async () => {
    const project = await initProject();
    const root = await tempDir();
    const whole = join(root, 'whole');
    await train(project, [], envWith(contract(whole, project)));

    // The first launch gets to step 120; its host is lost; the relaunch, on a fresh output folder,
    // continues from the last complete checkpoint it was given.
    const first = join(root, 'first');
    await train(project, ['--steps', '120'], envWith(contract(first, project)));
    const second = join(root, 'second');
    const log = await train(project, [], envWith(contract(second, project, join(first, 'checkpoints', 'step-100'))));
    expect(log).toContain('resuming from');

    expect(readFileSync(join(second, 'metrics.jsonl'), 'utf8')).toBe(readFileSync(join(whole, 'metrics.jsonl'), 'utf8'));
    expect(readFileSync(join(second, 'model.json'), 'utf8')).toBe(readFileSync(join(whole, 'model.json'), 'utf8'));
  });

  it('on SIGTERM finishes its step, saves a checkpoint and exits 143; resuming from it ends the same', async () => {
    const project = await initProject();
    const root = await tempDir();
    const stopped = join(root, 'stopped');
    const child = spawn('python3', ['train.py', '--steps', '1000000', '--checkpoint-every', '1000000'], { cwd: project, env: envWith(contract(stopped, project)) });
    let stdout = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      // Once: a second TERM that lands while Python shuts down (its handlers reset) would kill it.
      if (/step 300\//.test(stdout) && child.signalCode === null && !child.killed) child.kill('SIGTERM');
    });
    const code = await new Promise<number | null>((done) => child.on('exit', (c) => done(c)));
    expect(code).toBe(143);
    const saved = readdirSync(join(stopped, 'checkpoints'));
    expect(saved).toHaveLength(1);
    const step = Number(saved[0]!.replace('step-', ''));
    expect(step).toBeGreaterThanOrEqual(300);
    expect(existsSync(join(stopped, 'checkpoints', saved[0]!, 'COMPLETE'))).toBe(true);
    expect(metrics(join(stopped, 'metrics.jsonl')).map((r) => r.step)).toEqual(Array.from({ length: step }, (_, i) => i + 1));

    const total = String(step + 40);
    const resumed = join(root, 'resumed');
    await train(project, ['--steps', total], envWith(contract(resumed, project, join(stopped, 'checkpoints', saved[0]!))));
    const whole = join(root, 'whole');
    await train(project, ['--steps', total], envWith(contract(whole, project)));
    expect(readFileSync(join(resumed, 'metrics.jsonl'), 'utf8')).toBe(readFileSync(join(whole, 'metrics.jsonl'), 'utf8'));
    expect(readFileSync(join(resumed, 'model.json'), 'utf8')).toBe(readFileSync(join(whole, 'model.json'), 'utf8'));
  });

  it('refuses to resume from a folder without the marker', async () => {
    const project = await initProject();
    const root = await tempDir();
    await train(project, ['--steps', '50'], envWith(contract(join(root, 'a'), project)));
    const partial = join(root, 'a', 'checkpoints', 'step-50');
    await rm(join(partial, 'COMPLETE'));
    const r = await train(project, [], envWith(contract(join(root, 'b'), project, partial))).catch((e: { code: number; stderr: string }) => e);
    expect(r).toMatchObject({ code: 1, stderr: expect.stringContaining('is not a complete checkpoint') });
  });

  it('run by hand, with no Orbit variables, writes out/ in the project', async () => {
    const project = await initProject();
    const copy = join(await tempDir(), 'copy');
    await cp(project, copy, { recursive: true });
    const log = await train(copy, ['--steps', '30', '--checkpoint-every', '10'], envWith());
    expect(log).toContain('step 30/30');
    expect(metrics(join(copy, 'out', 'metrics.jsonl'))).toHaveLength(30);
    expect(readdirSync(join(copy, 'out', 'checkpoints')).sort()).toEqual(['step-10', 'step-20', 'step-30']);
    expect(existsSync(join(copy, 'out', 'model.json'))).toBe(true);
    expect(await readFile(join(copy, 'out', 'checkpoints', 'step-30', 'COMPLETE'), 'utf8')).toBe('step 30\n');
  });
});
