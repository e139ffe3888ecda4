/**
 * Launch idempotency and cancel identity, over the local transport and SSH to a real sshd: a launch
 * interrupted after the marker (or after "spawning") is started by the retry exactly once, and a
 * cancel (or probe, or the benchmarks' kill) never signals a process group that is not this run's,
 * whatever runtime/pid names. Both hosts live on this machine, so a scenario may put the run folder
 * under `workRoot` into the state an interrupted launch or a reused pid leaves.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killRun } from '../../bench/lib';
import { EXIT_CODE_FILE, PID_FILE } from '../../src/common/layout';
import { LAUNCH_LOCK_FILE, LAUNCH_MARKER_DIR, RUN_IDENTITY_FILE } from '../../src/common/protocol';
import { ShellHost } from '../../src/hosts/shell-host';
import type { ExecOptions, ExecResult } from '../../src/hosts/transport';
import { scriptBundle } from '../helpers/bundles';
import { processGone } from '../helpers/processes';
import { tempDir } from '../helpers/temp-dirs';
import { PassThroughTransport } from '../helpers/transports';
import { waitFor } from '../helpers/wait';
import { localHostUnderTest, sshHostUnderTest, type HostUnderTest } from '../helpers/hosts-under-test';

/** A host without flock: every script sees `command -v flock` fail, as on a host that lacks util-linux's flock. */
class NoFlockTransport extends PassThroughTransport {
  override exec(script: string, options?: ExecOptions): Promise<ExecResult> {
    return this.inner.exec(`command() { [ "$*" = "-v flock" ] && return 1; builtin command "$@"; }\n${script}`, options);
  }
}


suite('the local transport', () => localHostUnderTest('local'));

suite('SSH', () => sshHostUnderTest('ssh-launch-cancel'));

