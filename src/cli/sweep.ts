/**
 * `orbit sweep`: scheduled sweeps over a matrix of requests, on Temporal Schedules. `create` builds
 * and freezes one bundle per cell through its task plugin, then creates a schedule whose every firing
 * runs the generic runSweep workflow; the other commands go through the Schedules API.
 */
import { ScheduleAlreadyRunning, ScheduleNotFoundError, type Client, type ScheduleDescription, type ScheduleHandle } from '@temporalio/client';
import { rm } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { TemporalTarget } from '../config';
import type { TaskRegistry } from '../plugins/registry';
import { parseDuration } from '../sweeps/duration';
import { loadSweep, SweepFileError, type LoadedSweep } from '../sweeps/load';
import { describeSpec, overlapPolicy, scheduleOptions } from '../sweeps/schedule';
import { OVERLAP_NAMES, overlapName, type OverlapName } from '../sweeps/schema';
import { configuredStore } from '../store/open';
import { buildSweep, firingIds, readSweep, sweepDir, SweepNotFoundError, type SweepRecord } from '../sweeps/store';
import { CliError } from './errors';
import { formatResults, sweepResults } from './sweep-results';
import { formatTable } from './table';
import { emit, formatTime, type OutputFormat } from './io';

export interface SweepContext {
  client: Client;
  registry: TaskRegistry;
  /** ORBIT_HOME. */
  home: string;
  taskQueue: string;
  target: TemporalTarget;
}

/** The sweep's store: ORBIT_STORE, else the store under the context's ORBIT_HOME. */
function storeOf(ctx: SweepContext) {
  return configuredStore({ ...process.env, ORBIT_HOME: ctx.home });
}

export const SWEEP_HELP = `orbit sweep: scheduled sweeps over a matrix of requests (Temporal Schedules)

  orbit sweep validate FILE [--name N] [--host H]            check a sweep file and every cell; build nothing
  orbit sweep create FILE [--name N] [--host H] [--trigger]   build one frozen bundle per cell, create the schedule
  orbit sweep list                                            sweeps: state, schedule, next firing
  orbit sweep describe NAME                                   schedule, policies, recent and running firings, cells
  orbit sweep pause NAME [--note TEXT]                        stop firing (running firings go on)
  orbit sweep unpause NAME [--note TEXT]
  orbit sweep trigger NAME [--overlap P]                      fire now (default: the sweep's overlap policy)
  orbit sweep backfill NAME --start T --end T [--overlap P]   fire for every scheduled time in [T, T] (ISO, now, or -2h)
  orbit sweep results NAME [--firing ID] [--format table|csv|json]   each cell's status and metrics
  orbit sweep delete NAME [--purge]                           delete the schedule (--purge: and its folder)

Overlap policies: ${OVERLAP_NAMES.join(', ')}. See examples/sweep.yaml for the file format.`;

function scheduleUiUrl(target: TemporalTarget, name: string): string | undefined {
  if (!target.uiUrl) return undefined;
  return `${target.uiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(target.namespace)}/schedules/${encodeURIComponent(name)}`;
}

function when(d: Date | undefined): string {
  return formatTime(d);
}

async function describeSchedule(ctx: SweepContext, name: string): Promise<{ handle: ScheduleHandle; description: ScheduleDescription }> {
  const handle = ctx.client.schedule.getHandle(name);
  try {
    return { handle, description: await handle.describe() };
  } catch (e) {
    if (e instanceof ScheduleNotFoundError) throw new CliError(`no sweep named ${name}: Temporal has no schedule ${name}; \`orbit sweep list\` shows the sweeps`);
    throw e;
  }
}

async function record(ctx: SweepContext, name: string): Promise<{ dir: string; record: SweepRecord }> {
  try {
    return await readSweep(ctx.home, name, await storeOf(ctx));
  } catch (e) {
    if (e instanceof SweepNotFoundError) throw new CliError(`${e.message}; the sweep was created with another ORBIT_HOME, or purged`);
    throw e;
  }
}

/** Reads and checks a sweep file (every cell through its plugin); a CliError listing every problem when invalid. */
export async function loadSweepFile(file: string, registry: TaskRegistry, options: { name?: string; host?: string } = {}): Promise<LoadedSweep> {
  try {
    return await loadSweep(file, registry, options);
  } catch (e) {
    if (e instanceof SweepFileError) throw new CliError(e.message);
    throw e;
  }
}

