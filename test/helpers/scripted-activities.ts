/**
 * Orbit's activities replaced by a script, for workflow tests of runBundle's branches on the real dev
 * server: each run id gets a Script that says what monitor, probeOnce and collect return (or throw),
 * call by call, and records every call with its input. Nothing touches a host.
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { createFleetActivities } from '../../src/activities/fleet';
import type { FleetHostSpec } from '../../src/common/fleet';
import { LocalTransport } from '../../src/hosts/local-transport';
import { HostRegistry } from '../../src/hosts/registry';
import { ShellHost } from '../../src/hosts/shell-host';
import type { OrbitActivities } from '../../src/activities';
import { monitorQueueOf } from '../../src/common/task-queues';
import type { CollectSummary, MonitorResult, Probe } from '../../src/common/activities';

export type Step<T> = T | Error;

export interface Script {
  /** Results of successive monitor calls; the last one repeats. An Error fails that attempt. */
  monitor: Step<Partial<MonitorResult>>[];
  probe?: Step<Partial<Probe>>[];
  collect?: Step<Partial<CollectSummary>>[];
  /** Successive stage calls: an Error fails that attempt (default: staged). */
  stage?: Step<true>[];
  /** Results of successive cancelRun calls (default: stopped). */
  cancel?: Step<'stopped' | 'killed' | 'not-running'>[];
  /** Every call, in order: activity name and its input. */
  calls: { name: string; input: Record<string, unknown> }[];
}

export function summary(over: Partial<CollectSummary> = {}): CollectSummary {
  return {
    filesFetched: 3,
    bytesFetched: 30,
    filesSkipped: 0,
    manifestPresent: true,
    verified: true,
    verifiedCount: 3,
    missing: [],
    mismatched: [],
    refused: [],
    missingOutputs: [],
    totals: { missing: 0, mismatched: 0, refused: 0 },
    ...over,
  };
}

export function probe(over: Partial<Probe> = {}): Probe {
  return { state: 'running', pid: 4242, exitCode: null, artifactBytes: 0, runtimeLogTail: [], taskLogTail: [], ...over };
}

export const finished: Partial<MonitorResult> = { finished: true, probe: probe({ state: 'exited', exitCode: 0 }) };
export const hostLost: Partial<MonitorResult> = { finished: true, hostLost: true, hostState: 'lost' };

function next<T>(steps: Step<T>[] | undefined, i: number, fallback: T): T {
  const s = steps && steps.length ? steps[Math.min(i, steps.length - 1)]! : fallback;
  if (s instanceof Error) throw s;
  return s;
}

export function scriptedActivities(scripts: Map<string, Script>) {
  const count = new Map<string, number>();
  const on = (name: string, input: { runId?: string; bundleDir?: string }) => {
    const runId = input.runId ?? [...scripts.keys()].find((k) => input.bundleDir?.includes(k));
    const script = runId ? scripts.get(runId) : undefined;
    if (!script) throw new Error(`no script for ${name} ${JSON.stringify(input)}`);
    script.calls.push({ name, input: input as Record<string, unknown> });
    const key = `${runId}/${name}`;
    const i = count.get(key) ?? 0;
    count.set(key, i + 1);
    return { script, i };
  };
  const acts: OrbitActivities = {
    stage: async (input) => {
      const { script, i } = on('stage', input);
      next(script.stage, i, true);
      return { filesSent: 5, bytesSent: 500, filesSkipped: 0 };
    },
    launch: async (input) => (on('launch', input), { pid: 4242, alreadyLaunched: false }),
    monitor: async (input) => {
      const { script, i } = on('monitor', input);
      return { finished: false, timedOut: false, hostLost: false, hostState: 'reachable', synced: { files: 0, bytes: 0 }, ...next(script.monitor, i, finished) };
    },
    probeOnce: async (input) => {
      const { script, i } = on('probeOnce', input);
      return probe(next(script.probe, i, { state: 'exited', exitCode: 0 }));
    },
    stageResume: async (input) => (on('stageResume', input), { remotePath: `/work/${input.runId}/resume/artifacts/ckpt/step-4`, localPath: 'artifacts/ckpt/step-4', filesSent: 2 }),
    reportLocal: async (input) => (on('reportLocal', input), summary({ filesFetched: 0, bytesFetched: 0, verified: false, verifiedCount: 1 })),
    cancelRun: async (input) => {
      const { script, i } = on('cancelRun', input);
      return next(script.cancel, i, 'stopped' as const);
    },
    collect: async (input) => {
      const { script, i } = on('collect', input);
      return summary(next(script.collect, i, {}));
    },
  };
  return acts;
}

/** The fleet of scripted runs: "local" and the hosts the scripts name, each with room for many jobs. */
export const SCRIPTED_FLEET: FleetHostSpec[] = ['local', 'host-a', 'host-b', 'host-c'].map((name) => ({ name, gpus: [0, 1, 2, 3], cpus: 64, memoryGb: 256, labels: [] }));

/** A worker on its own task queue that runs the real workflows (the fleet's with its real activities over SCRIPTED_FLEET) and the given run activities. */
export async function startScriptedWorker(address: string, taskQueue: string, activities: object, fleet: FleetHostSpec[] = SCRIPTED_FLEET) {
  const connection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection,
    taskQueue,
    workflowsPath: require.resolve('../../src/workflows/index.ts'),
    activities: {
      ...createFleetActivities({ hosts: new HostRegistry(fleet.map((f) => new ShellHost({ name: f.name, transport: new LocalTransport(), workRoot: '/tmp/orbit-scripted' }))), fleetHosts: async () => fleet, settings: { reconcileEveryMs: 500 } }),
      ...activities,
    },
  });
  // Monitors go to the monitors' own queue (src/common/task-queues.ts), served by a second worker as `orbit worker` does.
  const monitors = await Worker.create({ connection, taskQueue: monitorQueueOf(taskQueue), activities });
  const running = Promise.all([worker.run(), monitors.run()]);
  return {
    stop: async () => {
      worker.shutdown();
      monitors.shutdown();
      await running;
      await connection.close();
    },
  };
}
