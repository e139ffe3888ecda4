/**
 * `bin/orbit worker` and signals, as a process manager sends them: SIGKILL leaves nothing of the
 * worker behind (the launcher is one process, not a parent with a node child that keeps polling);
 * SIGTERM drains: polling stops, a running activity finishes within the grace (a monitor still
 * running after it is cancelled, its job untouched), the worker exits 0 with one line, and another
 * worker finishes the run.
 */
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { runBundle, type RunBundleInput, type RunResult } from '../../src/workflows';
import { scriptBundle, tempDir } from '../helpers/bundles';
import { processGone } from '../helpers/processes';
import { within } from '../helpers/wait';

const ORBIT = resolve(__dirname, '../../bin/orbit');

interface StartedWorker {
  proc: ChildProcess;
  /** Everything it printed so far, both streams. */
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Live processes whose environment holds `ORBIT_TASK_QUEUE=<queue>`: the worker and anything it left. */
function processesServing(queue: string): number[] {
  const marker = `ORBIT_TASK_QUEUE=${queue}`;
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {
      continue; // gone, or not ours
    }
    if (environ.split('\0').includes(marker) && !processGone(pid)) pids.push(pid);
  }
  return pids.sort((a, b) => a - b);
}


/** `<pid> <command line>`, for a message. */
const commandOf = (pid: number): string => `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim()}`;

async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

