/**
 * `orbit pull RUN [--to DIR] [--only GLOB]`: brings a run's bundle and what was collected of it from
 * its store to this machine, each file verified by sha256. The run is found through Temporal (its
 * memo names the store and the bundle), or, when Temporal cannot say, in this machine's store.
 */
import { join, resolve } from 'node:path';
import picomatch from 'picomatch';
import { orbitHome, temporalTarget } from '../config';
import { pullRun, readRunRecord } from '../store/cas';
import { configuredStore, openStore } from '../store/open';
import { CliError } from './errors';

export async function orbitPull(runId: string, flags: { to?: string; only?: string[] }, out: (s: string) => void): Promise<number> {
  const values = flags;
  const where = await locate(runId);
  const dir = resolve(values.to ?? join(orbitHome(), 'runs', runId));
  const only = values.only?.length ? picomatch(values.only, { dot: true }) : undefined;
  const t = await pullRun(await openStore(where.store), runId, where.digest, dir, { verifyLocal: true, ...(only ? { only } : {}) });
  if (only && t.files === 0) throw new CliError(`orbit pull ${runId}: --only ${values.only!.join(' ')} matches none of the run's files`, 1);
  out(`pulled ${runId} into ${dir}: ${t.files} files, ${t.bytes} bytes (${t.movedFiles} fetched, ${t.movedBytes} bytes; every file checked by sha256) from ${where.store}`);
  return 0;
}

async function locate(runId: string): Promise<{ store: string; digest: string }> {
  const { connectClient } = await import('./connect');
  const { runWhere } = await import('./outcome');
  try {
    const client = await connectClient(temporalTarget());
    try {
      const w = await runWhere(client, runId);
      if (w.store && w.digest) return { store: w.store, digest: w.digest };
      if (w.bundleDir) throw new CliError(`run ${runId} was started before the store; its bundle is ${w.bundleDir} on the worker's machine`, 1);
    } finally {
      await client.connection.close().catch(() => undefined);
    }
  } catch (e) {
    if (e instanceof CliError && e.exitCode === 1) throw e;
  }
  const store = await configuredStore();
  const record = await readRunRecord(store, runId);
  if (!record) throw new CliError(`run ${runId}: Temporal does not know it and store ${store.url} has no runs/${runId}/run.json`, 1);
  return { store: store.url, digest: record.digest };
}
