/**
 * `orbit cancel` end to end: runs submitted the way `orbit submit` does (bundle in the store, runBundle
 * with its memo), a real worker serving the local host and an SSH host (a real sshd on loopback), and
 * cancelCommand in this process. After it returns, the job's process group is gone, what the job wrote
 * is in the run's folder here, `awaitRun` says cancelled (with the reason) and diagnose says CANCELLED.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cancelCommand } from '../../src/cli/cancel';
import { runDiagnose } from '../../src/cli/diagnose';
import { CliError } from '../../src/cli/errors';
import { awaitRun } from '../../src/cli/outcome';
import { prepareRun } from '../../src/cli/submit';
import { fleetWorkflowId } from '../../src/common/fleet';
import { runLabelsFor, runSpecOf } from '../../src/common/run-input';
import { taskQueue, temporalTarget } from '../../src/config';
import { fleetSpecOf, loadInventory } from '../../src/hosts/inventory';
import { hostRegistryFor } from '../../src/worker/hosts';
import { createOrbitWorker, type OrbitWorker } from '../../src/worker/worker';
import { runBundle } from '../../src/workflows';
import { tempDir } from '../helpers/bundles';
import { ROOT } from '../helpers/orbit-cli';
import { SleeperPlugin } from '../helpers/sleeper-plugin';
import { startSshd, writeHostsFile, type SshdServer } from '../helpers/sshd';
import { until } from '../helpers/wait';
import { ROOMY_LOCAL } from '../helpers/worker';

/** Live (not zombie) processes whose process group is `pgid`, from /proc. */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z' && Number(fields[2]) === pgid) members.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return members;
}