describe('bin/orbit worker: signals reach the worker itself', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let connection: Connection;
  let client: Client;
  let port: string;
  const queues: string[] = [];
  const workers = new Set<ChildProcess>();

  beforeAll(async () => {
    tmp = await tempDir('orbit-signals-');
    const address = inject('temporalAddress');
    port = address.split(':')[1]!;
    connection = await Connection.connect({ address });
    client = new Client({ connection });
  });

  // Nothing of a failed case may keep polling: kill every process that serves one of our queues.
  afterEach(() => {
    for (const q of queues) for (const pid of processesServing(q)) process.kill(pid, 'SIGKILL');
    workers.clear();
  });

  afterAll(async () => {
    await connection?.close();
    if (!process.env.ORBIT_KEEP_TEST_FILES) await tmp?.cleanup();
  });

  const newQueue = (name: string) => {
    const q = `signals-${name}-${randomUUID().slice(0, 8)}`;
    queues.push(q);
    return q;
  };

  /** Starts `bin/orbit worker` as a process manager would (no process group of its own) and waits until it polls. */
  async function startWorker(queue: string, extraEnv: Record<string, string> = {}): Promise<StartedWorker> {
    const proc = spawn(ORBIT, ['worker'], {
      env: { ...process.env, ORBIT_HOME: join(tmp.dir, 'home'), ORBIT_TEMPORAL_PORT: port, ORBIT_TASK_QUEUE: queue, ORBIT_HOSTS: '', ...extraEnv },
      cwd: tmp.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    workers.add(proc);
    let out = '';
    proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
    await until(`worker on ${queue} to start (output so far: ${out})`, () => out.includes(`task queue "${queue}"`) || proc.exitCode !== null);
    if (proc.exitCode !== null) throw new Error(`worker exited ${proc.exitCode}: ${out}`);
    return { proc, output: () => out, exited };
  }

  /** Builds a bundle running `body` in `bundleDir` and starts its run on `queue` (local host, fast tuning). */
  async function startRun(queue: string, name: string, bundleDir: string, body: string): Promise<{ runId: string; handle: WorkflowHandle }> {
    const { bundle, digest } = await scriptBundle(bundleDir, body);
    const runId = `${name}-${randomUUID().slice(0, 6)}`;
    const input: RunBundleInput = {
      runId,
      bundleDir,
      digest,
      host: 'local',
      logFile: bundle.spec.entrypoint.logFile,
      timeouts: bundle.spec.timeouts,
      tuning: { pollIntervalMs: 200, heartbeatTimeoutMs: 3_000 },
    };
    return { runId, handle: await client.workflow.start(runBundle, { taskQueue: queue, workflowId: runId, args: [input] }) };
  }

  it('SIGKILL of the worker pid leaves no process of it running: the worker is one process', async () => {
    const queue = newQueue('kill');
    const w = await startWorker(queue);
    const polling = await until('the worker to poll', async () => {
      const r = await client.workflowService.describeTaskQueue({ namespace: 'default', taskQueue: { name: queue } });
      return r.pollers?.length ? r.pollers.map((p) => p.identity) : undefined;
    });
    process.kill(w.proc.pid!, 'SIGKILL');
    expect(await w.exited).toEqual({ code: null, signal: 'SIGKILL' });
    const left = await until('no process serving the queue', () => processesServing(queue).length === 0, 5_000).then(
      () => [],
      () => processesServing(queue).map(commandOf),
    );
    expect(left).toEqual([]);
    // The process that polls is the one that was signalled, not a child of it.
    expect(polling).toEqual([`${w.proc.pid}@${hostname()}`]);
  });

  it('SIGTERM during an activity: polling stops, the activity finishes, exit 0 with one line; another worker ends the run', async () => {
    const queue = newQueue('term');
    const home = join(tmp.dir, 'home');
    // The stage activity pauses 3 s after its work (heartbeating); SIGTERM comes inside that pause.
    const first = await startWorker(queue, { ORBIT_TEST_PAUSE_AFTER: 'stage=3000' });
    const bundleDir = join(tmp.dir, 'bundles', 'term');
    const { runId, handle } = await startRun(queue, 'term', bundleDir, 'echo done > artifacts/out.txt');
    await until('the stage to be done on the host', () => existsSync(join(home, 'work', runId, 'scripts', 'orbit', 'run.sh')));
    const termAt = Date.now();
    process.kill(first.proc.pid!, 'SIGTERM');
    const exit = await within(30_000, 'the first worker to exit', first.exited);
    const tookMs = Date.now() - termAt;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(tookMs).toBeLessThan(20_000);
    const lines = first.output().trim().split('\n');
    expect(lines.at(-1)).toMatch(/^orbit worker: SIGTERM: stopped polling, 1 running activity ended within [\d.]+ s; exiting$/);
    expect(processesServing(queue)).toEqual([]);

    // The stage attempt the first worker ran was completed by it, not cut off and retried.
    const firstIdentity = `${first.proc.pid}@${hostname()}`;
    const events = (await handle.fetchHistory()).events ?? [];
    const stageScheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'stage');
    const stageCompleted = events.find((e) => String(e.activityTaskCompletedEventAttributes?.scheduledEventId) === String(stageScheduled?.eventId));
    expect(stageCompleted?.activityTaskCompletedEventAttributes?.identity).toBe(firstIdentity);
    const stageStarted = events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(stageScheduled?.eventId));
    expect(stageStarted?.activityTaskStartedEventAttributes?.attempt).toBe(1);

    const second = await startWorker(queue);
    const result = await within(60_000, 'the run to end on the second worker', handle.result() as Promise<RunResult>);
    expect(result.status).toBe('succeeded');
    expect(readFileSync(join(bundleDir, 'artifacts', 'out.txt'), 'utf8')).toBe('done\n');
    // Nothing after the SIGTERM ran on the first worker: the launch was picked up by the second.
    const after = (await handle.fetchHistory()).events ?? [];
    const afterStage = after.filter((e) => Number(e.eventId) > Number(stageCompleted?.eventId));
    const started = afterStage.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.identity);
    expect(started.length).toBeGreaterThan(0);
    expect(started).not.toContain(firstIdentity);
    process.kill(second.proc.pid!, 'SIGTERM');
    expect((await within(30_000, 'the second worker to exit', second.exited)).code).toBe(0);
  });
  it('SIGTERM while a job runs: the monitor is cancelled after the grace, the job runs on, another worker ends the run', async () => {
    const queue = newQueue('grace');
    const first = await startWorker(queue, { ORBIT_WORKER_GRACE_SECONDS: '1' });
    const bundleDir = join(tmp.dir, 'bundles', 'grace');
    const { handle } = await startRun(queue, 'grace', bundleDir, 'for i in 1 2 3 4 5 6; do echo "step $i"; sleep 1; done; echo done > artifacts/out.txt');
    await until('the job to run', async () => {
      const d = await handle.describe();
      return (d.raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'monitor' && a.lastStartedTime);
    });
    const termAt = Date.now();
    process.kill(first.proc.pid!, 'SIGTERM');
    const exit = await within(20_000, 'the first worker to exit', first.exited);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - termAt).toBeLessThan(15_000);
    expect(first.output().trim().split('\n').at(-1)).toBe('orbit worker: SIGTERM: stopped polling, 1 running activity cancelled after the 1 s grace (retried by another worker); exiting');

    const second = await startWorker(queue);
    const result = await within(60_000, 'the run to end on the second worker', handle.result() as Promise<RunResult>);
    expect(result.status).toBe('succeeded');
    expect(result.relaunches).toEqual([]);
    expect(readFileSync(join(bundleDir, 'artifacts', 'out.txt'), 'utf8')).toBe('done\n');
    process.kill(second.proc.pid!, 'SIGTERM');
    expect((await within(30_000, 'the second worker to exit', second.exited)).code).toBe(0);
  });
});
