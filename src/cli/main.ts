/** orbit: submit and inspect runs. `orbit --help` lists the commands. */
import type { WorkflowHandle } from '@temporalio/client';
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { formatProblem, ValidationError } from '../bundle';
import { orbitHome, taskQueue, temporalTarget, workflowUiUrl } from '../config';
import { buildDefaultTaskRegistry } from '../plugins/registry';
import { statusQuery, type RunStatus } from '../workflows';
import { CliError } from './errors';
import { awaitRun, bundleDirOf, describeRun, summarize } from './outcome';
import { loadRequest } from './request';
import { connectClient, prepareRun, startRun } from './submit';

const HELP = `orbit: durable ML jobs on rented machines, on Temporal

Usage:
  orbit submit FILE [--host NAME] [--job-id ID] [--follow]   build a bundle from a request and run it
  orbit validate FILE                                        check a request; build nothing
  orbit status RUN_ID                                        phase, host, progress, Web UI link
  orbit result RUN_ID                                        wait for the end; the result and the task's summary
  orbit tasks                                                the task types this client knows
  orbit up                                                   start (or reuse) the embedded Temporal dev server
  orbit worker                                               run a worker until interrupted
  orbit demo                                                 dev server + worker + the example job, followed

Environment: ORBIT_HOME (bundles and work dirs, default ~/.orbit), ORBIT_TASK_QUEUE (orbit),
TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE / TEMPORAL_API_KEY / TEMPORAL_TLS_* (an existing cluster;
otherwise the embedded dev server on 127.0.0.1:ORBIT_TEMPORAL_PORT, default 7233).`;

const TERMINAL: RunStatus['phase'][] = ['succeeded', 'failed', 'cancelled', 'timed-out'];

async function follow(handle: WorkflowHandle, out: (s: string) => void): Promise<void> {
  let phase = '';
  let lastLog = '';
  for (;;) {
    let status: RunStatus | undefined;
    try {
      status = await handle.query(statusQuery);
    } catch {
      status = undefined; // not yet picked up by a worker
    }
    if (status && status.phase !== phase) {
      phase = status.phase;
      out(`[${new Date().toISOString().slice(11, 19)}] ${phase}${phase === 'running' && status.launch?.pid ? ` (pid ${status.launch.pid} on ${status.host})` : ''}`);
    }
    const tail = status?.probe?.taskLogTail.at(-1);
    if (tail && tail !== lastLog) {
      lastLog = tail;
      out(`    ${tail}`);
    }
    const d = await handle.describe();
    for (const a of d.raw.pendingActivities ?? []) {
      const details = a.heartbeatDetails?.payloads?.[0]?.data;
      if (!details) continue;
      try {
        const probe = JSON.parse(Buffer.from(details).toString('utf8')) as { taskLogTail?: string[] };
        const line = probe.taskLogTail?.at(-1);
        if (line && line !== lastLog) {
          lastLog = line;
          out(`    ${line}`);
        }
      } catch {
        /* not a probe */
      }
    }
    if (status && TERMINAL.includes(status.phase)) return;
    if (d.status.name !== 'RUNNING') return;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export async function main(argv: string[], out: (s: string) => void = console.log): Promise<number> {
  const [command, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      host: { type: 'string', default: 'local' },
      'job-id': { type: 'string' },
      follow: { type: 'boolean', short: 'f', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (!command || command === 'help' || command === '--help' || command === '-h' || values.help) {
    out(HELP);
    return 0;
  }
  const registry = buildDefaultTaskRegistry();
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
      const prepared = await prepareRun(loaded, { host: values.host! });
      const { handle, uiUrl } = await startRun(client, prepared, target).catch(async (e: unknown) => {
        const { rm } = await import('node:fs/promises');
        await rm(prepared.bundle.dir, { recursive: true, force: true });
        throw e;
      });
      out(`submitted ${handle.workflowId} (${loaded.plugin.taskType} on ${values.host})`);
      out(`  bundle: ${prepared.bundle.dir}`);
      if (uiUrl) out(`  Web UI: ${uiUrl}`);
      if (!values.follow) return 0;
      await follow(handle, out);
      const run = await awaitRun(handle, prepared.bundle.dir);
      out(describeRun(run, await summarize(run)));
      return run.status === 'succeeded' ? 0 : 1;
    }
    case 'status': {
      const id = one('run id');
      const client = await connectClient(target);
      const handle = client.workflow.getHandle(id);
      const d = await handle.describe().catch((e: Error) => {
        throw new CliError(`run ${id}: ${e.message}`, 3);
      });
      const status = await handle.query(statusQuery).catch(() => undefined);
      out(`run ${id}: ${d.status.name.toLowerCase()}${status ? `, phase ${status.phase} on ${status.host}` : ''}`);
      if (status?.probe) out(`  process: ${status.probe.state}${status.probe.pid ? ` pid ${status.probe.pid}` : ''}, artifacts ${status.probe.artifactBytes} bytes`);
      for (const l of status?.probe?.taskLogTail ?? []) out(`    ${l}`);
      for (const p of status?.phases ?? []) out(`  ${p.at}  ${p.phase}`);
      const dir = (d.memo as Record<string, unknown> | undefined)?.bundleDir;
      if (typeof dir === 'string') out(`  bundle: ${dir}`);
      const ui = workflowUiUrl(target, id);
      if (ui) out(`  Web UI: ${ui}`);
      return 0;
    }
    case 'result': {
      const id = one('run id');
      const client = await connectClient(target);
      const bundleDir = await bundleDirOf(client, id).catch((e: Error) => {
        throw new CliError(`run ${id}: ${e.message}`, 3);
      });
      const run = await awaitRun(client.workflow.getHandle(id), bundleDir);
      out(describeRun(run, await summarize(run)));
      return run.status === 'succeeded' ? 0 : 1;
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
      return runDemo(out, positionals[0] ?? join(__dirname, '..', '..', 'examples', 'train.yaml'));
    }
    default:
      throw new CliError(`unknown command "${command}"; see orbit --help`);
  }
}

if (require.main === module) {
  main(process.argv.slice(2))
    .then((code) => process.exit(code))
    .catch((e: unknown) => {
      if (e instanceof CliError) {
        console.error(`orbit: ${e.message}`);
        process.exit(e.exitCode);
      }
      if (e instanceof ValidationError) {
        console.error(`orbit: ${e.what} is invalid:\n${e.problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`);
        process.exit(2);
      }
      console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
      process.exit(1);
    });
}

export { orbitHome, taskQueue };
