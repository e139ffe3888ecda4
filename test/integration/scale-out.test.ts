/**
 * Scale-out: two `bin/orbit worker` processes on one task queue share the runs; SIGKILL to the one
 * holding the most monitors moves every one of its monitors to the other within the heartbeat
 * timeout (plus the first retry's backoff and one poll), no job starts twice, and every run succeeds.
 * Monitors run on the task queue's own monitors queue (src/common/task-queues.ts).
 */
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runBundle, type RunBundleInput, type RunResult } from '../../src/workflows';
import { monitorQueueOf } from '../../src/common/task-queues';
import { scriptBundle, tempDir } from '../helpers/bundles';
import { recordHistory } from '../helpers/histories';
import { runOutcome } from '../helpers/run-outcome';
import { startSshd, writeHostsFile, type SshdServer } from '../helpers/sshd';
import { until, within } from '../helpers/wait';
import { WorkerProcesses } from '../helpers/worker-processes';

const RUNS = 8;
const HEARTBEAT_MS = 4_000;
const POLL_MS = 500;

/** A 25 s job that records its start and beats a file every second. */
const JOB = `echo "started $$" >> artifacts/starts.txt
for i in $(seq 1 25); do date +%s.%N > artifacts/beat.txt; echo "step $i"; sleep 1; done
echo done > artifacts/final.txt`;

/** The process group a worker identity ("pid@host") belongs to: the worker process started it as its own. */
function groupOf(identity: string): number | undefined {
  const pid = Number(identity.split('@')[0]);
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  } catch {
    return undefined;
  }
}

interface MonitorNow {
  identity: string;
  attempt: number;
  lastHeartbeatMs: number;
}

/** The run's monitor as the server sees it now (pending activity), if one is pending and started. */
async function monitorOf(handle: WorkflowHandle): Promise<MonitorNow | undefined> {
  const d = await handle.describe();
  const a = (d.raw.pendingActivities ?? []).find((p) => p.activityType?.name === 'monitor' && p.lastStartedTime);
  if (!a?.lastWorkerIdentity) return undefined;
  const seconds = Number(a.lastHeartbeatTime?.seconds ?? 0) + (a.lastHeartbeatTime?.nanos ?? 0) / 1e9;
  return { identity: a.lastWorkerIdentity, attempt: a.attempt ?? 1, lastHeartbeatMs: seconds * 1000 };
}

