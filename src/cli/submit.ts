/** Builds a frozen bundle from a request through its plugin, then starts runBundle for it. */
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Bundle } from '../bundle';
import { orbitHome, taskQueue, temporalTarget, workflowUiUrl, type TemporalTarget } from '../config';
import { AUTO_HOST, LOCAL_HOST, loadInventory, placeJob, PlacementError, unmetRequirements, type JobRequirements } from '../hosts/inventory';
import { runBundle, type OnHostLost, type RunBundleInput } from '../workflows';
import { runInputFor, runLabelsFor, runSpecOf } from '../common/run-input';
import type { OnUnhealthy } from '../common/health';
import { describeResources, unmetBy } from '../common/fleet';
import { localHostSpec } from '../hosts/local-resources';
import { pushBundle, writeRunRecord, type Transfer } from '../store/cas';
import { configuredStore } from '../store/open';
import { CliError } from './errors';
import type { LoadedRequest } from './request';

export interface PreparedRun {
  runId: string;
  bundle: Bundle;
  digest: string;
  input: RunBundleInput;
  /** What submitting sent to the store (only blobs it lacked). */
  upload: Transfer;
}

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

/** A readable, unique run id: `<jobId>-<yyyymmdd-hhmmss>-<4 hex>`. */
export function newRunId(jobId: string, now = new Date()): string {
  return `${jobId}-${stamp(now)}-${Math.floor(Math.random() * 0x10000)
    .toString(16)
    .padStart(4, '0')}`;
}

/**
 * Builds the bundle under `<orbitHome>/runs/<runId>` through a temporary folder, freezes it, then
 * renames it into place: a failed build leaves nothing behind.
 */
export interface RunOptions {
  /** "auto" (the fleet places the run; the default when hosts.yaml lists hosts), "local" (the default otherwise) or a host name. */
  host?: string;
  /** Queue priority (higher first; default 0). */
  priority?: number;
  /** The worker runs on this machine (the embedded default): a job for "local" is checked against what this machine offers. */
  localMachine?: boolean;
  env?: NodeJS.ProcessEnv;
  /** hosts.yaml path (else ORBIT_HOSTS, ./hosts.yaml, ~/.orbit/hosts.yaml). */
  hostsFile?: string;
  onHostLost?: OnHostLost;
  maxRelaunches?: number;
  /** What an unhealthy verdict does, for every rule (`--on-unhealthy`); absent: each rule's own (job.json). */
  onUnhealthy?: OnUnhealthy;
}

/**
 * Checks that some host could ever hold the job (refused here, naming what each host lacks, rather
 * than queued forever) and says where it queues: "auto" (the fleet places it when capacity frees) or
 * the pinned host; for relaunches, the other fitting hosts.
 */
export async function placeRun(resources: JobRequirements, options: RunOptions): Promise<{ host: string; relaunchHosts: string[] }> {
  const inventory = await loadInventory({ path: options.hostsFile, env: options.env });
  const pin = options.host ?? (inventory.hosts.length ? AUTO_HOST : LOCAL_HOST);
  let placement;
  try {
    placement = placeJob(resources, inventory, { pin });
  } catch (e) {
    if (e instanceof PlacementError) throw new CliError(`--host ${pin}: ${e.message}`);
    throw e;
  }
  if (placement.kind === 'local' && options.localMachine) {
    const unmet = unmetBy(resources, await localHostSpec(inventory.local));
    if (unmet.length) {
      throw new CliError(
        `--host ${pin}: this machine (local) cannot take the job (needs ${describeResources(resources)}): local: ${unmet.join('; ')}; ` +
          'lower the job\'s resources, declare more in hosts.yaml under local.resources, or add a host to hosts.yaml',
      );
    }
  }
  const auto = pin === AUTO_HOST && placement.kind === 'ssh';
  const others = inventory.hosts.filter((h) => (auto || h.name !== placement.name) && unmetRequirements(resources, h).length === 0).map((h) => h.name);
  return { host: auto ? AUTO_HOST : placement.name, relaunchHosts: others };
}

export async function prepareRun(loaded: LoadedRequest, options: RunOptions): Promise<PreparedRun> {
  const runId = newRunId(loaded.jobId);
  const finalDir = join(orbitHome(options.env), 'runs', runId);
  const buildDir = `${finalDir}.building`;
  await mkdir(dirname(finalDir), { recursive: true });
  try {
    await loaded.plugin.buildBundle(buildDir, { request: loaded.request, jobId: loaded.jobId, baseDir: loaded.baseDir });
    const built = await Bundle.open(buildDir);
    await built.freeze();
    await rename(buildDir, finalDir);
  } catch (e) {
    await rm(buildDir, { recursive: true, force: true });
    throw e;
  }
  const bundle = await Bundle.open(finalDir);
  // Frozen a moment ago; pushBundle below hashes every file once more and refuses a digest that no longer holds.
  const digest = await bundle.frozenDigest();
  if (!digest) throw new Error(`bundle ${finalDir} was not frozen`);
  const placed = await placeRun(bundle.spec.resources, options).catch(async (e: unknown) => {
    await rm(finalDir, { recursive: true, force: true });
    throw e;
  });
  // The bundle goes to the store (its blobs the store lacks, then its manifest) before the run exists.
  const store = await configuredStore(options.env).catch(async (e: unknown) => {
    await rm(finalDir, { recursive: true, force: true });
    throw e;
  });
  const upload = await (async () => {
    await store.check();
    const sent = await pushBundle(store, bundle.dir, digest);
    await writeRunRecord(store, { runId, digest });
    return sent;
  })().catch(async (e: unknown) => {
    await rm(finalDir, { recursive: true, force: true });
    throw e;
  });
  const input = runInputFor({ runId, store: store.url, digest }, runSpecOf(bundle.spec), {
    host: placed.host,
    priority: options.priority,
    onHostLost: options.onHostLost,
    maxRelaunches: options.maxRelaunches,
    relaunchHosts: placed.relaunchHosts,
    ...(options.onUnhealthy ? { onUnhealthy: options.onUnhealthy } : {}),
  });
  return { runId, bundle, digest, input, upload };
}

export { connectClient } from './connect';

/** Starts runBundle for a prepared run; returns the workflow id and its Web UI link. */
export async function startRun(client: Client, prepared: PreparedRun, target: TemporalTarget = temporalTarget()) {
  const spec = prepared.bundle.spec;
  try {
    const handle = await client.workflow.start(runBundle, {
      taskQueue: taskQueue(),
      workflowId: prepared.runId,
      args: [prepared.input],
      ...runLabelsFor(prepared.input, runSpecOf(spec), {
        name: spec.jobId,
        memo: {
          jobId: spec.jobId,
          resources: spec.resources,
          entrypoint: spec.entrypoint.command.join(' '),
          createdAt: spec.createdAt,
          expectedOutputs: spec.expectedOutputs.map((o) => o.path),
          /** What the plugin recorded about the job (e.g. its checkpoint, environments, output). */
          metadata: spec.metadata,
        },
        details: [`entrypoint ${spec.entrypoint.command.join(' ')}`],
      }),
    });
    return { handle, workflowId: handle.workflowId, uiUrl: workflowUiUrl(target, handle.workflowId) };
  } catch (e) {
    if (e instanceof WorkflowExecutionAlreadyStartedError) throw new CliError(`run ${prepared.runId} already exists`, 3);
    throw e;
  }
}
