/**
 * The batched probe (ShellHost.probeMany, one command for many runs) says of every run exactly what
 * the single probe says, in every state a run folder can be in, over the local transport and SSH;
 * a job cannot forge another run's answer through its logs; a host that does not answer fails the
 * whole batch.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killRun } from '../../bench/lib';
import { EXIT_CODE_FILE, PID_FILE } from '../../src/common/layout';
import { LAUNCH_MARKER_DIR } from '../../src/common/protocol';
import type { ShellHost } from '../../src/hosts/shell-host';
import { ShellHost as Host } from '../../src/hosts/shell-host';
import type { ExecOptions, ExecResult } from '../../src/hosts/transport';
import { scriptBundle } from '../helpers/bundles';
import { localHostUnderTest, sshHostUnderTest, type HostUnderTest } from '../helpers/hosts-under-test';
import { tempDir } from '../helpers/temp-dirs';
import { PassThroughTransport } from '../helpers/transports';
import { waitFor } from '../helpers/wait';

/** Counts the commands a host is sent. */
class CountingTransport extends PassThroughTransport {
  commands = 0;
  override exec(script: string, options?: ExecOptions): Promise<ExecResult> {
    this.commands++;
    return this.inner.exec(script, options);
  }
}

suite('the local transport', () => localHostUnderTest('local-batch'));
suite('SSH', () => sshHostUnderTest('ssh-probe-batch'));

function suite(label: string, setup: () => Promise<HostUnderTest>): void {
  describe(`the batched probe over ${label}`, () => {
    let sut: HostUnderTest;
    let host: ShellHost;
    let tmp: Awaited<ReturnType<typeof tempDir>>;
    const ids: string[] = [];
    beforeAll(async () => {
      [sut, tmp] = await Promise.all([setup(), tempDir()]);
      host = sut.host;
    });
    afterAll(async () => {
      for (const id of ids) killRun(sut.workRoot, id);
      await sut.close();
      await tmp.cleanup();
    });

    async function staged(id: string, body: string): Promise<string> {
      const dir = join(tmp.dir, id);
      await scriptBundle(dir, body);
      await host.stage(id, dir);
      ids.push(id);
      return id;
    }

    it('answers for every run as the single probe does: running, exited, vanished, starting, not launched, missing', async () => {
      const running = await staged('b-running', 'echo "step 1"; echo "step 2" >&2; sleep 60');
      const exited = await staged('b-exited', 'echo done; head -c 5000 /dev/zero > artifacts/blob.bin; exit 3');
      const vanished = await staged('b-vanished', 'sleep 60');
      const notLaunched = await staged('b-not-launched', 'true');
      const starting = await staged('b-starting', 'true');
      for (const id of [running, exited, vanished]) await host.launch(id);
      await waitFor(() => host.probe(exited, 'job.log'), (p) => p.state === 'exited');
      await waitFor(() => host.probe(running, 'job.log'), (p) => p.state === 'running' && p.taskLogTail.length > 0);
      // vanished: its process gone without an exit code (what a host reboot leaves).
      const pid = (await host.probe(vanished, 'job.log')).pid!;
      process.kill(-pid, 'SIGKILL');
      await waitFor(() => host.probe(vanished, 'job.log'), (p) => p.state === 'vanished');
      // starting: launched (the marker), no pid yet.
      await mkdir(join(sut.workRoot, starting, LAUNCH_MARKER_DIR), { recursive: true });
      const all = [running, exited, vanished, notLaunched, starting, 'b-missing'];

      const batch = await host.probeMany(all.map((runId) => ({ runId, taskLogFile: 'job.log' })));
      for (const id of all) expect(batch.get(id), id).toEqual(await host.probe(id, 'job.log'));
      expect(batch.get(running)).toMatchObject({ state: 'running', taskLogTail: ['step 1', 'step 2'] });
      expect(batch.get(exited)).toMatchObject({ state: 'exited', exitCode: 3 });
      expect(batch.get(exited)!.artifactBytes).toBeGreaterThan(5000);
      expect(batch.get(running)!.diskTotalMb).toBeGreaterThan(0);
      expect(batch.get(vanished)!.state).toBe('vanished');
      expect(batch.get(starting)!.state).toBe('starting');
      expect(batch.get(notLaunched)!.state).toBe('not-launched');
      expect(batch.get('b-missing')!.state).toBe('missing');
    });

    it('reads no pid it should not: a pid file naming another process group is not this run', async () => {
      const id = await staged('b-foreign-pid', 'true');
      const dir = join(sut.workRoot, id);
      await mkdir(join(dir, LAUNCH_MARKER_DIR), { recursive: true });
      // pid 1 (init) is alive but not this run's: both probes call it vanished.
      await writeFile(join(dir, PID_FILE), '1\n');
      // A task log and no runtime log: the one tail of the batch names only the file it found.
      await writeFile(join(dir, 'artifacts/job.log'), 'only the task log\n');
      const batch = await host.probeMany([{ runId: id, taskLogFile: 'job.log' }]);
      expect(batch.get(id)).toEqual(await host.probe(id, 'job.log'));
      expect(batch.get(id)).toMatchObject({ state: 'vanished', runtimeLogTail: [], taskLogTail: ['only the task log'] });
      await writeFile(join(dir, EXIT_CODE_FILE), '0\n');
      expect((await host.probeMany([{ runId: id, taskLogFile: 'job.log' }])).get(id)!.state).toBe('exited');
    });

    it("cannot be fooled by a job that prints another run's section into its log", async () => {
      const victim = await staged('b-victim', 'sleep 60');
      // Without the batch's nonce a forged header is just a log line of the forger's.
      const forger = await staged('b-forger', 'printf "ab12 run 0\\nstate=missing\\nexit=9\\n"; sleep 60');
      await host.launch(victim);
      await host.launch(forger);
      await waitFor(() => host.probe(forger, 'job.log'), (p) => p.taskLogTail.length >= 3);
      const batch = await host.probeMany([forger, victim].map((runId) => ({ runId, taskLogFile: 'job.log' })));
      expect(batch.get(victim)!.state).toBe('running');
      expect(batch.get(forger)).toMatchObject({ state: 'running', taskLogTail: ['ab12 run 0', 'state=missing', 'exit=9'] });
    });

    it('is one command for the whole batch, and a host that does not answer fails all its runs at once', async () => {
      const counting = new CountingTransport(sut.transport);
      const counted = new Host({ name: host.name, transport: counting, workRoot: sut.workRoot });
      const targets = Array.from({ length: 40 }, (_, i) => ({ runId: `b-many-${i}`, taskLogFile: 'job.log' }));
      const batch = await counted.probeMany(targets);
      expect(batch.size).toBe(40);
      expect(counting.commands).toBe(1);
      const dead = new Host({ name: 'dead', transport: new (class extends PassThroughTransport {
        override exec(): Promise<ExecResult> {
          return Promise.reject(new Error('connect ECONNREFUSED'));
        }
      })(sut.transport), workRoot: sut.workRoot });
      await expect(dead.probeMany(targets)).rejects.toThrow(/ECONNREFUSED/);
    });
  });
}
