import { NativeConnection, Worker, type NativeConnectionOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import { createCloneActivities } from '../activities/clone';
import { createFleetActivities } from '../activities/fleet';
import type { FleetHostSpec } from '../common/fleet';
import type { FleetSettings } from '../common/fleet-activities';
import type { HostRegistry } from '../hosts/registry';
import { localHostSpec } from '../hosts/local-resources';
import { workflowCode } from './workflow-bundle';

export interface OrbitWorkerOptions {
  connection?: NativeConnection;
  connectionOptions?: NativeConnectionOptions;
  namespace: string;
  taskQueue: string;
  hosts: HostRegistry;
  /** Secrets are resolved by name from here (default: this process's environment). */
  secretSource?: Record<string, string | undefined>;
  maxConcurrentActivityTaskExecutions?: number;
  /** Fault injection for tests; see ActivityDeps.pauseAfter. */
  pauseAfter?: Record<string, number>;
  /**
   * After shutdown is asked for (worker.shutdown(), SIGINT, SIGTERM): how long running activities may
   * go on before they are cancelled (default 0: at once). Polling stops at once either way.
   */
  shutdownGraceMs?: number;
  /** After shutdown is asked for: when the worker gives up waiting and run() rejects (default: never). */
  shutdownForceMs?: number;
  /** What each host offers the fleet, read at every reconciliation (default: "local" as detected, nothing else). */
  fleetHosts?: () => Promise<FleetHostSpec[]>;
  fleetSettings?: Partial<FleetSettings>;
  /** This worker's ORBIT_HOME: where it keeps its copies of store-held runs (default: ORBIT_HOME of this process). */
  home?: string;
  /** Store settings, ORBIT_S3_* (default: this process's environment; credentials always come from the AWS SDK's chain). */
  env?: NodeJS.ProcessEnv;
}

export { localHost } from './hosts';

/** A worker that runs the generic workflows (runBundle, runSweep, fleet), the host activities, cloneBundle and the fleet's activities. */
export async function createOrbitWorker(options: OrbitWorkerOptions): Promise<Worker> {
  const connection = options.connection ?? (await NativeConnection.connect(options.connectionOptions ?? {}));
  return Worker.create({
    connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    ...workflowCode(),
    activities: {
      ...createActivities({ hosts: options.hosts, secretSource: options.secretSource, pauseAfter: options.pauseAfter, home: options.home, env: options.env }),
      ...createCloneActivities(),
      ...createFleetActivities({ hosts: options.hosts, fleetHosts: options.fleetHosts ?? (async () => [await localHostSpec()]), settings: options.fleetSettings }),
    },
    maxConcurrentActivityTaskExecutions: options.maxConcurrentActivityTaskExecutions ?? 200,
    ...(options.shutdownGraceMs !== undefined ? { shutdownGraceTime: options.shutdownGraceMs } : {}),
    ...(options.shutdownForceMs !== undefined ? { shutdownForceTime: options.shutdownForceMs } : {}),
  });
}
