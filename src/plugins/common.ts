/**
 * Node-side helpers shared by the task plugins: locating their Python scripts, checking request
 * files, assembling a JobSpec and a bundle, and reading artifacts back for summaries.
 */
import { existsSync } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { z } from 'zod';
import {
  Bundle,
  isSafeRelativePath,
  parseWith,
  ValidationError,
  type HealthRuleInput,
  type JobSpecInput,
  type PrecheckModule,
  type Problem,
  type ProgressSpecInput,
  type ProvenanceCheckInput,
} from '../bundle';
import { TASK_CONFIG_INPUT } from '../common/layout';
import { FORK_MANIFEST, type RequestFork, type RunOptions } from './common-schema';
import { healthFor } from './health-rules';
import type { RunOutcome, TaskPlugin } from './types';

export { baseHealthRules, healthFor } from './health-rules';
export { checkReadableFile, checkTable, type TableInfo } from './table';

/** Where every task's JSON config goes, relative to `inputs/`; scripts read it via `--config`. */
export const CONFIG_INPUT = TASK_CONFIG_INPUT;

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
  /**
   * The Python modules the task's scripts cannot run without (job.json `precheck.python.modules`),
   * imported on the host before the entrypoint starts. Required, so that every plugin says it: `[]`
   * when its scripts need nothing beyond the standard library. A request adds to them (`precheck`).
   */
  modules: PrecheckModule[];
  /** Provenance the precheck verifies on the host before the entrypoint starts (job.json `precheck.provenance`). */
  provenance?: ProvenanceCheckInput[];
  /** The task's health rules (job.json `health`, docs/health.md), before the request's changes. */
  health?: HealthRuleInput[];
}

/** Where staged forks go, relative to `inputs/`: one folder per fork, named by its module. */
export const FORKS_INPUT_DIR = 'forks';

/** A fork's folder in the bundle, relative to the bundle: it is on the job's PYTHONPATH (relative to the bundle root, run.sh's working folder). */
export function forkBundleDir(fork: Pick<RequestFork, 'module'>): string {
  return `inputs/${FORKS_INPUT_DIR}/${fork.module}`;
}

/**
 * The job's precheck: the plugin's modules with the request's merged in (the request's entry wins
 * on the same name, new ones follow), each fork's module (when not listed) and a `tree-manifest`
 * check per fork, after the plugin's provenance.
 */
export function precheckFor(parts: Pick<JobParts, 'modules' | 'provenance'>, run: Pick<RunOptions, 'precheck'>): NonNullable<JobSpecInput['precheck']> {
  const requested = run.precheck?.modules ?? [];
  const forks = run.precheck?.forks ?? [];
  const byName = new Map(requested.map((m) => [m.name, m]));
  const modules: PrecheckModule[] = parts.modules.map((m) => byName.get(m.name) ?? m);
  for (const m of requested) if (!parts.modules.some((p) => p.name === m.name)) modules.push(m);
  // The fork's module line records the version the job imports; the fork's own check proves where it came from.
  for (const f of forks) if (!modules.some((m) => m.name === f.module)) modules.push({ name: f.module });
  const forkChecks = forks.map(
    (f): ProvenanceCheckInput => ({ kind: 'tree-manifest', label: `fork ${f.module}`, noun: 'fork', manifest: `${forkBundleDir(f)}/${FORK_MANIFEST}`, module: f.module }),
  );
  return { python: { modules: modules.map((m) => ({ name: m.name, ...(m.minVersion !== undefined ? { minVersion: m.minVersion } : {}) })) }, provenance: [...(parts.provenance ?? []), ...forkChecks] };
}

/** The job's env: the request's, with every fork's folder first on PYTHONPATH (before a PYTHONPATH the request sets). */
function envWithForks(run: Pick<RunOptions, 'env' | 'precheck'>): Record<string, string> {
  const forks = run.precheck?.forks ?? [];
  if (!forks.length) return run.env;
  const own = run.env['PYTHONPATH'];
  return { ...run.env, PYTHONPATH: [...forks.map(forkBundleDir), ...(own ? [own] : [])].join(':') };
}

