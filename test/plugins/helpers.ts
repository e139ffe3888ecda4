import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { EXIT_CODE_FILE, RUN_SCRIPT, verifyManifest, type Problem } from '../../src/bundle';
import type { RunOutcome } from '../../src/plugins/types';
import { useTempDirs as useTempDirsIn } from '../helpers/use-temp-dirs';

export const ROOT = resolve(__dirname, '../..');
export const EXAMPLES = join(ROOT, 'examples');
/** The project venv: its python3 has torch. Not optional: a missing torch fails the run tests. */
export const VENV_BIN = join(ROOT, '.venv', 'bin');

/** A fresh temporary folder per call, removed after the test. */
export const useTempDirs = (): (() => Promise<string>) => useTempDirsIn('orbit-plugins-');

/** A request file's plugin fields: the YAML without `task` and `jobId`, as the CLI hands them over. */
export function loadRequest(file: string): { task: string; jobId?: string; raw: Record<string, unknown> } {
  const doc = parseYaml(readFileSync(file, 'utf8')) as Record<string, unknown>;
  const { task, jobId, ...raw } = doc;
  return { task: String(task), jobId: jobId === undefined ? undefined : String(jobId), raw };
}

/** Runs a bundle's core wrapper (scripts/orbit/run.sh) like a host would, with the venv on PATH. */
export async function runBundle(dir: string, env: Record<string, string> = {}): Promise<{ exitCode: number; seconds: number }> {
  const started = Date.now();
  // Like a fresh host: Python may write bytecode caches (the scripts must keep them out of scripts/).
  const hostEnv = { ...process.env };
  delete hostEnv['PYTHONDONTWRITEBYTECODE'];
  const child = spawn('bash', [join(dir, RUN_SCRIPT)], {
    env: { ...hostEnv, PATH: `${VENV_BIN}:${process.env['PATH'] ?? ''}`, ...env },
    stdio: 'ignore',
  });
  await new Promise<void>((done, fail) => {
    child.on('error', fail);
    child.on('exit', () => done());
  });
  const exitCode = Number((await readFile(join(dir, EXIT_CODE_FILE), 'utf8')).trim());
  return { exitCode, seconds: (Date.now() - started) / 1000 };
}

/** The outcome the client would hand summarizeResult after collecting the bundle. */
export async function outcomeOf(dir: string, exitCode: number): Promise<RunOutcome> {
  return { status: exitCode === 0 ? 'succeeded' : 'failed', exitCode, manifest: await verifyManifest(dir) };
}

export async function writeText(dir: string, name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

export async function readJsonFile<T = Record<string, unknown>>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

export async function readJsonLines<T = Record<string, unknown>>(path: string): Promise<T[]> {
  return (await readFile(path, 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as T);
}

/** Problems of a failed parse (fails the test when the parse succeeded). */
export function problemsOf(result: { ok: true } | { ok: false; problems: Problem[] }): Problem[] {
  if (result.ok) throw new Error('expected the request to be rejected, but it parsed');
  return result.problems;
}
