/** `orbit result RUN`: waits for the run's end (saying so on stderr), then its result and the task's summary. */
import type { Client } from '@temporalio/client';
import type { TemporalTarget } from '../config';
import { StoreError } from '../store/store';
import { CliError, EXIT_TEMPORAL, temporalCliError } from './errors';
import { emit, type Io, type OutputFormat } from './io';
import { awaitRun, describeRun, runFolder, runWhere, summarize } from './outcome';

/**
 * The run's folder here, brought from its store; when the store cannot give it, the verdict is still
 * printed (without the task's summary) and the store's problem is said on stderr.
 */
export async function localFolder(client: Client, id: string, fallback: string | undefined, io: Io): Promise<string | undefined> {
  try {
    return (await runFolder(client, id)) ?? fallback;
  } catch (e) {
    if (!(e instanceof StoreError)) throw e;
    io.note(`orbit: the run's files could not be brought here, so its summary is missing: ${e.message}`);
    return undefined;
  }
}

export async function resultCommand(id: string, format: OutputFormat, io: Io, client: Client, target: TemporalTarget): Promise<number> {
  const where = await runWhere(client, id).catch((e: Error) => {
    throw temporalCliError(e, target) ?? new CliError(`run ${id}: ${e.message}`, EXIT_TEMPORAL);
  });
  const handle = client.workflow.getHandle(id);
  const d = await handle.describe();
  if (d.status.name === 'RUNNING') io.note(`orbit: run ${id} is still running; waiting for it to end (Ctrl-C stops waiting, the run goes on; orbit logs -f ${id} streams its log)`);
  const run = await awaitRun(handle, where.bundleDir);
  run.bundleDir = await localFolder(client, id, run.bundleDir, io);
  const summary = await summarize(run);
  await emit(io, format, { ...run, summary }, () => io.out(describeRun(run, summary)));
  return run.status === 'succeeded' ? 0 : 1;
}
