/**
 * `orbit diagnose RUN`: walks a run's bundle through the diagnosis layers and prints the first that
 * failed, or `CANCELLED` for a cancelled run (known from its status in Temporal when RUN is a run id,
 * or from the cancel recorded in the bundle's runtime/runtime.log). For a run id, Temporal also says
 * how the run stands with its host (lost, recovering, unreachable: see runEnding), which the runtime
 * layer names. Exit 0 healthy; 1 not (a failed layer, a lost host, or cancelled: a cancelled run is
 * not healthy, though nothing in it failed).
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { JOB_FILE } from '../common/layout';
import { orbitHome, type TemporalTarget } from '../config';
import { diagnoseBundle, formatDiagnosis, type RunEnding } from '../diagnose';
import { CliError } from './errors';

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function isBundleDir(path: string): boolean {
  try {
    return statSync(path).isDirectory() && existsSync(join(path, JOB_FILE));
  } catch {
    return false;
  }
}

/**
 * The bundle folder of `runOrPath`: a folder holding job.json, or a run id looked up through its
 * workflow memo: brought from the run's store into `<ORBIT_HOME>/runs/<id>` (or, for runs before the
 * store, its `bundleDir`), falling back to `<ORBIT_HOME>/runs/<id>` when Temporal cannot be reached.
 */
export async function resolveBundleDir(runOrPath: string, target: TemporalTarget): Promise<string> {
  return (await resolveRun(runOrPath, target)).dir;
}

/** The bundle folder (see resolveBundleDir) and, for a run id Temporal knows, how the run ended there. */
export async function resolveRun(runOrPath: string, target: TemporalTarget): Promise<{ dir: string; ending?: RunEnding }> {
  if (isBundleDir(runOrPath)) return { dir: resolve(runOrPath) };
  if (existsSync(runOrPath) || !RUN_ID.test(runOrPath)) {
    throw new CliError(`${runOrPath}: not a bundle folder (no ${JOB_FILE}) and not a run id`);
  }
  const local = join(orbitHome(), 'runs', runOrPath);
  const { connectClient } = await import('./connect');
  const { runFolder } = await import('./outcome');
  const { runEnding } = await import('./run-ending');
  const { StoreError } = await import('../store/store');
  let client;
  try {
    client = await connectClient(target);
  } catch (e) {
    if (isBundleDir(local)) return { dir: local };
    throw e;
  }
  try {
    const dir = await runFolder(client, runOrPath);
    const found = dir && isBundleDir(dir) ? dir : isBundleDir(local) ? local : undefined;
    if (found) {
      const ending = await runEnding(client, runOrPath).catch(() => undefined);
      return { dir: found, ...(ending ? { ending } : {}) };
    }
    throw new CliError(dir ? `run ${runOrPath}: its bundle ${dir} is not on this machine` : `run ${runOrPath}: its workflow has no bundleDir memo`, 1);
  } catch (e) {
    if (e instanceof CliError || e instanceof StoreError) throw e;
    if (isBundleDir(local)) return { dir: local };
    throw new CliError(`run ${runOrPath}: ${(e as Error).message}`, 3);
  } finally {
    await client.connection.close().catch(() => undefined);
  }
}

/** Prints the diagnosis; 0 when the run is healthy, 1 when a layer failed or the run was cancelled. */
export async function runDiagnose(runOrPath: string, target: TemporalTarget, out: (s: string) => void): Promise<number> {
  const { dir, ending } = await resolveRun(runOrPath, target);
  const diagnosis = await diagnoseBundle(dir, ending);
  out(formatDiagnosis(diagnosis));
  return diagnosis.healthy ? 0 : 1;
}
