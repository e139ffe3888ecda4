/**
 * Node-side helpers shared by the task plugins: locating their Python scripts, checking request
 * files, assembling a JobSpec and a bundle, and reading artifacts back for summaries.
 */
import { constants, createReadStream, existsSync } from 'node:fs';
import { access, open, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { z } from 'zod';
import { Bundle, parseWith, ValidationError, type JobSpecInput, type Problem, type ProgressSpecInput, type ProvenanceCheckInput } from '../bundle';
import { TABLE_FORMAT, type RunOptions } from './common-schema';
import type { RunOutcome, TaskPlugin } from './types';

/** Where every task's JSON config goes, relative to `inputs/`; scripts read it via `--config`. */
export const CONFIG_INPUT = 'config.json';

/** Absolute path of a file shipped beside the plugins, e.g. pluginFile('training', 'trainer.py'). */
export function pluginFile(...parts: string[]): string {
  return join(__dirname, ...parts);
}

/** The argv that runs a task script from the bundle root with its config. */
export function pythonCommand(script: string): string[] {
  return ['python3', `scripts/${script}`, '--config', `inputs/${CONFIG_INPUT}`];
}

/** Resolves a path from a request against the request file's folder; absolute paths stay as they are. */
export function requestPath(baseDir: string, path: string): string {
  return resolve(baseDir, path);
}

/** Problems (at most one) keeping `abs` from being a readable plain file; `expected` says what belongs there. */
export async function checkReadableFile(abs: string, field: string, expected: string): Promise<Problem[]> {
  try {
    const st = await stat(abs);
    if (!st.isFile()) return [{ path: field, message: `${abs} is not a file; expected ${expected}` }];
    await access(abs, constants.R_OK);
    return [];
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [{ path: field, message: `${abs} does not exist; expected ${expected}` }];
    return [{ path: field, message: `${abs} cannot be read (${code ?? (e as Error).message}); expected ${expected}` }];
  }
}

export interface TableInfo {
  /** Header names, the target last. */
  columns: string[];
  rows: number;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function cells(line: string): string[] {
  return line.split(',').map((c) => c.trim().replace(/^"(.*)"$/, '$1'));
}

/**
 * Checks a file against the table format (see TABLE_FORMAT): readable, a header of at least two
 * names, then rows of numbers with the header's cell count. `numericRows: false` checks the header only.
 * Reports the first problem found, naming the line.
 */
export async function checkTable(
  abs: string,
  field: string,
  options: { numericRows?: boolean } = {},
): Promise<{ problems: Problem[]; table?: TableInfo }> {
  const fileProblems = await checkReadableFile(abs, field, TABLE_FORMAT);
  if (fileProblems.length) return { problems: fileProblems };
  const fail = (message: string) => ({ problems: [{ path: field, message: `${abs} ${message}; expected ${TABLE_FORMAT}` }] });
  const lines = createInterface({ input: createReadStream(abs, { encoding: 'utf8' }), crlfDelay: Infinity });
  let columns: string[] | undefined;
  let rows = 0;
  let lineNo = 0;
  try {
    for await (const raw of lines) {
      lineNo++;
      const line = lineNo === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (!columns) {
        columns = cells(line);
        if (columns.length < 2 || columns.some((c) => c === '')) return fail('line 1: the header must name at least 2 columns (features, then the target)');
        if (columns.every((c) => NUMBER.test(c))) return fail('line 1 holds numbers, not column names: add a header row');
        if (options.numericRows === false) return { problems: [], table: { columns, rows: 0 } };
        continue;
      }
      if (line.trim() === '') continue;
      const row = cells(line);
      if (row.length !== columns.length) return fail(`line ${lineNo}: ${row.length} cells, but the header has ${columns.length}`);
      const bad = row.findIndex((c) => !NUMBER.test(c));
      if (bad >= 0) return fail(`line ${lineNo}: cell ${bad + 1} (${JSON.stringify(row[bad])}) is not a number`);
      rows++;
    }
  } finally {
    lines.close();
  }
  if (!columns) return fail('is empty');
  if (options.numericRows !== false && rows === 0) return fail('has a header but no data rows');
  return { problems: [], table: { columns, rows } };
}

/** What a plugin decides about its job; the rest of the JobSpec comes from the submission and run options. */
export interface JobParts {
  /** Resources when the request does not override them. */
  defaults: { gpus?: number; cpus: number; memoryGb: number };
  command: string[];
  logFile: string;
  inputs: { path: string; description?: string }[];
  expectedOutputs: { path: string; required?: boolean }[];
  /** Folders under artifacts/ whose sub-folders are complete only once they hold the marker file. */
  atomicDirs?: { parent: string; marker: string }[];
  metadata?: Record<string, string | number | boolean>;
  /** The progress series the task writes under artifacts/ (job.json `progress`): what the diagnosis judges and the report charts. */
  progress?: ProgressSpecInput;
  /** Provenance the precheck verifies on the host before the entrypoint starts (job.json `precheck.provenance`). */
  provenance?: ProvenanceCheckInput[];
}

/** The JobSpec of a plugin's job: plugin parts plus the request's resources, env, secrets and timeout. */
export function jobSpecFor(
  plugin: Pick<TaskPlugin, 'taskType' | 'jobKind'>,
  jobId: string,
  run: RunOptions,
  parts: JobParts,
): JobSpecInput {
  const overrides = Object.fromEntries(Object.entries(run.resources ?? {}).filter(([, v]) => v !== undefined));
  return {
    schemaVersion: 'orbit.job.v1',
    jobId,
    jobKind: plugin.jobKind,
    taskType: plugin.taskType,
    createdAt: new Date().toISOString(),
    resources: { gpus: 0, ...parts.defaults, ...overrides },
    env: run.env,
    secretEnv: run.secretEnv,
    inputs: [{ path: CONFIG_INPUT, description: 'task config read by the script' }, ...parts.inputs],
    expectedOutputs: parts.expectedOutputs,
    entrypoint: { command: parts.command, logFile: parts.logFile },
    sync: { intervalSeconds: run.syncIntervalSeconds ?? 30, atomicDirs: parts.atomicDirs ?? [] },
    ...(run.timeoutSeconds !== undefined ? { timeouts: { runSeconds: run.timeoutSeconds } } : {}),
    ...(parts.provenance?.length ? { precheck: { provenance: parts.provenance } } : {}),
    ...(parts.progress ? { progress: parts.progress } : {}),
    metadata: parts.metadata ?? {},
  };
}

/**
 * Creates a bundle running one of the plugins' Python scripts: job.json, the script and the shared
 * scripts/tabular.py, and inputs/config.json. The caller copies its other inputs.
 */
export async function createPythonBundle(dir: string, spec: JobSpecInput, script: { name: string; source: string }, config: unknown): Promise<Bundle> {
  const bundle = await Bundle.create(dir, spec);
  await bundle.writeScript('tabular.py', await readFile(pluginFile('python', 'tabular.py')));
  await bundle.writeScript(script.name, await readFile(script.source), true);
  await bundle.writeInput(CONFIG_INPUT, JSON.stringify(config, null, 2) + '\n');
  return bundle;
}

/** Throws a ValidationError listing `problems`, if any (buildBundle re-checks what validate checked). */
export function assertNoProblems(what: string, problems: Problem[]): void {
  if (problems.length) throw new ValidationError(what, problems);
}

/** Parsed JSON of a file, or undefined when it is missing or not JSON. */
export async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** Parsed lines of a JSON-lines file (bad lines skipped); empty when the file is missing. */
export async function readJsonLines(path: string): Promise<unknown[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return [];
  }
  const out: unknown[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // a line cut short by a crash: skip it
    }
  }
  return out;
}

