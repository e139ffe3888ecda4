/**
 * Reads a sweep file and checks all of it before anything is built: the file's own fields, the
 * schedule (cron, time zone, overlap, catch-up window), the matrix, and every cell's request through
 * its task plugin (parse, then validate). Problems name their field; those shared by every cell are
 * reported once, against the base.
 */
import { dirname, resolve } from 'node:path';
import { parseWith, type Problem } from '../bundle';
import type { TaskRegistry } from '../plugins/registry';
import type { TaskPlugin } from '../plugins/types';
import { expandCells, parseMatrix } from './matrix';
import { SWEEP_NAME, SWEEP_NAME_RULE, sweepFileSchema, type SweepSchedule } from './schema';
import { parseYaml, readYamlText, YamlInputError, yamlRefusal } from '../yaml-input';

/** Thrown when a sweep file is unreadable or invalid; carries every problem, each naming its field. */
export class SweepFileError extends Error {
  constructor(
    readonly file: string,
    readonly problems: Problem[],
    message = `${file} is not a valid sweep:\n${problems.map((p) => `${file}: ${p.path ? `${p.path}: ` : ''}${p.message}`).join('\n')}`,
  ) {
    super(message);
    this.name = 'SweepFileError';
  }
}

export interface LoadedCell {
  name: string;
  axes: Record<string, string>;
  plugin: TaskPlugin;
  /** The parsed, validated request. */
  request: unknown;
  jobId: string;
}

export interface LoadedSweep {
  file: string;
  /** Relative paths in requests resolve against the sweep file's folder. */
  baseDir: string;
  name: string;
  description?: string;
  host: string;
  maxConcurrent: number;
  pollIntervalMs: number;
  taskType: string;
  axes: { name: string; values: string[] }[];
  schedule: SweepSchedule;
  cells: LoadedCell[];
}

/** `examples/nightly.yaml` -> `nightly`. */
export function sweepNameFromFile(file: string): string {
  const base = file.split('/').pop()!.replace(/\.[^.]*$/, '');
  return base
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 40)
    .replace(/-+$/, '');
}

export async function loadSweep(file: string, registry: TaskRegistry, overrides: { name?: string; host?: string } = {}): Promise<LoadedSweep> {
  const abs = resolve(file);
  let raw: unknown;
  try {
    raw = parseYaml(await readYamlText(abs), file);
  } catch (e) {
    if (e instanceof YamlInputError) throw new SweepFileError(file, [{ path: '', message: yamlRefusal(e) }], `${file}: ${yamlRefusal(e)}`);
    throw new SweepFileError(file, [{ path: '', message: `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` }]);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new SweepFileError(file, [{ path: '', message: 'must be a mapping with base, matrix and schedule' }]);
  }
  const parsed = parseWith(sweepFileSchema, raw);
  const problems: Problem[] = parsed.ok ? [] : [...parsed.problems];
  const rawObj = raw as Record<string, unknown>;
  const { axes, problems: matrixProblems } =
    rawObj.matrix && typeof rawObj.matrix === 'object' && !Array.isArray(rawObj.matrix) ? parseMatrix(rawObj.matrix as Record<string, unknown>) : { axes: [], problems: [] };
  problems.push(...matrixProblems);

  const name = overrides.name ?? (parsed.ok ? parsed.value.name : undefined) ?? sweepNameFromFile(abs);
  if (!SWEEP_NAME.test(name) && (overrides.name !== undefined || rawObj.name === undefined)) {
    const from = overrides.name !== undefined ? 'given with --name' : 'taken from the file name; set name: in the file';
    problems.push({ path: 'name', message: `"${name}" (${from}) must be ${SWEEP_NAME_RULE}` });
  }

  const base = rawObj.base;
  let plugin: TaskPlugin | undefined;
  if (base && typeof base === 'object' && !Array.isArray(base)) {
    const { task, jobId } = base as Record<string, unknown>;
    if (jobId !== undefined) problems.push({ path: 'base.jobId', message: 'remove it: each cell gets the job id <sweep name>.<cell name>' });
    if (typeof task !== 'string' || !task) problems.push({ path: 'base.task', message: `is required: one of ${registry.taskTypes().join(', ')}` });
    else if (!registry.has(task)) problems.push({ path: 'base.task', message: `unknown task type "${task}"; known task types: ${registry.taskTypes().join(', ')}` });
    else plugin = registry.get(task);
  }
  // The cells are checked even when the schedule has problems, so one run reports both.
  if (!plugin || matrixProblems.length || !SWEEP_NAME.test(name)) throw new SweepFileError(file, problems);

  const baseDir = dirname(abs);
  const cells: LoadedCell[] = [];
  const perCell: { cell: string; problems: Problem[] }[] = [];
  for (const cell of expandCells(base as Record<string, unknown>, axes)) {
    const jobId = `${name}.${cell.name}`;
    if (jobId.length > 63) {
      problems.push({ path: 'matrix', message: `cell "${cell.name}" makes the job id "${jobId}", longer than 63 chars; shorten the sweep name or the value names` });
      continue;
    }
    const { task, ...body } = cell.request;
    delete body.jobId; // reported above
    if (task !== plugin.taskType) {
      problems.push({ path: `cells.${cell.name}.task`, message: `the matrix may not change the task (base has ${plugin.taskType}, this cell ${String(task)})` });
      continue;
    }
    const p = plugin.parse(body);
    const cellProblems = p.ok ? await plugin.validate(p.value, baseDir) : p.problems;
    perCell.push({ cell: cell.name, problems: cellProblems });
    if (p.ok && cellProblems.length === 0) cells.push({ name: cell.name, axes: cell.axes, plugin, request: p.value, jobId });
  }
  problems.push(...groupCellProblems(perCell));
  if (problems.length || !parsed.ok) throw new SweepFileError(file, problems);

  const value = parsed.value;
  return {
    file: abs,
    baseDir,
    name,
    description: value.description,
    host: overrides.host ?? value.host,
    maxConcurrent: value.maxConcurrent,
    pollIntervalMs: value.pollInterval,
    taskType: plugin.taskType,
    axes: axes.map((a) => ({ name: a.name, values: a.values.map((v) => v.name) })),
    schedule: value.schedule,
    cells,
  };
}

/** A problem every cell has is reported once as `base.<field>`; the others as `cells.<cell>.<field>`. */
function groupCellProblems(perCell: { cell: string; problems: Problem[] }[]): Problem[] {
  const key = (p: Problem) => `${p.path}\0${p.message}`;
  const counts = new Map<string, number>();
  for (const c of perCell) for (const k of new Set(c.problems.map(key))) counts.set(k, (counts.get(k) ?? 0) + 1);
  const out: Problem[] = [];
  const reported = new Set<string>();
  for (const c of perCell) {
    for (const p of c.problems) {
      const shared = perCell.length > 1 && counts.get(key(p)) === perCell.length;
      if (shared) {
        if (!reported.has(key(p))) out.push({ path: p.path ? `base.${p.path}` : 'base', message: p.message });
        reported.add(key(p));
      } else {
        out.push({ path: `cells.${c.cell}${p.path ? `.${p.path}` : ''}`, message: p.message });
      }
    }
  }
  return out;
}
