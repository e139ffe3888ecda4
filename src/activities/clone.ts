/**
 * The activities of a sweep's firings, task-agnostic. claimFiring: takes this firing's folder.
 * cloneBundle: copies a frozen bundle's frozen parts (job.json, inputs/, scripts/) into a new folder
 * with an empty runtime/ and artifacts/, so several runs of one bundle never share a folder. Knows
 * bundles only. The source must still match its digest, and so must the copy; a retried call finds a
 * finished copy and reuses it, and a folder some run already used is refused.
 */
import { ERROR } from '../common/errors';
import { firingKey } from '../store/cas';
import { openStore } from '../store/open';
import { storeFailure, withHeartbeat } from './support';
import { ApplicationFailure } from '@temporalio/common';
import { constants } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import {
  ARTIFACTS_DIR,
  Bundle,
  BundleStateError,
  BundleTamperedError,
  FROZEN_FILE,
  INPUTS_DIR,
  JOB_FILE,
  RUNTIME_DIR,
  SCRIPTS_DIR,
  UnsafeEntryError,
  ValidationError,
  walkFiles,
} from '../bundle';

export interface CloneInput {
  /** A frozen bundle. */
  sourceDir: string;
  /** The digest the source must have. */
  digest: string;
  /** The new bundle folder (missing, or a finished unused copy of the same bundle). */
  destDir: string;
}

export interface CloneResult {
  bundleDir: string;
  digest: string;
  files: number;
  bytes: number;
  /** A finished copy was already there (a retried call). */
  reused: boolean;
}

/** Copies `src` to `dest`, as a copy-on-write clone where the file system can, keeping the mode. */
async function copyKeepingMode(src: string, dest: string): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  await copyFile(src, dest, constants.COPYFILE_FICLONE);
  await chmod(dest, (await stat(src)).mode & 0o777);
}

/** True when `dir` holds nothing a run wrote: runtime/ has only frozen.json and artifacts/ is empty. */
async function unused(dir: string): Promise<boolean> {
  const runtime = await readdir(join(dir, RUNTIME_DIR)).catch(() => []);
  const artifacts = await readdir(join(dir, ARTIFACTS_DIR)).catch(() => []);
  return artifacts.length === 0 && runtime.every((f) => `${RUNTIME_DIR}/${f}` === FROZEN_FILE);
}

function permanent(e: unknown): never {
  if (e instanceof BundleTamperedError || e instanceof BundleStateError || e instanceof UnsafeEntryError || e instanceof ValidationError) {
    throw ApplicationFailure.nonRetryable(e.message, e.name);
  }
  throw e;
}

export async function cloneFrozenBundle(input: CloneInput, heartbeat: (details?: unknown) => void = () => {}): Promise<CloneResult> {
  const sourceDir = resolve(input.sourceDir);
  const destDir = resolve(input.destDir);
  try {
    const source = await Bundle.open(sourceDir);
    await source.assertDigest(input.digest);

    const existing = await Bundle.open(destDir).catch(() => undefined);
    if (existing) {
      if ((await existing.frozenDigest()) === input.digest && (await unused(destDir))) {
        await existing.assertDigest(input.digest);
        return { bundleDir: destDir, digest: input.digest, files: 0, bytes: 0, reused: true };
      }
      throw new BundleStateError(`bundle folder ${destDir} already exists and holds another bundle or a run's output; clones go to new folders`);
    }

    const tmp = `${destDir}.cloning`;
    await rm(tmp, { recursive: true, force: true });
    let files = 0;
    let bytes = 0;
    const entries = [{ path: JOB_FILE, size: (await stat(join(sourceDir, JOB_FILE))).size }, ...(await walkFiles(sourceDir, INPUTS_DIR)), ...(await walkFiles(sourceDir, SCRIPTS_DIR))];
    for (const f of entries) {
      await copyKeepingMode(join(sourceDir, f.path), join(tmp, f.path));
      files++;
      bytes += f.size;
      heartbeat({ files, bytes });
    }
    for (const part of [INPUTS_DIR, SCRIPTS_DIR, RUNTIME_DIR, ARTIFACTS_DIR]) await mkdir(join(tmp, part), { recursive: true });
    const clone = await Bundle.open(tmp);
    const digest = await clone.computeDigest();
    if (digest !== input.digest) throw new BundleTamperedError(tmp, input.digest, digest);
    await writeFile(join(tmp, FROZEN_FILE), JSON.stringify({ digest, frozenAt: new Date().toISOString(), clonedFrom: sourceDir }, null, 2) + '\n');
    await mkdir(dirname(destDir), { recursive: true });
    await rename(tmp, destDir);
    return { bundleDir: destDir, digest, files, bytes, reused: false };
  } catch (e) {
    permanent(e);
  }
}

