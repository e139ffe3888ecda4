import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Bundle, EXIT_CODE_FILE, RUN_SCRIPT, type JobSpecInput } from '../../src/bundle';
import { useTempDirs as useTempDirsIn } from '../helpers/use-temp-dirs';

export const ROOT = resolve(__dirname, '../..');
/** The project venv: its python3 has torch. */
export const VENV_BIN = join(ROOT, '.venv', 'bin');
export const FIXTURES = join(ROOT, 'test', 'fixtures', 'nvidia-smi');
/** A folder holding only `nvidia-smi`: the fake that replays recorded output (see the script). */
export const FAKE_GPU_BIN = join(ROOT, 'test', 'fixtures', 'nvidia-smi', 'bin');

/** A fresh temporary folder per call, removed after the test. */
export const useTempDirs = (): (() => Promise<string>) => useTempDirsIn('orbit-diagnose-');

export interface BundleParts {
  command: string[];
  /** Files under scripts/ (relative to scripts/). */
  scripts?: Record<string, string>;
  /** Files under inputs/ (relative to inputs/). */
  inputs?: Record<string, string>;
  precheck?: JobSpecInput['precheck'];
  /** job.json `progress`: the series the diagnosis judges and the report charts. */
  progress?: JobSpecInput['progress'];
  env?: Record<string, string>;
  logFile?: string;
}

/** The training plugin's declaration: checkpoints/step-N/logging.jsonl, loss by step. */
export const LOSS_SERIES = { file: 'logging.jsonl', step: 'step', metrics: [{ key: 'loss', goal: 'min' as const }] };

/** Builds and freezes a real bundle through Bundle.create, like a plugin would. */
export async function makeBundle(dir: string, parts: BundleParts): Promise<Bundle> {
  const bundle = await Bundle.create(dir, {
    schemaVersion: 'orbit.job.v1',
    jobId: 'diag-job',
    jobKind: 'script',
    taskType: 'script',
    createdAt: '2026-11-25T10:00:00.000Z',
    resources: { gpus: 0, cpus: 1, memoryGb: 1 },
    env: parts.env ?? {},
    entrypoint: { command: parts.command, logFile: parts.logFile ?? 'task.log' },
    ...(parts.precheck ? { precheck: parts.precheck } : {}),
    ...(parts.progress ? { progress: parts.progress } : {}),
  });
  for (const [rel, text] of Object.entries(parts.scripts ?? {})) await bundle.writeScript(rel, text, true);
  for (const [rel, text] of Object.entries(parts.inputs ?? {})) await bundle.writeInput(rel, text);
  await bundle.freeze();
  return bundle;
}

/** Runs `bash scripts/orbit/run.sh` like a host would; the venv (and `extraPath`, first) on PATH. */
export async function runWrapper(
  dir: string,
  options: { env?: Record<string, string>; extraPath?: string[]; onStart?: (pid: number) => void } = {},
): Promise<{ exitCode: number; wrapperPid: number }> {
  const path = [...(options.extraPath ?? []), VENV_BIN, process.env['PATH'] ?? ''].join(':');
  const child = spawn('bash', [join(dir, RUN_SCRIPT)], { env: { ...process.env, PATH: path, ...options.env }, stdio: 'ignore' });
  options.onStart?.(child.pid!);
  await new Promise<void>((done, fail) => {
    child.on('error', fail);
    child.on('exit', () => done());
  });
  const exitCode = Number((await readFile(join(dir, EXIT_CODE_FILE), 'utf8')).trim());
  return { exitCode, wrapperPid: child.pid! };
}

/** Whether a process is alive (a zombie counts as gone). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export async function waitFor(ok: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await ok()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return ok();
}

export async function readLines(path: string): Promise<string[]> {
  return (await readFile(path, 'utf8')).split('\n').filter((l) => l.trim());
}
