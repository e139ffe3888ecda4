/**
 * `orbit logs` through its exported function, against real runs: a worker in this process on the
 * shared dev server, the local host and a real sshd (killed and restarted mid-stream), the store a
 * folder. The client finds the hosts the way the CLI does: hosts.yaml through ORBIT_HOSTS.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CliError } from '../../src/cli/errors';
import { logsCommand, streamTaskLog, type StreamLogOptions } from '../../src/cli/logs';
import { runInputFor, runLabelsFor, runSpecOf } from '../../src/common/run-input';
import { fleetSpecOf, loadInventory } from '../../src/hosts/inventory';
import { pushBundle, writeRunRecord } from '../../src/store/cas';
import { openStore } from '../../src/store/open';
import { hostRegistryFor } from '../../src/worker/hosts';
import { createOrbitWorker, type OrbitWorker } from '../../src/worker/worker';
import { runBundle } from '../../src/workflows';
import { scriptBundle, tempDir } from '../helpers/bundles';
import { runOutcome } from '../helpers/run-outcome';
import { startSshd, writeHostsFile, type SshdServer } from '../helpers/sshd';
import { closedPort } from '../helpers/ports';
import { ROOMY_LOCAL } from '../helpers/worker';

/** 200 numbered lines over about 10 s, each written in two pieces (so reads also end inside a line). */
const JOB = `for i in $(seq 1 200); do printf 'line %03d of 200' "$i"; sleep 0.025; printf '\\n'; sleep 0.025; done`;
const EXPECTED = Array.from({ length: 200 }, (_, i) => `line ${String(i + 1).padStart(3, '0')} of 200`);