/** Builds and freezes every cell of a checked sweep, then creates its schedule; nothing is left behind on failure. */
export async function createSweep(ctx: SweepContext, loaded: LoadedSweep, options: { trigger?: boolean } = {}): Promise<{ dir: string; record: SweepRecord; handle: ScheduleHandle }> {
  const existing = ctx.client.schedule.getHandle(loaded.name);
  const exists = await existing.describe().then(
    () => true,
    (e: unknown) => {
      if (e instanceof ScheduleNotFoundError) return false;
      throw new CliError(`cannot reach Temporal to check for a schedule ${loaded.name}: ${(e as Error).message}`, 3);
    },
  );
  if (exists) throw new CliError(`a sweep named ${loaded.name} already exists; delete it first (\`orbit sweep delete ${loaded.name}\`) or set another name`);
  let built;
  try {
    built = await buildSweep(loaded, ctx.home, undefined, await storeOf(ctx));
  } catch (e) {
    if ((e as Error).message.includes('already exists')) throw new CliError((e as Error).message);
    throw e;
  }
  const opts = scheduleOptions(built.dir, built.record, ctx.taskQueue);
  if (options.trigger) opts.state = { ...opts.state, triggerImmediately: true };
  try {
    const handle = await ctx.client.schedule.create(opts);
    return { ...built, handle };
  } catch (e) {
    await rm(built.dir, { recursive: true, force: true });
    if (e instanceof ScheduleAlreadyRunning) throw new CliError(`a sweep named ${loaded.name} already exists`);
    throw e;
  }
}

/** `now`, `-2h` (that long ago), `+30m`, or an ISO time. */
export function parseTime(text: string, now = new Date()): Date {
  if (text === 'now') return now;
  if (/^[+-]/.test(text)) {
    const d = parseDuration(text.slice(1));
    if (d.ok) return new Date(now.getTime() + (text.startsWith('-') ? -d.ms : d.ms));
  }
  const t = new Date(text);
  if (Number.isNaN(t.getTime())) throw new CliError(`"${text}" is not a time: write an ISO time (2026-11-25T03:00:00Z), now, or a duration ago like -2h`);
  return t;
}

function overlapOption(text: string | undefined, fallback: OverlapName): OverlapName {
  if (text === undefined) return fallback;
  const name = overlapName(text);
  if (!name) throw new CliError(`--overlap "${text}" is not one of ${OVERLAP_NAMES.join(', ')}`);
  return name;
}

export async function describeSweep(ctx: SweepContext, name: string): Promise<string> {
  const { description: d } = await describeSchedule(ctx, name);
  const local = await readSweep(ctx.home, name).catch(() => undefined);
  const lines = [`sweep ${name}: ${d.state.paused ? 'paused' : 'active'}${d.state.note ? ` (${d.state.note})` : ''}`];
  if (local) {
    const r = local.record;
    lines.push(`  schedule: ${describeSpec(r.schedule)}; overlap ${r.schedule.overlap}; catch-up window ${r.schedule.catchupWindow / 1000}s${r.schedule.pauseOnFailure ? '; pauses on failure' : ''}`);
    lines.push(`  cells: ${r.cells.length} ${r.taskType} on ${r.host}, at most ${r.maxConcurrent} at once; axes ${r.axes.map((a) => `${a.name} (${a.values.join(', ')})`).join(' x ')}`);
    lines.push(`  folder: ${local.dir}`);
  }
  lines.push(`  firings: ${d.info.numActionsTaken} taken, ${d.info.numActionsSkippedOverlap} skipped (overlap), ${d.info.numActionsMissedCatchupWindow} missed (catch-up window)`);
  lines.push(`  next: ${d.info.nextActionTimes.slice(0, 3).map(when).join(', ') || '-'}`);
  for (const a of d.info.runningActions) lines.push(`  running: ${a.workflow.workflowId}`);
  for (const a of d.info.recentActions.slice(-5)) lines.push(`  recent: ${when(a.scheduledAt)} -> ${a.action.workflow.workflowId}`);
  if (local) {
    const firings = await firingIds(local.dir, local.record);
    if (firings.length) lines.push(`  firing folders: ${firings.slice(-5).join(', ')}${firings.length > 5 ? ` (${firings.length} in all)` : ''}`);
    lines.push('', formatTable(['cell', ...local.record.axes.map((a) => a.name), 'digest'], local.record.cells.map((c) => [c.name, ...local.record.axes.map((a) => c.axes[a.name]), c.digest.slice(0, 19)])));
  }
  const ui = scheduleUiUrl(ctx.target, name);
  if (ui) lines.push('', `Web UI: ${ui}`);
  return lines.join('\n');
}

export interface SweepListEntry {
  name: string;
  state: 'paused' | 'active';
  schedule?: string;
  cells?: number;
  next?: Date;
  last?: Date;
}

