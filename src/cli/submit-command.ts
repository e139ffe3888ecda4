/** `orbit submit FILE`: build, freeze and store the bundle, start its run; with --follow, stay until it ends. */
import { rm } from 'node:fs/promises';
import { taskQueue, temporalTarget } from '../config';
import { buildDefaultTaskRegistry } from '../plugins/registry';
import { checkNamespace } from './errors';
import { follow } from './follow';
import type { Io } from './io';
import { awaitRun, describeRun, summarize } from './outcome';
import { localFolder } from './result-command';
import { noWorkerWarning, workerPresence } from './presence';
import { loadRequest } from './request';
import { connectClient, prepareRun, startRun } from './submit';
import type { OnHostLost } from '../common/run';
import type { OnUnhealthy } from '../common/health';

export interface SubmitFlags {
  host?: string;
  priority: number;
  jobId?: string;
  follow: boolean;
  hosts?: string;
  onHostLost: OnHostLost;
  maxRelaunches: number;
  onUnhealthy?: OnUnhealthy;
  quiet?: boolean;
}

export async function submitCommand(file: string, flags: SubmitFlags, io: Io): Promise<number> {
  const registry = await buildDefaultTaskRegistry();
  const loaded = await loadRequest(file, registry, flags.jobId);
  const target = temporalTarget();
  const client = await connectClient(target);
  await checkNamespace(client, target);
  const prepared = await prepareRun(loaded, {
    host: flags.host,
    priority: flags.priority,
    hostsFile: flags.hosts,
    onHostLost: flags.onHostLost,
    maxRelaunches: flags.maxRelaunches,
    ...(flags.onUnhealthy ? { onUnhealthy: flags.onUnhealthy } : {}),
    localMachine: target.embedded,
  });
  const { handle, uiUrl } = await startRun(client, prepared, target).catch(async (e: unknown) => {
    await rm(prepared.bundle.dir, { recursive: true, force: true });
    throw e;
  });
  if (flags.quiet) io.out(handle.workflowId);
  else {
    io.out(`submitted ${handle.workflowId} (${loaded.plugin.taskType} on ${prepared.input.host})`);
    io.out(`  queued for ${prepared.input.host === 'auto' ? 'the first fitting host with free capacity' : `capacity on ${prepared.input.host}`} (orbit queue shows where it stands)`);
    io.out(`  bundle: ${prepared.bundle.dir} (store ${prepared.input.store}: ${prepared.upload.movedFiles} of ${prepared.upload.files} files sent, ${prepared.upload.movedBytes} bytes)`);
    for (const line of loaded.plugin.describeBundle?.(prepared.bundle) ?? []) io.out(`  ${line}`);
    if (uiUrl) io.out(`  Web UI: ${uiUrl}`);
  }
  const warning = noWorkerWarning(await workerPresence(client, taskQueue()), taskQueue());
  if (warning) io.note(`orbit: ${warning}`);
  if (!flags.follow) return 0;
  const { streamLogFor, failureHints } = await import('./follow-log');
  await follow(client, handle, io, { streamLog: streamLogFor(client, target, handle.workflowId, io) });
  const run = await awaitRun(handle, prepared.bundle.dir);
  run.bundleDir = await localFolder(client, handle.workflowId, run.bundleDir, io);
  io.out(describeRun(run, await summarize(run)));
  if (run.status !== 'succeeded') for (const l of await failureHints(run)) io.out(l);
  return run.status === 'succeeded' ? 0 : 1;
}