/** The paths (relative to the bundle) that are there: a summary names only files the run left (a run stopped early has few). */
export function existingPaths(bundle: Bundle, paths: string[]): string[] {
  return paths.filter((p) => existsSync(bundle.path(p)));
}

/** The last `bytes` of a text file (a log's end), or undefined when it cannot be read. */
export async function readTail(path: string, bytes = 64 * 1024): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
    const { size } = await handle.stat();
    const length = Math.min(size, bytes);
    const buf = Buffer.alloc(length);
    await handle.read(buf, 0, length, size - length);
    return buf.toString('utf8');
  } catch {
    return undefined;
  } finally {
    await handle?.close();
  }
}

/** A number field of an untrusted JSON object, or null. */
export function numberField(value: unknown, key: string): number | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = (value as Record<string, unknown>)[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** "" for a succeeded run, else e.g. "failed (exit 2): " to prefix a headline. */
export function outcomePrefix(outcome: RunOutcome): string {
  if (outcome.status === 'succeeded') return '';
  return `${outcome.status}${outcome.exitCode !== null ? ` (exit ${outcome.exitCode})` : ''}: `;
}

/** A number for a headline: 3 significant digits. */
export function fmt(n: number | null): string {
  return n === null ? '?' : Number(n.toPrecision(3)).toString();
}

/** What every plugin shares: its request is parsed by its zod schema, each problem naming its field. */
export abstract class SchemaPlugin<S extends z.ZodType> {
  abstract readonly requestSchema: S;

  parse(raw: unknown) {
    return parseWith(this.requestSchema, raw);
  }
}