export async function sweepList(ctx: SweepContext): Promise<SweepListEntry[]> {
  const rows: SweepListEntry[] = [];
  for await (const s of ctx.client.schedule.list()) {
    if (!s.memo?.orbitSweep) continue;
    const local = await readSweep(ctx.home, s.scheduleId).catch(() => undefined);
    rows.push({
      name: s.scheduleId,
      state: s.state.paused ? 'paused' : 'active',
      schedule: local ? describeSpec(local.record.schedule) : undefined,
      cells: local?.record.cells.length ?? (s.memo.cells as number | undefined),
      next: s.info.nextActionTimes[0],
      last: s.info.recentActions.at(-1)?.scheduledAt,
    });
  }
  return rows.sort((a, b) => a.name.localeCompare(b.name));
}

export async function listSweeps(ctx: SweepContext): Promise<string> {
  const rows = (await sweepList(ctx)).map((r) => [r.name, r.state, r.schedule ?? '?', r.cells, when(r.next), when(r.last)]);
  return rows.length ? formatTable(['name', 'state', 'schedule', 'cells', 'next', 'last'], rows) : 'no sweeps; create one with `orbit sweep create FILE`';
}

/** describe's facts for -o json: the schedule's state and counts, and the sweep's record when this machine has it. */
export async function sweepFacts(ctx: SweepContext, name: string): Promise<Record<string, unknown>> {
  const { description: d } = await describeSchedule(ctx, name);
  const local = await readSweep(ctx.home, name).catch(() => undefined);
  return {
    name,
    state: d.state.paused ? 'paused' : 'active',
    note: d.state.note,
    firings: { taken: d.info.numActionsTaken, skippedOverlap: d.info.numActionsSkippedOverlap, missedCatchupWindow: d.info.numActionsMissedCatchupWindow },
    next: d.info.nextActionTimes.slice(0, 3),
    running: d.info.runningActions.map((a) => a.workflow.workflowId),
    recent: d.info.recentActions.slice(-5).map((a) => ({ scheduledAt: a.scheduledAt, workflowId: a.action.workflow.workflowId })),
    folder: local?.dir,
    record: local?.record,
    webUi: scheduleUiUrl(ctx.target, name),
  };
}

export interface SweepDeps {
  /** The task registry (no connection needed: a sweep file is checked before Temporal is reached). */
  registry: () => Promise<TaskRegistry>;
  /** Connects to Temporal. */
  context: () => Promise<SweepContext>;
}

/** `orbit sweep ...` with its arguments. */
export async function sweepCommand(argv: string[], out: (s: string) => void, deps: SweepDeps): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      host: { type: 'string' },
      trigger: { type: 'boolean', default: false },
      note: { type: 'string' },
      overlap: { type: 'string' },
      start: { type: 'string' },
      end: { type: 'string' },
      firing: { type: 'string' },
      format: { type: 'string', default: 'table' },
      purge: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (!sub || sub === 'help' || sub === '--help' || sub === '-h' || values.help) {
    out(SWEEP_HELP);
    return 0;
  }
  return sweepAction(sub, positionals, values, { out, note: (l) => console.error(l) }, deps);
}

export interface SweepFlags {
  name?: string;
  host?: string;
  trigger?: boolean;
  note?: string;
  overlap?: string;
  start?: string;
  end?: string;
  firing?: string;
  format?: string;
  purge?: boolean;
  output?: OutputFormat;
}

