/**
 * A sweep on disk, under `<ORBIT_HOME>/sweeps/<name>/`:
 *
 *   sweep.json                    what was created: schedule, axes, and every cell's frozen bundle + digest
 *   cells/<cell>/                 the frozen bundle of each cell, built once by its task plugin
 *   firings/<firing id>/<cell>/   one clone per firing, made by the worker: its run's runtime/ and artifacts/
 *
 * The whole folder is built under `<name>.building/` and renamed into place, so a failed build leaves
 * nothing behind.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Bundle } from '../bundle';
import { runSpecOf } from '../common/run-input';
import type { RunSweepInput, SweepCellInput } from '../workflows/sweep';
import type { LoadedSweep } from './load';
import type { SweepSchedule } from './schema';

export const SWEEP_SCHEMA_VERSION = 'orbit.sweep.v1';
export const SWEEP_FILE = 'sweep.json';
export const CELLS_DIR = 'cells';
export const FIRINGS_DIR = 'firings';

export interface SweepCellRecord {
  name: string;
  axes: Record<string, string>;
  jobId: string;
  taskType: string;
  jobKind: string;
  /** Relative to the sweep folder: `cells/<cell>`. */
  bundle: string;
  digest: string;
  logFile: string;
  timeouts: SweepCellInput['timeouts'];
  /** job.json sync.intervalSeconds (absent in sweeps created before it was recorded). */
  syncIntervalSeconds?: number;
}

export interface SweepRecord {
  schemaVersion: typeof SWEEP_SCHEMA_VERSION;
  name: string;
  description?: string;
  createdAt: string;
  /** The sweep file it was made from. */
  source: string;
  host: string;
  maxConcurrent: number;
  pollIntervalMs: number;
  taskType: string;
  axes: { name: string; values: string[] }[];
  schedule: SweepSchedule;
  cells: SweepCellRecord[];
}

export function sweepsRoot(home: string): string {
  return join(home, 'sweeps');
}

export function sweepDir(home: string, name: string): string {
  return join(sweepsRoot(home), name);
}

/** Thrown when a sweep's folder is missing or its sweep.json unreadable. */
export class SweepNotFoundError extends Error {
  constructor(
    readonly sweep: string,
    message: string,
  ) {
    super(message);
    this.name = 'SweepNotFoundError';
  }
}

/**
 * Builds every cell's bundle through its plugin, freezes it, and writes sweep.json. Refuses when the
 * folder exists. Returns the record and the final folder.
 */
export async function buildSweep(loaded: LoadedSweep, home: string, now = new Date()): Promise<{ dir: string; record: SweepRecord }> {
  const dir = sweepDir(home, loaded.name);
  if (existsSync(dir)) {
    throw new Error(`${dir} already exists (a sweep named ${loaded.name} was created before); delete it with \`orbit sweep delete ${loaded.name} --purge\` or choose another name`);
  }
  const building = `${dir}.building`;
  await rm(building, { recursive: true, force: true });
  await mkdir(join(building, CELLS_DIR), { recursive: true });
  try {
    const cells: SweepCellRecord[] = [];
    for (const cell of loaded.cells) {
      const rel = `${CELLS_DIR}/${cell.name}`;
      await cell.plugin.buildBundle(join(building, rel), { request: cell.request, jobId: cell.jobId, baseDir: loaded.baseDir });
      const bundle = await Bundle.open(join(building, rel));
      const digest = await bundle.freeze();
      cells.push({
        name: cell.name,
        axes: cell.axes,
        jobId: cell.jobId,
        bundle: rel,
        digest,
        ...runSpecOf(bundle.spec),
      });
    }
    const record: SweepRecord = {
      schemaVersion: SWEEP_SCHEMA_VERSION,
      name: loaded.name,
      ...(loaded.description ? { description: loaded.description } : {}),
      createdAt: now.toISOString(),
      source: loaded.file,
      host: loaded.host,
      maxConcurrent: loaded.maxConcurrent,
      pollIntervalMs: loaded.pollIntervalMs,
      taskType: loaded.taskType,
      axes: loaded.axes,
      schedule: loaded.schedule,
      cells,
    };
    await writeFile(join(building, SWEEP_FILE), JSON.stringify(record, null, 2) + '\n');
    await mkdir(join(building, FIRINGS_DIR));
    await rename(building, dir);
    return { dir, record };
  } catch (e) {
    await rm(building, { recursive: true, force: true });
    throw e;
  }
}

export async function readSweep(home: string, name: string): Promise<{ dir: string; record: SweepRecord }> {
  const dir = sweepDir(home, name);
  let text: string;
  try {
    text = await readFile(join(dir, SWEEP_FILE), 'utf8');
  } catch {
    throw new SweepNotFoundError(name, `no sweep named ${name} in ${sweepsRoot(home)}`);
  }
  const record = JSON.parse(text) as SweepRecord;
  if (record.schemaVersion !== SWEEP_SCHEMA_VERSION) throw new SweepNotFoundError(name, `${join(dir, SWEEP_FILE)} is not an ${SWEEP_SCHEMA_VERSION} record`);
  return { dir, record };
}

/** What every firing of the schedule runs: the fan-out workflow's input. */
export function firingInput(dir: string, record: SweepRecord): RunSweepInput {
  return {
    sweep: record.name,
    firingsDir: join(dir, FIRINGS_DIR),
    host: record.host,
    maxConcurrent: record.maxConcurrent,
    tuning: { pollIntervalMs: record.pollIntervalMs },
    cells: record.cells.map((c) => ({
      name: c.name,
      bundleDir: join(dir, c.bundle),
      digest: c.digest,
      axes: c.axes,
      taskType: c.taskType,
      jobKind: c.jobKind,
      logFile: c.logFile,
      timeouts: c.timeouts,
      ...(c.syncIntervalSeconds !== undefined ? { syncIntervalSeconds: c.syncIntervalSeconds } : {}),
    })),
  };
}

/** Firing ids with a folder on disk, oldest first. */
export async function firingIds(dir: string): Promise<string[]> {
  const names = await readdir(join(dir, FIRINGS_DIR)).catch(() => [] as string[]);
  return names.filter((n) => /^\d{8}-\d{6}(-\d+)?$/.test(n)).sort();
}
