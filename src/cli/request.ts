/** Reads a request file (YAML or JSON): `task: <type>`, optional `jobId`, then the plugin's own fields. */
import { basename, dirname, extname, resolve } from 'node:path';
import { formatProblem, SLUG_PATTERN, type Problem } from '../bundle';
import type { TaskRegistry } from '../plugins/registry';
import type { TaskPlugin } from '../plugins/types';
import { parseYaml, readYamlText, YAML_LIMITS, YamlInputError, yamlRefusal } from '../yaml-input';
import { CliError } from './errors';

export interface LoadedRequest {
  file: string;
  baseDir: string;
  plugin: TaskPlugin;
  request: unknown;
  jobId: string;
}

const JOB_ID = SLUG_PATTERN;

/** Most problems listed for one request; the rest are counted ("and N more problems"). */
export const MAX_PROBLEMS_LISTED = 20;
/** Longest problem line printed; a longer one (e.g. thousands of unknown fields) keeps its start and its end. */
export const MAX_PROBLEM_CHARS = 600;

/** Shortens a long message around its middle, at list separators, keeping what it starts and ends with. */
export function clipMessage(message: string, max = MAX_PROBLEM_CHARS): string {
  if (message.length <= max) return message;
  const keep = Math.floor(max / 2);
  const headEnd = message.lastIndexOf(', ', keep);
  const tailStart = message.indexOf(', ', message.length - keep);
  const head = message.slice(0, headEnd > 0 ? headEnd : keep);
  const tail = message.slice(tailStart > 0 ? tailStart + 2 : message.length - keep);
  const items = message.slice(head.length, message.length - tail.length).split(', ').length - 2;
  return `${head}, ... ${items > 0 ? `${items} more` : `${message.length - head.length - tail.length} characters cut`} ..., ${tail}`;
}

/** Lists problems as `file: field: message` lines, at most MAX_PROBLEMS_LISTED of them. */
export function problemsText(file: string, problems: Problem[]): string {
  const lines = problems.slice(0, MAX_PROBLEMS_LISTED).map((p) => `${file}: ${clipMessage(formatProblem(p))}`);
  const more = problems.length - MAX_PROBLEMS_LISTED;
  if (more > 0) lines.push(`${file}: ... and ${more} more problem${more === 1 ? '' : 's'}`);
  return lines.join('\n');
}

/**
 * Reads and parses a request file within the YAML limits (1 MiB, 100 aliases: src/yaml-input.ts);
 * a CliError in one line naming the file otherwise.
 */
export async function readRequestFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readYamlText(resolve(file), YAML_LIMITS);
  } catch (e) {
    if (e instanceof YamlInputError) throw new CliError(`${file}: ${yamlRefusal(e)}`);
    throw new CliError(`${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return parseYaml(text, file, YAML_LIMITS);
  } catch (e) {
    if (e instanceof YamlInputError) throw new CliError(`${file}: ${yamlRefusal(e)}`);
    throw e;
  }
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
  const raw = await readRequestFile(file);
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