describe('two workers share the runs, and a killed one hands its monitors over', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let host: SshdServer;
  let connection: Connection;
  let client: Client;
  let workers: WorkerProcesses;
  const taskQueue = `scale-out-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    tmp = await tempDir('orbit-scale-out-');
    host = await startSshd({ name: 'scale-out' });
    const hostsFile = join(tmp.dir, 'hosts.yaml');
    await writeHostsFile(hostsFile, [], [host.hostsEntry({ resources: { cpus: 64, memoryGb: 256 } })]);
    connection = await Connection.connect({ address: inject('temporalAddress') });
    client = new Client({ connection });
    workers = new WorkerProcesses(join(tmp.dir, 'logs'), () => {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        ORBIT_HOME: join(tmp.dir, 'home'),
        ORBIT_TEMPORAL_PORT: inject('temporalAddress').split(':').at(-1),
        ORBIT_TASK_QUEUE: taskQueue,
        ORBIT_HOSTS: hostsFile,
      };
      delete env.TEMPORAL_ADDRESS;
      return env;
    });
  });

  afterAll(async () => {
    await workers?.killAll();
    await connection?.close();
    await host?.stop();
    if (!process.env.ORBIT_KEEP_TEST_FILES) await tmp?.cleanup();
  });

  /** The workers' logs, for a failure's message. */
  async function workerLogs(): Promise<string> {
    const dir = join(tmp.dir, 'logs');
    const names = await readdir(dir).catch(() => [] as string[]);
    return (await Promise.all(names.sort().map(async (n) => `--- ${n}\n${(await readFile(join(dir, n), 'utf8')).slice(-3000)}`))).join('\n');
  }

  it('moves every monitor of the killed worker to the other within the heartbeat timeout; no job starts twice', async () => {
    const procs: ChildProcess[] = await Promise.all([workers.start({}, 'w1'), workers.start({}, 'w2')]);
    const { bundle, digest } = await scriptBundle(join(tmp.dir, 'template'), JOB);
    const handles = await Promise.all(
      Array.from({ length: RUNS }, async (_, i) => {
        const runId = `so-${i}-${randomUUID().slice(0, 6)}`;
        const bundleDir = join(tmp.dir, 'bundles', runId);
        const b = await scriptBundle(bundleDir, JOB);
        expect(b.digest).toBe(digest);
        const input: RunBundleInput = {
          runId,
          bundleDir,
          digest,
          host: host.name,
          logFile: bundle.spec.entrypoint.logFile,
          timeouts: { ...bundle.spec.timeouts, killGraceSeconds: 2 },
          syncIntervalMs: 2_000,
          tuning: { pollIntervalMs: POLL_MS, heartbeatTimeoutMs: HEARTBEAT_MS, probeTimeoutMs: 3_000 },
        };
        return client.workflow.start(runBundle, { taskQueue, workflowId: runId, args: [input] });
      }),
    );
    const outcomes = handles.map((h) => runOutcome(h));

    // Every run monitored, each monitor heartbeating.
    const before = await until(
      `${RUNS} monitors started and heartbeating`,
      async () => {
        const ms = await Promise.all(handles.map(monitorOf));
        return ms.every((m) => m && m.lastHeartbeatMs > 0) ? (ms as MonitorNow[]) : undefined;
      },
      90_000,
      250,
    ).catch(async (e: Error) => {
      const now = await Promise.all(handles.map(async (h) => `${h.workflowId}: ${JSON.stringify((await h.describe()).raw.pendingActivities?.map((a) => [a.activityType?.name, a.lastWorkerIdentity, a.attempt, a.lastFailure?.message]))}`));
      throw new Error(`${e.message}\n${now.join('\n')}\n${await workerLogs()}`);
    });
    const byIdentity = new Map<string, number>();
    for (const m of before) byIdentity.set(m.identity, (byIdentity.get(m.identity) ?? 0) + 1);
    const [victimId] = [...byIdentity].sort((a, b) => b[1] - a[1])[0]!;
    const victim = procs.find((p) => p.pid === groupOf(victimId));
    expect(victim, `worker of ${victimId} among ${procs.map((p) => p.pid)}`).toBeDefined();
    const moving = handles.filter((_, i) => before[i]!.identity === victimId);
    console.log(`scale-out: monitors per worker before the kill: ${[...byIdentity].map(([k, v]) => `${k} ${v}`).join(', ')}`);

    await workers.kill(victim!);
    const killedAt = Date.now();
    // Each moved monitor runs on the survivor, heartbeating after the kill.
    const movedAfter = await Promise.all(
      moving.map(async (h) => {
        const m = await until(
          `${h.workflowId}'s monitor on the other worker`,
          async () => {
            const now = await monitorOf(h);
            return now && now.identity !== victimId && now.lastHeartbeatMs > killedAt ? now : undefined;
          },
          60_000,
          100,
        );
        return { at: Date.now() - killedAt, attempt: m.attempt };
      }),
    );
    const worst = Math.max(...movedAfter.map((m) => m.at));
    console.log(`scale-out: ${moving.length} monitors moved within ${(worst / 1000).toFixed(1)} s of the kill (heartbeat timeout ${HEARTBEAT_MS / 1000} s)`);
    // The heartbeat timeout, the first retry's 1 s backoff, a poll, and this test's own 100 ms polling of describe.
    expect(worst).toBeLessThan(HEARTBEAT_MS + 1_000 + POLL_MS + 2_500);
    for (const m of movedAfter) expect(m.attempt).toBeGreaterThan(1);

    const results = await within(120_000, 'every run to end', Promise.all(outcomes));
    for (const r of results as RunResult[]) expect(r.status, r.reasons.join('; ')).toBe('succeeded');
    for (const h of handles) {
      const starts = (await readFile(join(host.workRoot, h.workflowId, 'artifacts/starts.txt'), 'utf8')).trim().split('\n');
      expect(starts, h.workflowId).toHaveLength(1);
    }
    // The monitors were on their own queue, the rest on the run's.
    const history = await moving[0]!.fetchHistory();
    const queues = new Map<string, string>();
    for (const e of history.events ?? []) {
      const a = e.activityTaskScheduledEventAttributes;
      if (a?.activityType?.name && a.taskQueue?.name) queues.set(a.activityType.name, a.taskQueue.name);
    }
    expect(queues.get('monitor')).toBe(monitorQueueOf(taskQueue));
    expect(queues.get('stage')).toBe(taskQueue);
    expect(queues.get('collect')).toBe(taskQueue);
    await recordHistory('run-bundle-monitor-handover', moving[0]!);
  });
});