export interface ClaimFiringInput {
  /** `<sweep folder>/firings` (sweeps before the store). */
  firingsDir: string;
  /** Sweeps since the store: the claim is `sweeps/<sweep>/firings/<id>.json` there, written only if absent. */
  store?: string;
  sweep?: string;
  /** The wanted id: the scheduled time, `yyyymmdd-hhmmss`. */
  firingId: string;
  /** Who claims it: `<workflow id>/<run id>` of the firing. */
  owner: string;
  scheduledAt: string;
}

export interface FiringRecord {
  firingId: string;
  owner: string;
  scheduledAt: string;
  claimedAt: string;
}

export const FIRING_FILE = 'firing.json';

/**
 * Claims `<firingsDir>/<firingId>/` for one firing, atomically (a folder renamed into place): the
 * same time fired twice (a backfill over a time that already fired) gets `<firingId>-2`, `-3`, ...
 * A retried call by the same owner gets the folder it claimed before.
 */
export async function claimFiringFolder(input: ClaimFiringInput): Promise<FiringRecord> {
  if (input.store) return claimInStore(input);
  await mkdir(input.firingsDir, { recursive: true });
  for (let n = 1; n <= 1000; n++) {
    const firingId = n === 1 ? input.firingId : `${input.firingId}-${n}`;
    const dir = join(input.firingsDir, firingId);
    const existing = await readFile(join(dir, FIRING_FILE), 'utf8').then(
      (t) => JSON.parse(t) as FiringRecord,
      () => undefined,
    );
    if (existing?.owner === input.owner) return existing;
    if (existing || (await stat(dir).then(() => true, () => false))) continue;
    const record: FiringRecord = { firingId, owner: input.owner, scheduledAt: input.scheduledAt, claimedAt: new Date().toISOString() };
    const tmp = join(input.firingsDir, `.claim-${firingId}-${process.pid}-${Date.now()}`);
    await mkdir(tmp, { recursive: true });
    await writeFile(join(tmp, FIRING_FILE), JSON.stringify(record, null, 2) + '\n');
    try {
      await rename(tmp, dir);
      return record;
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' || code === 'ENOTEMPTY') continue; // claimed by another firing meanwhile
      throw e;
    }
  }
  throw ApplicationFailure.nonRetryable(`no free firing folder for ${input.firingId} in ${input.firingsDir}`, ERROR.bundleState);
}

/** The store's claim: the first free `<id>`, `<id>-2`, ... created atomically (create-if-absent); the same owner gets its own back. */
async function claimInStore(input: ClaimFiringInput): Promise<FiringRecord> {
  const store = await openStore(input.store!).catch((e: unknown) => {
    throw storeFailure(e);
  });
  try {
    for (let n = 1; n <= 1000; n++) {
      const firingId = n === 1 ? input.firingId : `${input.firingId}-${n}`;
      const key = firingKey(input.sweep ?? '', firingId);
      const record: FiringRecord = { firingId, owner: input.owner, scheduledAt: input.scheduledAt, claimedAt: new Date().toISOString() };
      if (await store.createBytes(key, JSON.stringify(record, null, 2) + '\n')) return record;
      const existing = JSON.parse((await store.getBytes(key))?.toString('utf8') ?? '{}') as Partial<FiringRecord>;
      if (existing.owner === input.owner) return existing as FiringRecord;
    }
  } catch (e) {
    throw storeFailure(e);
  }
  throw ApplicationFailure.nonRetryable(`no free firing id for ${input.firingId} in store ${store.url}`, ERROR.bundleState);
}

/** The activities of sweep firings (task-agnostic), for the worker's activity map: claimFiring, cloneBundle. */
export function createCloneActivities() {
  return {
    /** Claims this firing's folder under the sweep's firings/; see claimFiringFolder. */
    async claimFiring(input: ClaimFiringInput): Promise<FiringRecord> {
      return claimFiringFolder(input);
    },

    /** Copies a frozen bundle into a fresh folder for one run, verifying the digest on both sides. */
    async cloneBundle(input: CloneInput): Promise<CloneResult> {
      let progress: unknown = { files: 0, bytes: 0 };
      return withHeartbeat(
        () => cloneFrozenBundle(input, (p) => (progress = p)),
        () => progress,
      );
    },
  };
}

export type CloneActivities = ReturnType<typeof createCloneActivities>;
