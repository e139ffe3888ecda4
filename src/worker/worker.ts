import { NativeConnection, Worker, type NativeConnectionOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import { WorkerProbes } from '../activities/probes';
import { SshTransport } from '../hosts/ssh';
import { createCloneActivities } from '../activities/clone';
import { createFleetActivities } from '../activities/fleet';
import type { FleetHostSpec } from '../common/fleet';
import type { FleetSettings } from '../common/fleet-activities';
import type { HostRegistry } from '../hosts/registry';
import { localHostSpec } from '../hosts/local-resources';
import { DEFAULT_MONITOR_SLOTS, DEFAULT_TRANSFER_SLOTS, monitorQueueOf } from '../common/task-queues';
import { workflowCode } from './workflow-bundle';

export { DEFAULT_MONITOR_SLOTS, DEFAULT_TRANSFER_SLOTS };

export interface OrbitWorkerOptions {
  connection?: NativeConnection;
  connectionOptions?: NativeConnectionOptions;
  namespace: string;
  taskQueue: string;
  hosts: HostRegistry;
  /** Secrets are resolved by name from here (default: this process's environment). */
  secretSource?: Record<string, string | undefined>;
  /**
   * Slots for the short activities of the run's own task queue: stage, launch, collect, probes,
   * stops, the fleet's (default DEFAULT_TRANSFER_SLOTS).
   */
  transferSlots?: number;
  /** Slots for monitors, on the monitors' own task queue: one per running job this worker watches (default DEFAULT_MONITOR_SLOTS). */
  monitorSlots?: number;
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

/**
 * One Orbit worker: two SDK workers on one connection. The first polls the task queue for workflow
 * tasks (runBundle, runSweep, fleet) and the short activities; the second polls the monitors' queue
 * (../common/task-queues.ts) for monitors only. Each has its own slot budget.
 */
export class OrbitWorker {
  constructor(
    readonly main: Worker,
    readonly monitors: Worker,
    private readonly hosts: HostRegistry,
    private readonly probes: WorkerProbes,
  ) {}

  /**
   * What the worker does, for its stats line (ORBIT_WORKER_STATS_SECONDS): running monitors and
   * other activities, batched probes sent, and commands sent over SSH per host, all counted since start.
   */
  stats(): WorkerStats {
    const ssh: Record<string, number> = {};
    for (const name of this.hosts.names()) {
      const t = this.hosts.get(name).transport;
      if (t instanceof SshTransport) ssh[name] = t.counts.commands;
    }
    const batches = Object.values(this.probes.counts()).reduce((a, c) => a + c.batches, 0);
    return {
      monitors: this.monitors.getStatus().numInFlightActivities,
      otherActivities: this.main.getStatus().numInFlightActivities,
      probeBatches: batches,
      sshCommands: ssh,
      rssBytes: process.memoryUsage.rss(),
    };
  }

  /** Runs both until shutdown; when one stops with an error the other is shut down too, and the error is thrown. */
  async run(): Promise<void> {
    const workers = [this.main, this.monitors];
    await Promise.all(
      workers.map((w) =>
        w.run().catch((e: unknown) => {
          this.shutdown();
          throw e;
        }),
      ),
    );
  }

  /** Asks both to stop polling and drain (see OrbitWorkerOptions.shutdownGraceMs). */
  shutdown(): void {
    for (const w of [this.main, this.monitors]) if (w.getState() === 'RUNNING') w.shutdown();
  }

  /** Activities running now, on both queues. */
  get inFlightActivities(): number {
    return this.main.getStatus().numInFlightActivities + this.monitors.getStatus().numInFlightActivities;
  }
}

export interface WorkerStats {
  monitors: number;
  otherActivities: number;
  probeBatches: number;
  sshCommands: Record<string, number>;
  rssBytes: number;
}

/** A worker that runs the generic workflows (runBundle, runSweep, fleet), the host activities, cloneBundle and the fleet's activities. */
export async function createOrbitWorker(options: OrbitWorkerOptions): Promise<OrbitWorker> {
  const connection = options.connection ?? (await NativeConnection.connect(options.connectionOptions ?? {}));
  const probes = new WorkerProbes();
  const activities = {
    ...createActivities({ probes, hosts: options.hosts, secretSource: options.secretSource, pauseAfter: options.pauseAfter, home: options.home, env: options.env }),
    ...createCloneActivities(),
    ...createFleetActivities({ hosts: options.hosts, fleetHosts: options.fleetHosts ?? (async () => [await localHostSpec()]), settings: options.fleetSettings }),
  };
  const shutdown = {
    ...(options.shutdownGraceMs !== undefined ? { shutdownGraceTime: options.shutdownGraceMs } : {}),
    ...(options.shutdownForceMs !== undefined ? { shutdownForceTime: options.shutdownForceMs } : {}),
  };
  const main = await Worker.create({
    connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    ...workflowCode(),
    activities,
    maxConcurrentActivityTaskExecutions: options.transferSlots ?? DEFAULT_TRANSFER_SLOTS,
    // A thousand runs make bursts of workflow tasks (every grant, stage, launch and monitor return is
    // one). With the default fixed 10 pollers, 2 of them on the shared queue, a burst outgrew the
    // sticky queue's 10 s, fell back to the shared queue and waited there for minutes (measured:
    // backlog 460 tasks, 7 min old, drained at 1.5/s). Pollers that scale with the server's backlog
    // feedback, and a longer sticky wait, keep the tasks flowing.
    workflowTaskPollerBehavior: { type: 'autoscaling', minimum: 2, initial: 10, maximum: 40 },
    activityTaskPollerBehavior: { type: 'autoscaling', minimum: 2, initial: 5, maximum: options.transferSlots ?? DEFAULT_TRANSFER_SLOTS },
    nonStickyToStickyPollRatio: 0.5,
    stickyQueueScheduleToStartTimeout: '30s',
    ...shutdown,
  });
  const monitors = await Worker.create({
    connection,
    namespace: options.namespace,
    taskQueue: monitorQueueOf(options.taskQueue),
    activities: { monitor: activities.monitor },
    maxConcurrentActivityTaskExecutions: options.monitorSlots ?? DEFAULT_MONITOR_SLOTS,
    // The SDK sends a heartbeat at most every 0.8 x the timeout (24 s of 30 s), leaving 6 s for a
    // loaded machine to get it out: with 1000 monitors on 2 busy cores, 170 of them timed out so.
    // At most 10 s apart leaves two-thirds of the timeout (at 2.4x the heartbeat calls: 100/s for 1000).
    maxHeartbeatThrottleInterval: '10s',
    // Monitors wait; they need no more pollers than the default's few.
    ...shutdown,
  });
  return new OrbitWorker(main, monitors, options.hosts, probes);
}