/** A process group of this test's own, unrelated to any run: `setsid sleep 300`, or a group whose leader already exited. */
async function unrelatedGroup(leaderGone = false): Promise<{ pgid: number; member: number }> {
  const child = spawn('bash', ['-c', leaderGone ? 'sleep 300 </dev/null >/dev/null 2>&1 & echo $!' : 'echo $$; exec sleep 300'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  const pgid = child.pid ?? 0;
  const line = await new Promise<string>((resolve) => child.stdout.once('data', (b: Buffer) => resolve(b.toString().trim())));
  child.stdout.destroy();
  child.unref();
  const member = Number(line);
  if (leaderGone) await waitFor(async () => processGone(pgid), (gone) => gone);
  return { pgid, member };
}

function suite(label: string, setup: () => Promise<HostUnderTest>): void {
  describe(`launch and cancel over ${label}`, () => {
    let tmp: Awaited<ReturnType<typeof tempDir>>;
    let sut: HostUnderTest;
    let host: ShellHost;
    /** Process groups this file started itself; ended by their own ids. */
    const groups: number[] = [];
    beforeAll(async () => {
      [sut, tmp] = await Promise.all([setup(), tempDir()]);
      host = sut.host;
    });
    afterEach(() => {
      for (const g of groups.splice(0)) {
        try {
          process.kill(-g, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    });
    afterAll(async () => {
      await Promise.all([sut?.close(), tmp?.cleanup()]);
    });

    const remote = (runId: string, rel = '') => join(sut.workRoot, runId, rel);
    const exited = (runId: string) => waitFor(() => host.probe(runId, 'job.log'), (p) => p.state === 'exited');
    const starts = async (runId: string) => (await readFile(remote(runId, 'artifacts/starts.txt'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
    /** Stages a bundle whose job writes one line per start, then sleeps briefly. */
    const staged = async (runId: string) => {
      const bundleDir = join(tmp.dir, runId);
      await scriptBundle(bundleDir, 'echo started >> artifacts/starts.txt\nsleep 1');
      await host.stage(runId, bundleDir);
    };
    const mine = async (leaderGone = false) => {
      const g = await unrelatedGroup(leaderGone);
      groups.push(g.pgid);
      expect(processGone(g.member)).toBe(false);
      return g;
    };
    /** A staged run folder whose runtime/pid names `pid` (what a reused pid looks like). */
    const pointedAt = async (runId: string, pid: number, files: Record<string, string> = {}) => {
      await staged(runId);
      await mkdir(remote(runId, LAUNCH_MARKER_DIR), { recursive: true });
      await writeFile(remote(runId, PID_FILE), `${pid}\n`);
      for (const [rel, text] of Object.entries(files)) await writeFile(remote(runId, rel), text);
    };

    it('starts the job once when an interrupted launch left the marker but no pid', async () => {
      await staged('run-marker');
      await mkdir(remote('run-marker', LAUNCH_MARKER_DIR));
      const first = await host.launch('run-marker');
      expect(first.alreadyLaunched).toBe(false);
      expect(first.pid).toBeGreaterThan(1);
      const second = await host.launch('run-marker');
      expect(second).toEqual({ pid: first.pid, alreadyLaunched: true });
      expect((await exited('run-marker')).exitCode).toBe(0);
      expect(await starts('run-marker')).toEqual(['started']);
    });

    it('starts the job once when two launches race after an interrupted one', async () => {
      await staged('run-race');
      await mkdir(remote('run-race', LAUNCH_MARKER_DIR));
      const both = await Promise.all([host.launch('run-race'), host.launch('run-race')]);
      expect(both.map((r) => r.alreadyLaunched).sort()).toEqual([false, true]);
      expect(both[0]?.pid).toBeGreaterThan(1);
      expect(both[1]?.pid).toBe(both[0]?.pid);
      expect((await exited('run-race')).exitCode).toBe(0);
      expect(await starts('run-race')).toEqual(['started']);
    });

    it('starts the job once when a launch recorded "spawning" but its wrapper never started', async () => {
      await staged('run-spawning');
      await mkdir(remote('run-spawning', LAUNCH_MARKER_DIR));
      await writeFile(remote('run-spawning', RUN_IDENTITY_FILE), `token=${randomBytes(16).toString('hex')}\n`);
      const first = await host.launch('run-spawning');
      expect(first.alreadyLaunched).toBe(false);
      expect(first.pid).toBeGreaterThan(1);
      expect(await host.launch('run-spawning')).toEqual({ pid: first.pid, alreadyLaunched: true });
      await exited('run-spawning');
      expect(await starts('run-spawning')).toEqual(['started']);
    });

    it('without flock, the mkdir marker decides: two racing launches start the job once, a marker without pid is started', async () => {
      const bare = new ShellHost({ name: host.name, transport: new NoFlockTransport(sut.transport), workRoot: sut.workRoot });
      await staged('run-noflock');
      const both = await Promise.all([bare.launch('run-noflock'), bare.launch('run-noflock')]);
      expect(both.map((r) => r.alreadyLaunched).sort()).toEqual([false, true]);
      expect(both[1]?.pid).toBe(both[0]?.pid);
      expect(existsSync(remote('run-noflock', LAUNCH_LOCK_FILE))).toBe(false);
      await staged('run-noflock-marker');
      await mkdir(remote('run-noflock-marker', LAUNCH_MARKER_DIR));
      const first = await bare.launch('run-noflock-marker');
      expect(first.alreadyLaunched).toBe(false);
      expect(await bare.launch('run-noflock-marker')).toEqual({ pid: first.pid, alreadyLaunched: true });
      await Promise.all([exited('run-noflock'), exited('run-noflock-marker')]);
      expect(await starts('run-noflock')).toEqual(['started']);
      expect(await starts('run-noflock-marker')).toEqual(['started']);
    });

    it('a second launch of a launched run reports it with its pid and starts nothing', async () => {
      await staged('run-again');
      const first = await host.launch('run-again');
      expect(first.alreadyLaunched).toBe(false);
      expect(existsSync(remote('run-again', LAUNCH_LOCK_FILE))).toBe(true);
      expect(await host.launch('run-again')).toEqual({ pid: first.pid, alreadyLaunched: true });
      await exited('run-again');
      expect(await host.launch('run-again')).toEqual({ pid: first.pid, alreadyLaunched: true });
      expect(await starts('run-again')).toEqual(['started']);
    });

    it('cancel leaves alone an unrelated process group that runtime/pid names', async () => {
      const g = await mine();
      await pointedAt('run-foreign', g.pgid);
      expect(await host.cancel('run-foreign', 1)).toBe('not-running');
      expect((await host.probe('run-foreign', 'job.log')).state).not.toBe('running');
      expect(processGone(g.member)).toBe(false);
    });

    it('cancel leaves alone an unrelated group after the run wrote its exit code', async () => {
      const g = await mine();
      await pointedAt('run-foreign-exited', g.pgid, { [EXIT_CODE_FILE]: '0\n' });
      expect(await host.cancel('run-foreign-exited', 1)).toBe('not-running');
      expect(processGone(g.member)).toBe(false);
    });

    it('cancel leaves alone a reused pid whose start time is not the recorded one', async () => {
      const g = await mine();
      const identity = `pid=${g.pgid}\nstarttime=1\ntoken=${randomBytes(16).toString('hex')}\n`;
      await pointedAt('run-reused', g.pgid, { [RUN_IDENTITY_FILE]: identity });
      expect(await host.cancel('run-reused', 1)).toBe('not-running');
      expect((await host.probe('run-reused', 'job.log')).state).not.toBe('running');
      expect(processGone(g.member)).toBe(false);
    });

    it('cancel leaves alone a group whose leader is gone and whose members lack the run token', async () => {
      const g = await mine(true);
      const identity = `pid=${g.pgid}\nstarttime=1\ntoken=${randomBytes(16).toString('hex')}\n`;
      await pointedAt('run-orphans', g.pgid, { [RUN_IDENTITY_FILE]: identity });
      expect(await host.cancel('run-orphans', 1)).toBe('not-running');
      expect(processGone(g.member)).toBe(false);
    });

    it("probe and cancel of a run whose runtime/pid names another run's wrapper leave that run alone", async () => {
      const bundleDir = join(tmp.dir, 'run-victim');
      await scriptBundle(bundleDir, 'sleep 300');
      await host.stage('run-victim', bundleDir);
      await host.launch('run-victim');
      const victim = await waitFor(() => host.probe('run-victim', 'job.log'), (p) => p.state === 'running');
      expect(victim.pid).toBeGreaterThan(1);
      await pointedAt('run-impostor', victim.pid ?? 0);
      expect((await host.probe('run-impostor', 'job.log')).state).toBe('vanished');
      expect(await host.cancel('run-impostor', 1)).toBe('not-running');
      expect((await host.probe('run-victim', 'job.log')).state).toBe('running');
      expect(await host.cancel('run-victim', 10)).toBe('stopped');
    });

    it("cancel stops a run whose wrapper died, through the token in its job's environment", async () => {
      const bundleDir = join(tmp.dir, 'run-orphaned');
      await scriptBundle(bundleDir, 'sleep 300 &\necho $! > artifacts/child.pid\nwait');
      await host.stage('run-orphaned', bundleDir);
      await host.launch('run-orphaned');
      const running = await waitFor(() => host.probe('run-orphaned', 'job.log'), (p) => p.state === 'running');
      const child = Number((await waitFor(() => readFile(remote('run-orphaned', 'artifacts/child.pid'), 'utf8').catch(() => ''), (s) => s.trim() !== '')).trim());
      expect(child).toBeGreaterThan(1);
      process.kill(running.pid ?? 0, 'SIGKILL');
      await waitFor(async () => processGone(running.pid ?? 0), (gone) => gone);
      expect((await host.probe('run-orphaned', 'job.log')).state).toBe('vanished');
      expect(processGone(child)).toBe(false);
      expect(await host.cancel('run-orphaned', 10)).not.toBe('not-running');
      expect(await waitFor(async () => processGone(child), (gone) => gone)).toBe(true);
    });

    it("the benchmarks' killRun kills a run's group but not an unrelated one that runtime/pid names", async () => {
      const g = await mine();
      await pointedAt('run-bench-foreign', g.pgid);
      killRun(sut.workRoot, 'run-bench-foreign');

      const bundleDir = join(tmp.dir, 'run-bench');
      await scriptBundle(bundleDir, 'sleep 300');
      await host.stage('run-bench', bundleDir);
      await host.launch('run-bench');
      const running = await waitFor(() => host.probe('run-bench', 'job.log'), (p) => p.state === 'running');
      killRun(sut.workRoot, 'run-bench');
      expect(await waitFor(async () => processGone(running.pid ?? 0), (gone) => gone)).toBe(true);
      // A KILL sent to the unrelated group first would have landed long before the run's did.
      expect(processGone(g.member)).toBe(false);
    });
  });
}
