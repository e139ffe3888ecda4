/** Reads a request file (YAML or JSON): `task: <type>`, optional `jobId`, then the plugin's own fields. */
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { formatProblem, type Problem } from '../bundle';
import type { TaskRegistry } from '../plugins/registry';
import type { TaskPlugin } from '../plugins/types';
import { CliError } from './errors';

export interface LoadedRequest {
  file: string;
  baseDir: string;
  plugin: TaskPlugin;
  request: unknown;
  jobId: string;
}

const JOB_ID = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Lists problems as `file: field: message` lines. */
export function problemsText(file: string, problems: Problem[]): string {
  return problems.map((p) => `${file}: ${formatProblem(p)}`).join('\n');
}

/** A job id from a file name: `examples/train.yaml` -> `train`. */
export function jobIdFromFile(file: string): string {
  const slug = basename(file, extname(file))
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 63);
  return slug || 'job';
}

/** Parses, validates and resolves the plugin of a request file; throws CliError listing every problem. */
export async function loadRequest(file: string, registry: TaskRegistry, jobIdOverride?: string): Promise<LoadedRequest> {
  const abs = resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (e) {
    throw new CliError(`${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) {
    throw new CliError(`${file}: not valid YAML:\n${doc.errors.map((e) => `  ${e.message}`).join('\n')}`);
  }
  const raw: unknown = doc.toJS();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new CliError(`${file}: must be a mapping with a "task" field (one of: ${registry.taskTypes().join(', ')})`);
  }
  const { task, jobId, ...body } = raw as Record<string, unknown>;
  if (typeof task !== 'string' || !task) {
    throw new CliError(`${file}: task: required; set it to one of: ${registry.taskTypes().join(', ')}`);
  }
  if (!registry.has(task)) {
    throw new CliError(`${file}: task: unknown task type "${task}"; known task types: ${registry.taskTypes().join(', ')}`);
  }
  const id = jobIdOverride ?? (jobId === undefined ? jobIdFromFile(file) : jobId);
  if (typeof id !== 'string' || !JOB_ID.test(id)) {
    throw new CliError(`${file}: jobId: must be 1-63 chars of a-z, 0-9, '.', '_', '-', starting with a letter or digit (got ${JSON.stringify(id)})`);
  }
  const plugin = registry.get(task);
  const parsed = plugin.parse(body);
  if (!parsed.ok) throw new CliError(`${file} is not a valid ${task} request:\n${problemsText(file, parsed.problems)}`);
  const baseDir = dirname(abs);
  const problems = await plugin.validate(parsed.value, baseDir);
  if (problems.length) throw new CliError(`${file} is not a valid ${task} request:\n${problemsText(file, problems)}`);
  return { file: abs, baseDir, plugin, request: parsed.value, jobId: id };
}