/** One `orbit sweep SUB` with its parsed flags (commander's or parseArgs'). */
export async function sweepAction(sub: string, positionals: string[], values: SweepFlags, io: { out(s: string): void; note(s: string): void }, deps: SweepDeps): Promise<number> {
  const out = io.out;
  const context = deps.context;
  const one = (what: string): string => {
    if (positionals.length !== 1) throw new CliError(`orbit sweep ${sub}: expected exactly one ${what}; see orbit sweep --help`);
    return positionals[0]!;
  };
  switch (sub) {
    case 'create': {
      const loaded = await loadSweepFile(one('sweep file'), await deps.registry(), { name: values.name, host: values.host });
      const ctx = await context();
      const { dir, record: r, handle } = await createSweep(ctx, loaded, { trigger: values.trigger ?? false });
      const d = await handle.describe();
      out(`created sweep ${r.name}: ${r.cells.length} ${r.taskType} cell${r.cells.length === 1 ? '' : 's'} on ${r.host} (${r.axes.map((a) => `${a.name} x${a.values.length}`).join(', ')})`);
      out(`  schedule: ${describeSpec(r.schedule)}; overlap ${r.schedule.overlap}${r.schedule.paused ? '; paused' : ''}`);
      out(`  next firing: ${when(d.info.nextActionTimes[0])}${values.trigger ? ' (and one now)' : ''}`);
      out(`  bundles: ${dir}/cells/`);
      const ui = scheduleUiUrl(ctx.target, r.name);
      if (ui) out(`  Web UI: ${ui}`);
      return 0;
    }
    case 'validate': {
      const loaded = await loadSweepFile(one('sweep file'), await deps.registry(), { name: values.name, host: values.host });
      out(`${loaded.file}: valid sweep ${loaded.name}: ${loaded.cells.length} ${loaded.taskType} cell${loaded.cells.length === 1 ? '' : 's'} (${loaded.cells.map((c) => c.name).join(', ')}); ${describeSpec(loaded.schedule)}`);
      return 0;
    }
    case 'list': {
      const ctx = await context();
      if (values.output && values.output !== 'text') await emit(io, values.output, await sweepList(ctx), () => undefined);
      else out(await listSweeps(ctx));
      return 0;
    }
    case 'describe': {
      const ctx = await context();
      if (values.output && values.output !== 'text') await emit(io, values.output, await sweepFacts(ctx, one('sweep name')), () => undefined);
      else out(await describeSweep(ctx, one('sweep name')));
      return 0;
    }
    case 'pause':
    case 'unpause': {
      const name = one('sweep name');
      const { handle } = await describeSchedule(await context(), name);
      if (sub === 'pause') await handle.pause(values.note ?? 'paused with orbit sweep pause');
      else await handle.unpause(values.note ?? 'unpaused with orbit sweep unpause');
      out(`sweep ${name} ${sub}d`);
      return 0;
    }
    case 'trigger': {
      const name = one('sweep name');
      const ctx = await context();
      const { handle } = await describeSchedule(ctx, name);
      const { record: r } = await record(ctx, name);
      const overlap = overlapOption(values.overlap, r.schedule.overlap);
      await handle.trigger(overlapPolicy(overlap));
      out(`sweep ${name}: fired now (overlap ${overlap}); \`orbit sweep describe ${name}\` shows the firing`);
      return 0;
    }
    case 'backfill': {
      const name = one('sweep name');
      if (!values.start || !values.end) throw new CliError('orbit sweep backfill needs --start and --end (ISO times, now, or e.g. --start=-6h)');
      const start = parseTime(values.start);
      const end = parseTime(values.end);
      if (end.getTime() <= start.getTime()) throw new CliError(`--end (${end.toISOString()}) must be after --start (${start.toISOString()})`);
      const ctx = await context();
      const { handle } = await describeSchedule(ctx, name);
      const { record: r } = await record(ctx, name);
      const overlap = overlapOption(values.overlap, r.schedule.overlap);
      await handle.backfill({ start, end, overlap: overlapPolicy(overlap) });
      out(`sweep ${name}: backfilling ${start.toISOString()} .. ${end.toISOString()} (overlap ${overlap})`);
      return 0;
    }
    case 'results': {
      const name = one('sweep name');
      const format = values.format ?? 'table';
      if (format !== 'table' && format !== 'csv' && format !== 'json') throw new CliError(`--format must be table, csv or json (got ${format})`);
      const ctx = await context();
      const { dir, record: r } = await record(ctx, name);
      out(formatResults(await sweepResults(ctx.client, ctx.registry, dir, r, values.firing, { ...process.env, ORBIT_HOME: ctx.home }), format));
      return 0;
    }
    case 'delete': {
      const name = one('sweep name');
      const ctx = await context();
      let deleted = false;
      try {
        await ctx.client.schedule.getHandle(name).delete();
        deleted = true;
      } catch (e) {
        if (!(e instanceof ScheduleNotFoundError)) throw e;
        if (!values.purge) throw new CliError(`no sweep named ${name}: Temporal has no schedule ${name}`);
      }
      out(deleted ? `sweep ${name}: schedule deleted (running firings go on)` : `sweep ${name}: no schedule left`);
      if (values.purge) {
        await rm(sweepDir(ctx.home, name), { recursive: true, force: true });
        const store = await storeOf(ctx);
        const keys: string[] = [];
        for await (const o of store.list(`sweeps/${name}/`)) keys.push(o.key);
        await store.delete(keys);
        out(`  removed ${sweepDir(ctx.home, name)}${keys.length ? ` and its record in ${store.url} (orbit store gc drops its cells' blobs)` : ''}`);
      } else {
        out(`  bundles and firing results stay in ${sweepDir(ctx.home, name)} (--purge removes them)`);
      }
      return 0;
    }
    default:
      throw new CliError(`unknown sweep command "${sub}"; see orbit sweep --help`);
  }
}