describe('orbit cancel on the local host and on an SSH host', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let box: SshdServer;
  let worker: OrbitWorker;
  let running: Promise<void>;
  let nativeConnection: NativeConnection;
  let client: Client;
  let hostsFile: string;
  const saved = { ...process.env };
  const reason = 'test: the learning rate was wrong';

  beforeAll(async () => {
    tmp = await tempDir('orbit-cancel-');
    box = await startSshd({ name: 'box-c', sessionEnv: { PATH: `${join(ROOT, '.venv/bin')}:/usr/local/bin:/usr/bin:/bin` } });
    hostsFile = join(tmp.dir, 'hosts.yaml');
    await writeHostsFile(hostsFile, [box]);
    const address = inject('temporalAddress');
    for (const k of ['TEMPORAL_ADDRESS', 'TEMPORAL_CONFIG_FILE', 'TEMPORAL_PROFILE', 'TEMPORAL_NAMESPACE', 'ORBIT_STORE']) delete process.env[k];
    Object.assign(process.env, {
      ORBIT_HOME: join(tmp.dir, 'home'),
      ORBIT_TEMPORAL_PORT: address.split(':')[1],
      ORBIT_TASK_QUEUE: `cancel-${randomUUID().slice(0, 8)}`,
      ORBIT_HOSTS: hostsFile,
    });
    const inventory = await loadInventory({ path: hostsFile });
    nativeConnection = await NativeConnection.connect({ address });
    worker = await createOrbitWorker({
      connection: nativeConnection,
      namespace: 'default',
      taskQueue: taskQueue(),
      hosts: hostRegistryFor(process.env.ORBIT_HOME!, inventory),
      home: process.env.ORBIT_HOME,
      fleetHosts: async () => [ROOMY_LOCAL, ...inventory.hosts.map(fleetSpecOf)],
      fleetSettings: { reconcileEveryMs: 1_000 },
    });
    running = worker.run();
    client = new Client({ connection: await Connection.connect({ address }) });
  });

  afterAll(async () => {
    worker?.shutdown();
    await running;
    await nativeConnection?.close();
    await client?.connection.close();
    await box?.stop();
    process.env = saved;
    await tmp?.cleanup();
  });

  /** Submits a sleeper (sleeps 300 s) to `host` as `orbit submit` does, fast-polled; `sweep` labels it as a sweep's run. */
  async function submit(host: string, sweep?: string) {
    const loaded = { file: join(tmp.dir, 'sleepy.yaml'), baseDir: tmp.dir, plugin: new SleeperPlugin(), request: { seconds: 300, score: 1, fail: false }, jobId: 'sleepy' };
    const prepared = await prepareRun(loaded, { host, hostsFile });
    prepared.input.tuning = { pollIntervalMs: 300, progressEveryMs: 10_000, heartbeatTimeoutMs: 3_000, probeTimeoutMs: 4_000 };
    prepared.input.timeouts = { ...prepared.input.timeouts, killGraceSeconds: 3 };
    const spec = prepared.bundle.spec;
    const handle = await client.workflow.start(runBundle, {
      taskQueue: taskQueue(),
      workflowId: prepared.runId,
      args: [prepared.input],
      ...runLabelsFor(prepared.input, runSpecOf(spec), { name: spec.jobId, ...(sweep ? { sweep } : {}) }),
    });
    return { runId: prepared.runId, handle };
  }

  /** Waits until the job runs on the host (its log says so) and returns its process group (the wrapper's pid). */
  async function jobGroup(workRoot: string, runId: string): Promise<number> {
    const dir = join(workRoot, runId);
    await until(`${runId} to start its job`, async () => (await readFile(join(dir, 'artifacts/job.log'), 'utf8')).includes('sleeping 300s'), 60_000);
    const pgid = Number((await readFile(join(dir, 'runtime/pid'), 'utf8')).trim());
    expect(groupMembers(pgid).length).toBeGreaterThan(1); // the wrapper, job.sh, its sleep (and the GPU audit)
    return pgid;
  }

  async function expectCancelled(runId: string, pgid: number, out: string[]): Promise<void> {
    expect(groupMembers(pgid)).toEqual([]);
    const text = out.join('\n');
    expect(text).toContain(`run ${runId}: cancelled (cancel requested `);
    expect(text).toContain(`: ${JSON.stringify(reason)})`);
    expect(text).toMatch(/collected after the cancel: \d+ files \/ \d+ bytes fetched/);
    const bundle = join(process.env.ORBIT_HOME!, 'runs', runId);
    expect(text).toContain(`  bundle: ${bundle}`);
    expect(text).toMatch(/kept: [1-9]\d* files? \(\d+ bytes\) under artifacts\/, with runtime\/runtime\.log and runtime\/collection\.json/);
    // What the job wrote before the cancel is here, and so is the cancel itself.
    expect(await readFile(join(bundle, 'artifacts/job.log'), 'utf8')).toContain('sleeping 300s');
    expect(await readFile(join(bundle, 'runtime/runtime.log'), 'utf8')).toMatch(new RegExp(`cancel requested: TERM to process group ${pgid} why=cancelled`));

    const run = await awaitRun(client.workflow.getHandle(runId));
    expect(run.status).toBe('cancelled');
    expect(run.cancel?.reason).toBe(reason);
    expect(run.cancel?.collect?.filesFetched).toBeGreaterThan(0);

    const diagnosis: string[] = [];
    expect(await runDiagnose(runId, temporalTarget(), (s) => diagnosis.push(s))).toBe(1);
    const d = diagnosis.join('\n');
    expect(d).toContain(`${bundle}: CANCELLED`);
    expect(d).toMatch(/run status: cancelled \(workflow \S+ ended CANCELLED; cancel requested .*"test: the learning rate was wrong"\)/);
    expect(d).not.toContain('FAILED at');
  }

  it('cancels a run on the local host by id, waits, and reports what was kept', async () => {
    const { runId } = await submit('local');
    const pgid = await jobGroup(join(process.env.ORBIT_HOME!, 'work'), runId);
    const out: string[] = [];
    const notes: string[] = [];
    const started = Date.now();
    expect(await cancelCommand([runId], { reason }, { out: (s) => out.push(s), note: (s) => notes.push(s) })).toBe(0);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(notes.join('\n')).toMatch(/cancel requested for 1; waiting while each job is stopped/);
    await expectCancelled(runId, pgid, out);

    // Once more: it already ended, and says so.
    const again: string[] = [];
    expect(await cancelCommand([runId], {}, { out: (s) => again.push(s), note: () => undefined })).toBe(0);
    expect(again).toEqual([`run ${runId}: already ended (cancelled); nothing to cancel`]);
  });

  it('cancels the runs of a sweep on an SSH host with --all --sweep', async () => {
    const sweep = `cancel-test-${randomUUID().slice(0, 8)}`;
    const { runId } = await submit('box-c', sweep);
    const pgid = await jobGroup(box.workRoot, runId);
    const out: string[] = [];
    const notes: string[] = [];
    expect(await cancelCommand([], { all: true, sweep, reason }, { out: (s) => out.push(s), note: (s) => notes.push(s) })).toBe(0);
    expect(notes[0]).toBe(`orbit: 1 running run matches WorkflowType = "runBundle" AND ExecutionStatus = "Running" AND OrbitSweep = "${sweep}"`);
    await expectCancelled(runId, pgid, out);
  });

  it('--no-wait returns once the cancel is requested; the run still ends cancelled', async () => {
    const { runId, handle } = await submit('local');
    await jobGroup(join(process.env.ORBIT_HOME!, 'work'), runId);
    const out: string[] = [];
    expect(await cancelCommand([runId], { wait: false }, { out: (s) => out.push(s), note: () => undefined })).toBe(0);
    expect(out).toEqual([`run ${runId}: cancel requested; not waiting (orbit result ${runId} shows how it ended and what was kept)`]);
    const run = await awaitRun(handle);
    expect(run.status).toBe('cancelled');
    expect(run.error).toMatch(/^cancel requested \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ by \d+@/);
  });

  it('refuses an unknown run id, naming it, and cancels none of the others; and --all without a filter', async () => {
    const { runId, handle } = await submit('local');
    const err = await cancelCommand([runId, 'no-such-run-1f2e'], {}, { out: () => undefined, note: () => undefined }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).exitCode).toBe(2);
    expect((err as CliError).message).toMatch(/^no run no-such-run-1f2e in namespace "default" at \S+; nothing was cancelled$/);
    expect((await handle.describe()).status.name).toBe('RUNNING');
    const all = await cancelCommand([], { all: true }, { out: () => undefined, note: () => undefined }).catch((e: unknown) => e);
    expect((all as CliError).exitCode).toBe(2);
    expect((all as CliError).message).toMatch(/^--all needs --sweep S and\/or --phase P: refusing to cancel every running run/);
    const both = await cancelCommand([runId], { all: true, phase: 'running' }, { out: () => undefined, note: () => undefined }).catch((e: unknown) => e);
    expect((both as CliError).exitCode).toBe(2);
    // The fleet's workflow is not a run: never cancelled by id.
    const fleet = fleetWorkflowId(taskQueue());
    const notRun = await cancelCommand([fleet], {}, { out: () => undefined, note: () => undefined }).catch((e: unknown) => e);
    expect((notRun as CliError).message).toBe(`${fleet} is a fleet workflow, not a run or a sweep firing; nothing was cancelled`);
    expect((await client.workflow.getHandle(fleet).describe()).status.name).toBe('RUNNING');
    await handle.cancel();
    expect((await awaitRun(handle)).status).toBe('cancelled');
  });
});
