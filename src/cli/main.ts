/** orbit: submit and inspect runs. `orbit --help` lists the commands. */
import type { Client, WorkflowExecutionDescription, WorkflowHandle } from '@temporalio/client';
import type { Probe } from '../common/activities';
import { isOutcome } from '../common/run';
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { formatProblem, ValidationError } from '../bundle';
import { orbitHome, taskQueue, temporalTarget, workflowUiUrl, type TemporalTarget } from '../config';
import { InventoryNotFoundError } from '../hosts/inventory';
import { buildDefaultTaskRegistry } from '../plugins/registry';
import { statusQuery, type OnHostLost, type RunStatus } from '../workflows';
import { checkNamespace, CliError, EXIT_TEMPORAL, temporalCliError } from './errors';
import { awaitRun, describeRun, runFolder, runWhere, summarize } from './outcome';
import { loadRequest } from './request';
import { connectClient, prepareRun, startRun } from './submit';
import { StoreError } from '../store/store';
import { queuePlace } from './fleet';

const HELP = `orbit: durable ML jobs on rented machines, on Temporal

Usage:
  orbit submit FILE [--host auto|local|NAME] [--priority N] [--job-id ID] [--follow] [--hosts hosts.yaml]
         [--on-host-lost wait|fail|relaunch] [--max-relaunches N]
                                                             build a bundle from a request and queue it for a lease
                                                             (--host: auto, the default with hosts in hosts.yaml,
                                                             places it when capacity frees; NAME pins it)
  orbit validate FILE                                        check a request; build nothing
  orbit status RUN_ID                                        phase, host, progress, Web UI link
  orbit result RUN_ID                                        wait for the end; the result and the task's summary
  orbit diagnose RUN                                         which layer of a run failed (runtime, precheck, task,
                                                             progress, gpu), with the evidence; RUN is a run id or a
                                                             bundle folder; exit 0 healthy, 1 not
  orbit report RUN                                           write <bundle>/runtime/report.html: timeline, progress, GPU
                                                             charts, provenance and the diagnosis, viewable offline
  orbit list [--task T] [--phase P] [--host H] [--sweep S] [--query Q] [--limit N]
                                                             runs, newest first, found by Orbit's search attributes
                                                             (the Web UI's visibility queries); orbit list --help
  orbit sweep create|list|describe|pause|unpause|trigger|backfill|results|delete ...
                                                             scheduled sweeps over a matrix of requests; orbit sweep --help
  orbit queue                                                queued and running runs: position, priority, resources,
                                                             host, GPUs, waiting time
  orbit hosts list [--hosts FILE]                            the fleet's hosts: state, busy/free GPUs, cpus, memory
  orbit hosts drain|undrain NAME                             stop / resume new leases on a host
  orbit hosts check NAME [--hosts FILE]                      connect; print OS, free disk, GPUs (nvidia-smi -L), python3
  orbit pull RUN [--to DIR] [--only GLOB]                    bring a run's bundle and artifacts from its store, verified
  orbit store gc [--older-than 30d] [--dry-run]              drop blobs no kept run or sweep names (never a queued or
                                                             running run's); --older-than also drops ended runs' records
  orbit tasks                                                the task types this client knows
  orbit up                                                   start (or reuse) the embedded Temporal dev server
  orbit worker                                               run a worker until interrupted
  orbit demo                                                 dev server + worker + the example job, followed

Environment: ORBIT_HOME (bundles and work dirs, default ~/.orbit), ORBIT_TASK_QUEUE (orbit),
ORBIT_STORE (file://DIR, default file://$ORBIT_HOME/store, or s3://bucket/prefix with ORBIT_S3_ENDPOINT,
ORBIT_S3_REGION, ORBIT_S3_PATH_STYLE and the usual AWS credentials),
TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE / TEMPORAL_API_KEY / TEMPORAL_TLS_* (an existing cluster;
otherwise the embedded dev server on 127.0.0.1:ORBIT_TEMPORAL_PORT, default 7233).`;