describe('streamTaskLog on real runs', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let box: SshdServer;
  let env: NodeJS.ProcessEnv;
  let worker: OrbitWorker;
  let running: Promise<void>;
  let nativeConnection: NativeConnection;
  let connection: Connection;
  let client: Client;
  const address = inject('temporalAddress');
  const target = { address, namespace: 'default' };
  const taskQueue = `logs-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    tmp = await tempDir('orbit-logs-');
    box = await startSshd({ name: 'box-1' });
    const hostsFile = join(tmp.dir, 'hosts.yaml');
    await writeHostsFile(hostsFile, [box]);
    const home = join(tmp.dir, 'home');
    env = { ...process.env, ORBIT_HOME: home, ORBIT_HOSTS: hostsFile, ORBIT_STORE: `file://${join(tmp.dir, 'store')}` };
    const inventory = await loadInventory({ env });
    nativeConnection = await NativeConnection.connect({ address });
    worker = await createOrbitWorker({
      connection: nativeConnection,
      namespace: 'default',
      taskQueue,
      hosts: hostRegistryFor(home, inventory),
      home,
      env,
      fleetHosts: async () => [ROOMY_LOCAL, ...inventory.hosts.map(fleetSpecOf)],
      fleetSettings: { reconcileEveryMs: 1_000 },
    });
    running = worker.run();
    connection = await Connection.connect({ address });
    client = new Client({ connection });
  });

  afterAll(async () => {
    worker?.shutdown();
    await running;
    await connection?.close();
    await nativeConnection?.close();
    await box?.stop();
    await tmp?.cleanup();
  });

  /** Submits JOB as the CLI does: bundle into the store, run record, workflow with its labels. */
  async function start(name: string, host: string) {
    const runId = `${name}-${randomUUID().slice(0, 6)}`;
    const { bundle, digest } = await scriptBundle(join(tmp.dir, 'bundles', runId), JOB, { sync: { intervalSeconds: 1 } });
    const store = await openStore(env.ORBIT_STORE!, env);
    await pushBundle(store, bundle.dir, digest);
    await writeRunRecord(store, { runId, digest });
    const spec = runSpecOf(bundle.spec);
    const input = runInputFor({ runId, store: store.url, digest }, spec, {
      host,
      tuning: { pollIntervalMs: 300, progressEveryMs: 2_000, heartbeatTimeoutMs: 5_000, probeTimeoutMs: 4_000, hostLostAfterMs: 60_000, collectRetryMs: { initial: 500, max: 2_000 } },
    });
    return client.workflow.start(runBundle, { taskQueue, workflowId: runId, args: [input], ...runLabelsFor(input, spec, { name }) });
  }

  /** Follows the run's log, each line with when it came. */
  async function follow(runId: string, extra: Partial<StreamLogOptions> = {}) {
    const lines: string[] = [];
    const at: number[] = [];
    const notes: string[] = [];
    const result = await streamTaskLog({
      client,
      target,
      runId,
      follow: true,
      env,
      pollMs: 500,
      out: (l) => {
        lines.push(l);
        at.push(Date.now());
      },
      note: (l) => notes.push(l),
      ...extra,
    });
    return { result, lines, at, notes };
  }

  it('follows a run on the local host: all 200 lines, in order, once, as they are written; then reads the ended run from its bundle', async () => {
    const handle = await start('local-log', 'local');
    const followed = await follow(handle.workflowId);
    expect(followed.notes).toEqual([]);
    expect(followed.lines).toEqual(EXPECTED);
    expect(followed.result).toEqual({ lines: 200, ended: true });
    // Streamed while the job wrote them (about 10 s), not all at the end.
    expect(followed.at[199]! - followed.at[0]!).toBeGreaterThan(5_000);
    expect((await runOutcome(handle)).status).toBe('succeeded');

    // The ended run, from the bundle brought from the store: --tail, and --since on the run's end.
    const read = async (extra: Partial<StreamLogOptions>) => (await follow(handle.workflowId, { follow: false, ...extra })).lines;
    expect(await read({ tail: 3 })).toEqual(EXPECTED.slice(-3));
    expect(await read({ since: '10m' })).toEqual(EXPECTED);
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await read({ since: '1s' })).toEqual([]);
    await expect(streamTaskLog({ client, target, runId: handle.workflowId, node: 1, out: () => undefined, note: () => undefined })).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/^--node 1/) });
    const unknown = await streamTaskLog({ client, target, runId: 'no-such-run', out: () => undefined, note: () => undefined, env }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(CliError);
    expect(unknown).toMatchObject({ exitCode: 2, message: expect.stringMatching(/run no-such-run does not exist/) });

    // The command as the CLI registers it: flags as text, Temporal from the environment.
    const cliEnv: NodeJS.ProcessEnv = { ...env, ORBIT_TEMPORAL_PORT: address.split(':')[1] };
    delete cliEnv.TEMPORAL_ADDRESS;
    const out: string[] = [];
    const io = { out: (l: string) => out.push(l), note: (l: string) => out.push(`note: ${l}`), env: cliEnv };
    expect(await logsCommand(handle.workflowId, { tail: '2' }, io)).toBe(0);
    expect(out).toEqual(EXPECTED.slice(-2));
    await expect(logsCommand(handle.workflowId, { tail: 'x' }, io)).rejects.toMatchObject({ exitCode: 2, message: '--tail must be a whole number, 0 or more (got "x")' });
    await expect(logsCommand('no-such-run', {}, io)).rejects.toMatchObject({ exitCode: 2 });
    await expect(logsCommand(handle.workflowId, {}, { ...io, env: { ...cliEnv, ORBIT_TEMPORAL_PORT: String(await closedPort()) } })).rejects.toMatchObject({ exitCode: 3 });
  });

  it('follows a run on an SSH host through sshd killed and restarted mid-stream: no line lost or repeated', async () => {
    const handle = await start('ssh-log', box.name);
    const lines: string[] = [];
    const notes: string[] = [];
    let cut: Promise<void> | undefined;
    const result = await streamTaskLog({
      client,
      target,
      runId: handle.workflowId,
      follow: true,
      env,
      pollMs: 500,
      note: (n) => notes.push(n),
      out: (l) => {
        lines.push(l);
        if (lines.length === 40) {
          cut = (async () => {
            await box.kill(); // every connection to the host drops, this client's included
            await new Promise((r) => setTimeout(r, 2_500));
            await box.start();
          })();
        }
      },
    });
    await cut;
    expect(cut).toBeDefined();
    expect(lines).toEqual(EXPECTED);
    expect(result).toEqual({ lines: 200, ended: true });
    // The outage was seen (once) while the job still wrote, and the reading went on from the host after it.
    expect(notes.filter((n) => /cannot read the log on box-1 from here/.test(n))).toHaveLength(1);
    expect(notes.some((n) => /host box-1 answers again/.test(n))).toBe(true);
    expect((await runOutcome(handle)).status).toBe('succeeded');
  });
});
