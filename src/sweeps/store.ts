/**
 * A sweep on disk, under `<ORBIT_HOME>/sweeps/<name>/`:
 *
 *   sweep.json                    what was created: schedule, axes, and every cell's frozen bundle + digest
 *   cells/<cell>/                 the frozen bundle of each cell, built once by its task plugin
 *   firings/<firing id>/<cell>/   one clone per firing, made by the worker: its run's runtime/ and artifacts/
 *
 * The whole folder is built under `<name>.building/` and renamed into place, so a failed build leaves
 * nothing behind. Since the store, every cell's bundle is also put into the store and sweep.json is
 * copied to `sweeps/<name>/sweep.json` there: firings run the cells from the store (no firings/
 * folder is made), so a schedule fires with this machine off, and `sweep results` works anywhere.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Bundle } from '../bundle';
import { runSpecOf } from '../common/run-input';
import type { RunSweepInput, SweepCellInput } from '../workflows/sweep';
import type { LoadedSweep } from './load';
import { FIRING_FILE, type FiringRecord } from '../activities/clone';
import { firingKey, pushBundle, sweepKey } from '../store/cas';
import { openStore } from '../store/open';
import type { BundleStore } from '../store/store';
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
  /** The store holding the cells (sweeps created since the store). */
  store?: string;
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
export async function buildSweep(loaded: LoadedSweep, home: string, now = new Date(), store?: BundleStore): Promise<{ dir: string; record: SweepRecord }> {
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
      if (store) await pushBundle(store, bundle.dir, digest);
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
      ...(store ? { store: store.url } : {}),
    };
    await writeFile(join(building, SWEEP_FILE), JSON.stringify(record, null, 2) + '\n');
    if (store) await store.putBytes(sweepKey(record.name), JSON.stringify(record, null, 2) + '\n');
    await mkdir(join(building, FIRINGS_DIR));
    await rename(building, dir);
    return { dir, record };
  } catch (e) {
    await rm(building, { recursive: true, force: true });
    throw e;
  }
}

/** The sweep's record from its folder, or, on a machine that did not create it, from the store. */
export async function readSweep(home: string, name: string, store?: BundleStore): Promise<{ dir: string; record: SweepRecord }> {
  const dir = sweepDir(home, name);
  let text: string;
  try {
    text = await readFile(join(dir, SWEEP_FILE), 'utf8');
  } catch {
    const stored = await store?.getBytes(sweepKey(name));
    if (!stored) throw new SweepNotFoundError(name, `no sweep named ${name} in ${sweepsRoot(home)}${store ? ` or in store ${store.url}` : ''}`);
    text = stored.toString('utf8');
  }
  const record = JSON.parse(text) as SweepRecord;
  if (record.schemaVersion !== SWEEP_SCHEMA_VERSION) throw new SweepNotFoundError(name, `${join(dir, SWEEP_FILE)} is not an ${SWEEP_SCHEMA_VERSION} record`);
  return { dir, record };
}

/** What every firing of the schedule runs: the fan-out workflow's input. */
export function firingInput(dir: string, record: SweepRecord): RunSweepInput {
  return {
    sweep: record.name,
    ...(record.store ? { store: record.store } : {}),
    firingsDir: join(dir, FIRINGS_DIR),
    host: record.host,
    maxConcurrent: record.maxConcurrent,
    tuning: { pollIntervalMs: record.pollIntervalMs },
    cells: record.cells.map((c) => ({
      name: c.name,
      ...(record.store ? {} : { bundleDir: join(dir, c.bundle) }),
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

const FIRING_ID = /^\d{8}-\d{6}(-\d+)?$/;

/** Firing ids, oldest first: claimed in the store (sweeps since the store), else with a folder on disk. */
export async function firingIds(dir: string, record?: SweepRecord): Promise<string[]> {
  if (record?.store) {
    const store = await openStore(record.store);
    const prefix = `sweeps/${record.name}/firings/`;
    const ids: string[] = [];
    for await (const o of store.list(prefix)) ids.push(o.key.slice(prefix.length).replace(/\.json$/, ''));
    return ids.filter((n) => FIRING_ID.test(n)).sort();
  }
  const names = await readdir(join(dir, FIRINGS_DIR)).catch(() => [] as string[]);
  return names.filter((n) => FIRING_ID.test(n)).sort();
}

/** A firing's claim: who fired it and for when. */
export async function readFiring(dir: string, record: SweepRecord, firingId: string): Promise<FiringRecord | undefined> {
  const text = record.store
    ? (await (await openStore(record.store)).getBytes(firingKey(record.name, firingId)))?.toString('utf8')
    : await readFile(join(dir, FIRINGS_DIR, firingId, FIRING_FILE), 'utf8').catch(() => undefined);
  if (!text) return undefined;
  try {
    return JSON.parse(text) as FiringRecord;
  } catch {
    return undefined;
  }
}
