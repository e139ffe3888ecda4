import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { FleetHostSpec } from '../../src/common/fleet';
import { HostRegistry } from '../../src/hosts/registry';
import { createOrbitWorker, localHost } from '../../src/worker/worker';

/** A local host with room for many small jobs at once. */
export const ROOMY_LOCAL: FleetHostSpec = { name: 'local', gpus: [], cpus: 64, memoryGb: 256, labels: [] };

export interface InProcessWorker {
  client: Client;
  taskQueue: string;
  /** Stops the worker and closes both connections. */
  stop(): Promise<void>;
}

/**
 * A real Orbit worker inside the test process, on its own task queue, serving the local host with
 * its work root under `orbitHome`, plus a client to the same server.
 */
export async function startInProcessWorker(options: {
  address: string;
  taskQueue: string;
  orbitHome: string;
  secretSource?: Record<string, string | undefined>;
  /** What "local" offers the fleet (default: room for many jobs at once, so tests are not serialized by the test machine's size). */
  local?: Partial<FleetHostSpec>;
}): Promise<InProcessWorker> {
  const nativeConnection = await NativeConnection.connect({ address: options.address });
  const worker = await createOrbitWorker({
    connection: nativeConnection,
    namespace: 'default',
    taskQueue: options.taskQueue,
    hosts: new HostRegistry([localHost(options.orbitHome)]),
    home: options.orbitHome,
    secretSource: options.secretSource,
    fleetHosts: async () => [{ ...ROOMY_LOCAL, ...options.local }],
    fleetSettings: { reconcileEveryMs: 1_000 },
  });
  const running = worker.run();
  const connection = await Connection.connect({ address: options.address });
  return {
    client: new Client({ connection }),
    taskQueue: options.taskQueue,
    stop: async () => {
      worker.shutdown();
      await running;
      await connection.close();
      await nativeConnection.close();
    },
  };
}