/**
 * The run's folder here, brought from its store; when the store cannot give it, the verdict is still
 * printed (without the task's summary) and the store's problem is said on stderr.
 */
async function localFolder(client: Client, id: string, fallback: string | undefined): Promise<string | undefined> {
  try {
    return (await runFolder(client, id)) ?? fallback;
  } catch (e) {
    if (!(e instanceof StoreError)) throw e;
    console.error(`orbit: the run's files could not be brought here, so its summary is missing: ${e.message}`);
    return undefined;
  }
}

/** The newest probe a running monitor heartbeated (fresher than the workflow's own status between returns). */
function liveProbe(d: WorkflowExecutionDescription): Probe | undefined {
  for (const a of d.raw.pendingActivities ?? []) {
    const data = a.heartbeatDetails?.payloads?.[0]?.data;
    if (!data) continue;
    try {
      const beat = JSON.parse(Buffer.from(data).toString('utf8')) as { probe?: Probe };
      if (beat.probe) return beat.probe;
    } catch {
      /* not a monitor heartbeat */
    }
  }
  return undefined;
}

async function follow(handle: WorkflowHandle, out: (s: string) => void): Promise<void> {
  let shown = 0;
  let lastLog = '';
  const showLog = (line: string | undefined) => {
    if (line && line !== lastLog) {
      lastLog = line;
      out(`    ${line}`);
    }
  };
  for (;;) {
    let status: RunStatus | undefined;
    try {
      status = await handle.query(statusQuery);
    } catch {
      status = undefined; // not yet picked up by a worker
    }
    for (const p of status?.phases.slice(shown) ?? []) {
      out(`[${p.at.slice(11, 19)}] ${p.phase}${p.phase === 'running' && status?.launch?.pid ? ` (pid ${status.launch.pid} on ${p.host ?? status.host})` : ''}`);
    }
    shown = status?.phases.length ?? shown;
    showLog(status?.probe?.taskLogTail.at(-1));
    const d = await handle.describe();
    showLog(liveProbe(d)?.taskLogTail.at(-1));
    if (status && isOutcome(status.phase)) return;
    if (d.status.name !== 'RUNNING') return;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export async function main(argv: string[], out: (s: string) => void = console.log): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'list') return (await import('./sweep-entry')).orbitList(rest, out);
  if (command === 'sweep') return (await import('./sweep-entry')).orbitSweep(rest, out);
  if (command === 'pull') return (await import('./pull')).orbitPull(rest, out);
  if (command === 'store') return (await import('./store')).orbitStore(rest, out);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      host: { type: 'string' },
      priority: { type: 'string', default: '0' },
      hosts: { type: 'string' },
      'on-host-lost': { type: 'string', default: 'wait' },
      'max-relaunches': { type: 'string', default: '1' },
      'job-id': { type: 'string' },
      follow: { type: 'boolean', short: 'f', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (!command || command === 'help' || command === '--help' || command === '-h' || values.help) {
    out(HELP);
    return 0;
  }
  const registry = await buildDefaultTaskRegistry();
  const target = temporalTarget();
  const one = (what: string): string => {
    if (positionals.length !== 1) throw new CliError(`orbit ${command}: expected exactly one ${what}; see orbit --help`);
    return positionals[0]!;
  };

  switch (command) {
    case 'tasks':
      for (const p of registry.list()) out(`${p.taskType.padEnd(12)} ${p.description}`);
      return 0;
    case 'validate': {
      const loaded = await loadRequest(one('request file'), registry, values['job-id']);
      out(`${loaded.file}: valid ${loaded.plugin.taskType} request (job id ${loaded.jobId})`);
      return 0;
    }
    case 'submit': {
      const loaded = await loadRequest(one('request file'), registry, values['job-id']);
      const client = await connectClient(target);
      await checkNamespace(client, target);
      const onHostLost = values['on-host-lost'] as OnHostLost;
      if (!['fail', 'wait', 'relaunch'].includes(onHostLost)) throw new CliError(`--on-host-lost must be fail, wait or relaunch (got "${onHostLost}")`);
      const maxRelaunches = Number(values['max-relaunches']);
      if (!Number.isInteger(maxRelaunches) || maxRelaunches < 0) throw new CliError(`--max-relaunches must be a whole number, 0 or more (got "${values['max-relaunches']}")`);
      const priority = Number(values.priority);
      if (!Number.isInteger(priority) || Math.abs(priority) > 1000) throw new CliError(`--priority must be a whole number from -1000 to 1000 (got "${values.priority}")`);
      const prepared = await prepareRun(loaded, { host: values.host, priority, hostsFile: values.hosts, onHostLost, maxRelaunches, localMachine: target.embedded });
      const { handle, uiUrl } = await startRun(client, prepared, target).catch(async (e: unknown) => {
        const { rm } = await import('node:fs/promises');
        await rm(prepared.bundle.dir, { recursive: true, force: true });
        throw e;
      });
      out(`submitted ${handle.workflowId} (${loaded.plugin.taskType} on ${prepared.input.host})`);
      out(`  queued for ${prepared.input.host === 'auto' ? 'the first fitting host with free capacity' : `capacity on ${prepared.input.host}`} (orbit queue shows where it stands)`);
      out(`  bundle: ${prepared.bundle.dir} (store ${prepared.input.store}: ${prepared.upload.movedFiles} of ${prepared.upload.files} files sent, ${prepared.upload.movedBytes} bytes)`);
      if (uiUrl) out(`  Web UI: ${uiUrl}`);
      if (!values.follow) return 0;
      await follow(handle, out);
      const run = await awaitRun(handle, prepared.bundle.dir);
      run.bundleDir = await localFolder(client, handle.workflowId, run.bundleDir);
      out(describeRun(run, await summarize(run)));
      return run.status === 'succeeded' ? 0 : 1;
    }
    case 'status': {
      const id = one('run id');
      const client = await connectClient(target);
      const handle = client.workflow.getHandle(id);
      const d = await handle.describe().catch((e: Error) => {
        throw temporalCliError(e, target) ?? new CliError(`run ${id}: ${e.message}`, EXIT_TEMPORAL);
      });
      // A running workflow answers the query (through a worker); a closed one is read from its search attributes.
      const status = d.status.name === 'RUNNING' ? await handle.query(statusQuery).catch(() => undefined) : undefined;
      const attr = (name: string) => d.typedSearchAttributes.getAll().find((p) => p.key.name === name)?.value as string | undefined;
      const phase = status?.phase ?? attr('OrbitPhase');
      const host = status?.host ?? attr('OrbitHost');
      out(`run ${id}: ${d.status.name.toLowerCase()}${phase ? `, phase ${phase}${host ? ` on ${host}` : ''}` : ''}${status && status.hostState !== 'reachable' ? ` (host ${status.hostState})` : ''}`);
      const probe = (d.status.name === 'RUNNING' ? liveProbe(d) : undefined) ?? status?.probe;
      if (probe) out(`  process: ${probe.state}${probe.pid ? ` pid ${probe.pid}` : ''}, artifacts ${probe.artifactBytes} bytes`);
      for (const l of probe?.taskLogTail ?? []) out(`    ${l}`);
      if (status?.queued) out(`  ${await queuePlace(client, id, status.queued)}`);
      if (status?.lease) out(`  lease: ${status.lease.host} gpus [${status.lease.gpus.join(',')}] since ${status.lease.grantedAt} (token ${status.lease.token})`);
      if (status?.synced.files) out(`  synced while running: ${status.synced.files} files, ${status.synced.bytes} bytes`);
      for (const p of status?.phases ?? []) out(`  ${p.at}  ${p.phase}`);
      if (d.status.name !== 'RUNNING') {
        const ended = await awaitRun(handle).catch(() => undefined);
        if (ended?.error && ended.status !== 'succeeded') out(`  reason: ${ended.error}`);
      }
      const memo = (d.memo ?? {}) as Record<string, unknown>;
      if (typeof memo.store === 'string') out(`  store: ${memo.store} (bundle ${String(memo.digest)}; orbit pull ${id} brings it here)`);
      else if (typeof memo.bundleDir === 'string') out(`  bundle: ${memo.bundleDir}`);
      const ui = workflowUiUrl(target, id);
      if (ui) out(`  Web UI: ${ui}`);
      return 0;
    }
    case 'result': {
      const id = one('run id');
      const client = await connectClient(target);
      const where = await runWhere(client, id).catch((e: Error) => {
        throw temporalCliError(e, target) ?? new CliError(`run ${id}: ${e.message}`, EXIT_TEMPORAL);
      });
      const run = await awaitRun(client.workflow.getHandle(id), where.bundleDir);
      run.bundleDir = await localFolder(client, id, run.bundleDir);
      out(describeRun(run, await summarize(run)));
      return run.status === 'succeeded' ? 0 : 1;
    }
    case 'diagnose': {
      const { runDiagnose } = await import('./diagnose');
      return runDiagnose(one('run id or bundle folder'), target, out);
    }
    case 'report': {
      const { runReport } = await import('./report');
      return runReport(one('run id or bundle folder'), target, out);
    }
    case 'hosts': {
      const { runHosts } = await import('./hosts');
      return runHosts(positionals, values.hosts, out, target);
    }
    case 'queue': {
      const { runQueue } = await import('./fleet');
      return runQueue(target, out);
    }
    case 'up': {
      if (!target.embedded) throw new CliError(`TEMPORAL_ADDRESS is set (${target.address}): Orbit uses that cluster and starts no server`);
      const { ensureDevServer } = await import('../../temporal/dev-server');
      const s = await ensureDevServer({ port: target.port, detached: true });
      out(`${s.started ? 'started' : 'reusing'} Temporal dev server at ${s.address}; Web UI ${s.uiUrl}; database ${s.dbFile}`);
      return 0;
    }
    case 'worker': {
      const { runWorker } = await import('../worker/main');
      await runWorker();
      return 0;
    }
    case 'demo': {
      const { runDemo } = await import('./demo');
      const passOn = values.host ? ['--host', values.host] : [];
      const request = positionals[0] ?? join(__dirname, '..', '..', 'examples', 'train.yaml');
      return runDemo(out, () => main(['submit', request, '--follow', ...passOn], out));
    }
    default:
      throw new CliError(`unknown command "${command}"; see orbit --help`);
  }
}

/**
 * The CLI's one error handler: a user-facing failure is printed as one line (`orbit: ...`) with its
 * exit code (2 bad input, 3 Temporal); only a bug prints a stack (exit 1). Returns the exit code.
 */
export function reportError(e: unknown, err: (s: string) => void = console.error, target: () => Pick<TemporalTarget, 'address' | 'namespace'> = temporalTarget): number {
  if (e instanceof CliError) {
    err(`orbit: ${e.message}`);
    return e.exitCode;
  }
  if (e instanceof ValidationError) {
    const [only] = e.problems;
    if (e.problems.length === 1 && only) err(`orbit: ${e.what} is invalid: ${formatProblem(only)}`);
    else err(`orbit: ${e.what} is invalid:\n${e.problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`);
    return 2;
  }
  if (e instanceof StoreError) {
    err(`orbit: ${e.message}`);
    return e.problem === 'unreachable' ? 3 : e.problem === 'missing' || e.problem === 'corrupt' ? 1 : 2;
  }
  if (e instanceof InventoryNotFoundError) {
    err(`orbit: ${e.message}`);
    return 2;
  }
  let where: Pick<TemporalTarget, 'address' | 'namespace'>;
  try {
    where = target();
  } catch {
    where = { address: 'the configured address', namespace: 'the configured namespace' };
  }
  const temporal = temporalCliError(e, where);
  if (temporal) {
    err(`orbit: ${temporal.message}`);
    return temporal.exitCode;
  }
  err(e instanceof Error ? (e.stack ?? e.message) : String(e));
  return 1;
}

if (require.main === module) {
  main(process.argv.slice(2))
    .then((code) => process.exit(code))
    .catch((e: unknown) => process.exit(reportError(e)));
}

export { orbitHome, taskQueue };
