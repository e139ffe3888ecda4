/**
 * `orbit demo`: the whole path on the embedded default. Starts (or reuses) the dev server, runs a
 * worker in this process, submits the example job, follows it, and prints where everything is.
 */
import { installQuietRuntime } from '../worker/logging';
import { orbitHome, taskQueue, temporalTarget } from '../config';
import { fleetHostsFromInventory, loadHostRegistry } from '../worker/hosts';
import { createOrbitWorker } from '../worker/worker';
import { CliError } from './errors';

/** `submitAndFollow` is `orbit submit <request> --follow`, run while this process hosts the worker. */
export async function runDemo(out: (s: string) => void, submitAndFollow: () => Promise<number>): Promise<number> {
  const target = temporalTarget();
  if (target.embedded) {
    const { ensureDevServer } = await import('../../temporal/dev-server');
    const s = await ensureDevServer({ port: target.port, detached: true });
    out(`${s.started ? 'started' : 'reusing'} Temporal dev server at ${s.address} (Web UI ${s.uiUrl})`);
  }
  // The worker runs in this process: its logs would interleave with the run's phases. Warnings and errors only.
  installQuietRuntime('warn');
  const hosts = await loadHostRegistry(orbitHome());
  const worker = await createOrbitWorker({
    connectionOptions: target.connectionOptions,
    namespace: target.namespace,
    taskQueue: taskQueue(),
    hosts,
    fleetHosts: fleetHostsFromInventory(),
  }).catch((e: Error) => {
    throw new CliError(`cannot start a worker against ${target.address}: ${e.message}`, 3);
  });
  const running = worker.run();
  try {
    return await submitAndFollow();
  } finally {
    worker.shutdown();
    await running;
    await hosts.close();
  }
}