/** A FORK_MANIFEST.json as read: the listed files (relative to the fork's folder) and their sha256. */
interface ForkManifest {
  repository?: string;
  commit?: string;
  files: { path: string; sha256: string }[];
}

const SHA256 = /^[0-9a-fA-F]{64}$/;
const FORK_MANIFEST_FORMAT = `{"repository": "...", "commit": "...", "files": {"mylib/__init__.py": "<sha256>", ...}}`;

/** Reads a fork folder's FORK_MANIFEST.json; a problem (at `field`) says what is wrong and how to fix it. */
async function readForkManifest(folder: string, field: string): Promise<{ problems: Problem[]; manifest?: ForkManifest }> {
  const fail = (message: string) => ({ problems: [{ path: field, message }] });
  const isDir = await stat(folder).then((s) => s.isDirectory(), () => undefined);
  if (isDir === undefined) return fail(`${folder} does not exist; expected the folder of a staged fork holding ${FORK_MANIFEST} (relative to the request file)`);
  if (!isDir) return fail(`${folder} is not a folder; expected the folder of a staged fork holding ${FORK_MANIFEST}, not a file in it`);
  const file = join(folder, FORK_MANIFEST);
  if (!existsSync(file)) {
    return fail(`${folder} holds no ${FORK_MANIFEST}; add one at the fork's top listing every file of the fork with its sha256: ${FORK_MANIFEST_FORMAT}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    return fail(`${file} cannot be read as JSON (${(e as Error).message}); expected ${FORK_MANIFEST_FORMAT}`);
  }
  const doc = (typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? raw : {}) as Record<string, unknown>;
  const listed = doc['files'];
  const pairs: [unknown, unknown][] = Array.isArray(listed)
    ? listed.map((e) => [(e as { path?: unknown } | null)?.path, (e as { sha256?: unknown } | null)?.sha256])
    : typeof listed === 'object' && listed !== null
      ? Object.entries(listed)
      : [];
  if (!pairs.length) return fail(`${file} lists no files; "files" must map each file of the fork (relative to ${folder}) to its sha256: ${FORK_MANIFEST_FORMAT}`);
  const bad = pairs.find(([path, digest]) => typeof path !== 'string' || !isSafeRelativePath(path) || path === FORK_MANIFEST || typeof digest !== 'string' || !SHA256.test(digest));
  if (bad) {
    return fail(`${file} lists ${JSON.stringify(bad[0])} with ${JSON.stringify(bad[1])}; each entry must be a relative path inside the fork (no '..', not ${FORK_MANIFEST}) with a 64-hex sha256`);
  }
  const files = pairs.map(([path, sha256]) => ({ path: path as string, sha256: sha256 as string }));
  return {
    problems: [],
    manifest: { ...(typeof doc['repository'] === 'string' ? { repository: doc['repository'] } : {}), ...(typeof doc['commit'] === 'string' ? { commit: doc['commit'] } : {}), files },
  };
}

/**
 * Problems of a request's run options that need the file system: each staged fork's folder and its
 * FORK_MANIFEST.json (readable, listing files that are there, one of them the fork's module). The
 * digests are checked on the host, by the precheck: the copy that runs is the one that counts.
 */
export async function runOptionProblems(run: Pick<RunOptions, 'precheck'>, baseDir: string): Promise<Problem[]> {
  const problems: Problem[] = [];
  for (const [i, fork] of (run.precheck?.forks ?? []).entries()) {
    const field = `precheck.forks[${i}].path`;
    const folder = requestPath(baseDir, fork.path);
    const { problems: manifestProblems, manifest } = await readForkManifest(folder, field);
    problems.push(...manifestProblems);
    if (!manifest) continue;
    const missing = [];
    for (const f of manifest.files) {
      const isFile = await stat(join(folder, f.path)).then((s) => s.isFile(), () => false);
      if (!isFile) missing.push(f.path);
    }
    if (missing.length) {
      const shown = missing.slice(0, 5).join(', ') + (missing.length > 5 ? `, ... ${missing.length - 5} more` : '');
      problems.push({ path: field, message: `${FORK_MANIFEST} in ${folder} lists files that are not there (${shown}); regenerate it from the fork as it is` });
      continue;
    }
    const top = fork.module.replaceAll('.', '/');
    if (!manifest.files.some((f) => f.path === `${top}.py` || f.path.startsWith(`${top}/`))) {
      problems.push({
        path: `precheck.forks[${i}].module`,
        message: `${FORK_MANIFEST} in ${folder} lists no file of module ${fork.module} (${top}/__init__.py or ${top}.py); the folder goes on PYTHONPATH, so the module must be at its top`,
      });
    }
  }
  return problems;
}

/** Copies each staged fork into the bundle (inputs/forks/<module>/): its FORK_MANIFEST.json and every file it lists, nothing else. */
export async function stageForks(bundle: Bundle, run: Pick<RunOptions, 'precheck'>, baseDir: string): Promise<void> {
  for (const [i, fork] of (run.precheck?.forks ?? []).entries()) {
    const folder = requestPath(baseDir, fork.path);
    const { problems, manifest } = await readForkManifest(folder, `precheck.forks[${i}].path`);
    assertNoProblems('request', problems);
    const rel = forkBundleDir(fork).slice('inputs/'.length);
    await bundle.copyInput(join(folder, FORK_MANIFEST), `${rel}/${FORK_MANIFEST}`);
    for (const f of manifest!.files) await bundle.copyInput(join(folder, f.path), `${rel}/${f.path}`);
  }
}

/** Creates a bundle from a plugin's JobSpec and stages the request's forks into it; the caller adds its scripts and inputs. */
export async function createTaskBundle(dir: string, spec: JobSpecInput, source: { run: Pick<RunOptions, 'precheck'>; baseDir: string }): Promise<Bundle> {
  const bundle = await Bundle.create(dir, spec);
  await stageForks(bundle, source.run, source.baseDir);
  return bundle;
}

/** The JobSpec of a plugin's job: plugin parts plus the request's resources, env, secrets, timeout and precheck. */
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
    env: envWithForks(run),
    secretEnv: run.secretEnv,
    inputs: [
      { path: CONFIG_INPUT, description: 'task config read by the script' },
      ...parts.inputs,
      ...(run.precheck?.forks ?? []).map((f) => ({
        path: `${forkBundleDir(f).slice('inputs/'.length)}/${FORK_MANIFEST}`,
        description: `staged fork of ${f.module}: copy of ${f.path} (the files its ${FORK_MANIFEST} lists)`,
      })),
    ],
    expectedOutputs: parts.expectedOutputs,
    entrypoint: { command: parts.command, logFile: parts.logFile },
    sync: { intervalSeconds: run.syncIntervalSeconds ?? 30, atomicDirs: parts.atomicDirs ?? [] },
    ...(run.timeoutSeconds !== undefined ? { timeouts: { runSeconds: run.timeoutSeconds } } : {}),
    precheck: precheckFor(parts, run),
    ...(parts.progress ? { progress: parts.progress } : {}),
    ...(healthFor(parts.health, run) ? { health: healthFor(parts.health, run) } : {}),
    metadata: parts.metadata ?? {},
  };
}

/**
 * Creates a bundle running one of the plugins' Python scripts: job.json, the request's staged forks,
 * the script and the shared scripts/tabular.py, and inputs/config.json. The caller copies its other inputs.
 */
export async function createPythonBundle(
  dir: string,
  spec: JobSpecInput,
  script: { name: string; source: string },
  config: unknown,
  source: { run: Pick<RunOptions, 'precheck'>; baseDir: string },
): Promise<Bundle> {
  const bundle = await createTaskBundle(dir, spec, source);
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
