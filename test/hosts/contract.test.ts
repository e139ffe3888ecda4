/**
 * The host contract: one set of scenarios (stage, launch, probe, cancel, collect, and what a hostile
 * host may try) run against every transport, the local one and SSH to a real sshd. Both hosts live
 * on this machine, so a scenario may look at (or tamper with) the run folder under `workRoot`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, statfs, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShellHost } from '../../src/hosts/shell-host';
import type { ExecOptions, ExecResult } from '../../src/hosts/transport';
import { scriptBundle } from '../helpers/bundles';
import { filesBelow } from '../helpers/files';
import { processGone } from '../helpers/processes';
import { tempDir } from '../helpers/temp-dirs';
import { PassThroughTransport } from '../helpers/transports';
import { waitFor } from '../helpers/wait';
import { localHostUnderTest, sshHostUnderTest, type HostUnderTest } from '../helpers/hosts-under-test';

/** A host under test: its work root is a folder of this machine. */

/** A compromised host: its listing of the run also offers a path that climbs out of the bundle. */
class HostileTransport extends PassThroughTransport {
  override async exec(script: string, options?: ExecOptions): Promise<ExecResult> {
    const r = await this.inner.exec(script, options);
    if (script.includes('for part in artifacts runtime')) return { ...r, stdout: `${r.stdout}f\0artifacts/../../outside.txt\x006\0f\0artifacts/sub/../../../up.txt\x006\0` };
    return r;
  }
}

hostContract('the local transport', () => localHostUnderTest('local'));

hostContract('SSH', () => sshHostUnderTest('ssh-host'));

function hostContract(label: string, setup: () => Promise<HostUnderTest>): void {
  describe(`ShellHost over ${label}`, () => {
    let tmp: Awaited<ReturnType<typeof tempDir>>;
    let sut: HostUnderTest;
    let host: ShellHost;
    beforeAll(async () => {
      [sut, tmp] = await Promise.all([setup(), tempDir()]);
      host = sut.host;
    });
    afterAll(async () => {
      await Promise.all([sut?.close(), tmp?.cleanup()]);
    });

    const exited = (runId: string) => waitFor(() => host.probe(runId, 'job.log'), (p) => p.state === 'exited');
    /** Whether `pid` runs on the host; a zombie not yet reaped by init counts as dead. */
    const remoteAlive = async (pid: number) => /^[^Z]/.test((await sut.transport.exec(`ps -o stat= -p ${pid}`)).stdout.trim());
    /** Stages a bundle running `body` as run `runId`, launches it and waits for its exit. */
    const finishedRun = async (runId: string, folder: string, body: string, launch: Parameters<ShellHost['launch']>[1] = {}, overrides: Parameters<typeof scriptBundle>[2] = {}) => {
      const bundleDir = join(tmp.dir, folder);
      await scriptBundle(bundleDir, body, overrides);
      await host.stage(runId, bundleDir);
      await host.launch(runId, launch);
      return { bundleDir, probe: await exited(runId) };
    };

    it('stages, runs detached, and collects verified artifacts', async () => {
      const bundleDir = join(tmp.dir, 'ok');
      await scriptBundle(
        bundleDir,
        'cat inputs/data.txt > artifacts/out.txt\nmkdir -p artifacts/deep/er\necho x > artifacts/deep/er/y\nhead -c 300000 /dev/urandom > artifacts/deep/big.bin\necho done',
      );
      const frozen = 1 + (await filesBelow(join(bundleDir, 'inputs'))).length + (await filesBelow(join(bundleDir, 'scripts'))).length;
      const staged = await host.stage('run-ok', bundleDir);
      expect(staged.filesSent).toBe(9); // job.json, inputs/data.txt, scripts/job.sh, run.sh, manifest.py, precheck.py, precheck.json, gpu_audit.py, python/orbit_job.py
      expect(staged.filesSent).toBe(frozen);
      expect(await host.stage('run-ok', bundleDir)).toEqual({ filesSent: 0, bytesSent: 0, filesSkipped: frozen });

      expect((await host.launch('run-ok')).alreadyLaunched).toBe(false);
      const probe = await exited('run-ok');
      expect(probe.exitCode).toBe(0);
      expect(probe.taskLogTail).toContain('done');

      const collected = await host.collect('run-ok', bundleDir);
      expect(collected.refused).toEqual([]);
      expect(collected.manifest.verified).toBe(true);
      expect(collected.manifest.verifiedFiles.sort()).toEqual(['deep/big.bin', 'deep/er/y', 'job.log', 'nvml-audit.jsonl', 'out.txt', 'runtime-precheck.log']);
      expect(await readFile(join(bundleDir, 'artifacts/out.txt'), 'utf8')).toBe('hello\n');
      const remoteBig = await readFile(join(sut.workRoot, 'run-ok/artifacts/deep/big.bin'));
      expect((await readFile(join(bundleDir, 'artifacts/deep/big.bin'))).equals(remoteBig)).toBe(true);
      const lastRun = JSON.parse(await readFile(join(bundleDir, 'runtime/last_run.json'), 'utf8'));
      expect(lastRun).toMatchObject({ schemaVersion: 'orbit.last_run.v1', runId: 'run-ok', exitCode: 0 });
      expect(await readFile(join(bundleDir, 'runtime/runtime.log'), 'utf8')).toMatch(/start pid=\d+[\s\S]*exit code=0/);

      const second = await host.collect('run-ok', bundleDir);
      expect(second.filesFetched).toBe(0);
      expect(second.manifest.verified).toBe(true);
    });

    it('does not start a second process when the same run is launched again', async () => {
      const bundleDir = join(tmp.dir, 'twice');
      await scriptBundle(bundleDir, 'echo started >> artifacts/starts.txt\nsleep 1');
      await host.stage('run-twice', bundleDir);
      const first = await host.launch('run-twice');
      const second = await host.launch('run-twice');
      expect(first.alreadyLaunched).toBe(false);
      expect(second).toEqual({ pid: first.pid, alreadyLaunched: true });
      await exited('run-twice');
      await host.collect('run-twice', bundleDir);
      expect(await readFile(join(bundleDir, 'artifacts/starts.txt'), 'utf8')).toBe('started\n');
    });

    it('reports the exit code of a failing entrypoint and still collects its log', async () => {
      const { bundleDir, probe } = await finishedRun('run-fail', 'fail', 'echo "about to fail" >&2\nexit 7');
      expect(probe.exitCode).toBe(7);
      const collected = await host.collect('run-fail', bundleDir);
      expect(collected.manifest.verified).toBe(true);
      expect(await readFile(join(bundleDir, 'artifacts/job.log'), 'utf8')).toContain('about to fail');
    });

    it('the probe reports the free and total space of the filesystem holding the run folder', async () => {
      const { probe } = await finishedRun('run-disk', 'disk', 'echo hi');
      const fs = await statfs(join(sut.workRoot, 'run-disk'));
      const mb = (blocks: number) => Math.floor((blocks * fs.bsize) / 1024 / 1024);
      expect(probe.diskTotalMb).toBe(mb(fs.blocks));
      // Free space moves as other tests write: near what statfs says, never above the total.
      expect(Math.abs(probe.diskFreeMb! - mb(fs.bavail))).toBeLessThan(512);
      expect(probe.diskFreeMb!).toBeLessThanOrEqual(probe.diskTotalMb!);
    });

    it('cancel KILLs a job that ignores TERM after the grace, and frees the killed wrapper\'s disk reserve', async () => {
      const bundleDir = join(tmp.dir, 'kill');
      await scriptBundle(bundleDir, "trap '' TERM\necho ready\nwhile true; do sleep 0.2; done");
      await host.stage('run-kill', bundleDir);
      await host.launch('run-kill');
      await waitFor(() => host.probe('run-kill', 'job.log'), (p) => p.state === 'running' && p.taskLogTail.includes('ready'));
      const reserve = join(sut.workRoot, 'run-kill', '.orbit-disk-reserve');
      expect(existsSync(reserve)).toBe(true);
      expect(await host.cancel('run-kill', 1)).toBe('killed');
      expect(existsSync(reserve)).toBe(false);
      expect((await host.probe('run-kill', 'job.log')).exitCode).toBe(137);
    });

    it('cancel stops the whole process group: the job and its child sleep', async () => {
      const bundleDir = join(tmp.dir, 'cancel');
      await scriptBundle(bundleDir, 'sleep 300 &\necho $! > artifacts/child.pid\nwait');
      await host.stage('run-cancel', bundleDir);
      await host.launch('run-cancel');
      const running = await waitFor(() => host.probe('run-cancel', 'job.log'), (p) => p.state === 'running' && p.artifactBytes > 0);
      expect(running.state).toBe('running');
      const pidFile = await waitFor(() => sut.transport.exec(`cat ${sut.workRoot}/run-cancel/artifacts/child.pid 2>/dev/null`), (r) => r.stdout.trim() !== '');
      const childPid = Number(pidFile.stdout.trim());
      expect(childPid).toBeGreaterThan(1);
      expect(await remoteAlive(childPid)).toBe(true);
      expect(await host.cancel('run-cancel', 10)).toBe('stopped');
      const after = await host.probe('run-cancel', 'job.log');
      expect(after.state).toBe('exited');
      expect(after.exitCode).not.toBe(0);
      expect(processGone(childPid)).toBe(true);
      expect(await remoteAlive(childPid)).toBe(false);
      expect(await remoteAlive(running.pid ?? 0)).toBe(false);
      expect(await host.cancel('run-cancel', 2)).toBe('not-running');
    });

    it('refuses links that leave the bundle and writes nothing outside it', async () => {
      const { bundleDir } = await finishedRun('run-hostile', 'hostile', 'ln -s /etc/passwd artifacts/passwd\nln -s ../../../../outside artifacts/up\necho ok > artifacts/fine.txt');
      const collected = await host.collect('run-hostile', bundleDir);
      const refused = collected.refused.map((r) => `${r.path}: ${r.message}`).join('\n');
      expect(refused).toContain('artifacts/passwd: symbolic link to "/etc/passwd", outside the bundle');
      expect(refused).toContain('artifacts/up: symbolic link to "../../../../outside", outside the bundle');
      expect(existsSync(join(bundleDir, 'artifacts/passwd'))).toBe(false);
      expect(existsSync(join(bundleDir, 'artifacts/fine.txt'))).toBe(true);
      expect(collected.manifest.verified).toBe(true);
    });

    it('refuses escaping names and a link to /etc/passwd from a hostile host, writing nothing outside the bundle', async () => {
      const body = 'ln -s /etc/passwd artifacts/passwd\nln -s .. artifacts/up\necho ok > artifacts/fine.txt\necho x > "artifacts/..\\\\..\\\\escape.txt"';
      const { bundleDir } = await finishedRun('run-nest-hostile', 'nest/hostile', body);
      // What a naive client would fetch for the fake entries: files that exist on the host.
      await writeFile(join(sut.workRoot, 'outside.txt'), 'owned\n');
      await writeFile(join(sut.workRoot, 'up.txt'), 'owned\n');
      const before = await filesBelow(tmp.dir);

      const hostile = new ShellHost({ name: host.name, transport: new HostileTransport(sut.transport), workRoot: sut.workRoot });
      const collected = await hostile.collect('run-nest-hostile', bundleDir);
      const refused = collected.refused.map((r) => `${r.path}: ${r.message}`);
      expect(refused).toContain('artifacts/passwd: symbolic link to "/etc/passwd", outside the bundle; links are not collected');
      expect(refused).toContain('artifacts/up: symbolic link to ".."; links are not collected');
      expect(refused).toContain('"artifacts/../../outside.txt": unsafe path from the host; not collected');
      expect(refused).toContain('"artifacts/sub/../../../up.txt": unsafe path from the host; not collected');
      expect(refused).toContain('"artifacts/..\\\\..\\\\escape.txt": unsafe path from the host; not collected');
      expect(await readFile(join(bundleDir, 'artifacts/fine.txt'), 'utf8')).toBe('ok\n');
      expect(existsSync(join(bundleDir, 'artifacts/passwd'))).toBe(false);
      const after = await filesBelow(tmp.dir);
      const outside = after.filter((f) => !before.includes(f) && !f.startsWith('nest/hostile/'));
      expect(outside).toEqual([]);
      expect(existsSync(join(tmp.dir, 'nest/outside.txt'))).toBe(false);
      expect(existsSync(join(tmp.dir, 'up.txt'))).toBe(false);
    });

    it('refuses a file whose size disagrees with the manifest, and resumes a cut transfer', async () => {
      const { bundleDir } = await finishedRun('run-resume', 'resume', 'head -c 300000 /dev/urandom > artifacts/big.bin\necho small > artifacts/small.txt');
      const remoteBig = join(sut.workRoot, 'run-resume/artifacts/big.bin');
      // Leave a cut partial file locally: the first 100000 bytes.
      await mkdir(join(bundleDir, 'artifacts'), { recursive: true });
      await writeFile(join(bundleDir, 'artifacts/big.bin.orbit-part'), (await readFile(remoteBig)).subarray(0, 100_000));
      // Tamper with the remote small file after the manifest was written.
      await writeFile(join(sut.workRoot, 'run-resume/artifacts/small.txt'), 'grown by an attacker\n');
      const collected = await host.collect('run-resume', bundleDir);
      expect(collected.refused).toContainEqual({ path: 'artifacts/small.txt', message: expect.stringMatching(/differs from the manifest's 6/) });
      expect(collected.manifest.verified).toBe(false);
      expect(collected.manifest.missing).toEqual(['small.txt']);
      expect(collected.manifest.verifiedFiles).toContain('big.bin');
      // The big file moved only its remaining 200000 bytes (plus the small log and runtime files).
      expect(collected.bytesFetched).toBeLessThan(300_000 - 100_000 + 20_000);
    });

    it('refuses to collect from a symlinked bundle folder that points elsewhere', async () => {
      const { bundleDir } = await finishedRun('run-linked', 'linked', 'mkdir -p artifacts/sub && echo hi > artifacts/sub/f');
      const elsewhere = join(tmp.dir, 'elsewhere');
      await mkdir(elsewhere);
      await symlink(elsewhere, join(bundleDir, 'artifacts/sub'));
      const collected = await host.collect('run-linked', bundleDir);
      expect(collected.refused).toContainEqual({ path: 'artifacts/sub/f', message: 'resolves outside the bundle; not collected' });
      expect(existsSync(join(elsewhere, 'f'))).toBe(false);
    });

    it('passes secrets into the job environment but into no collected file', async () => {
      const secret = `tok-${randomBytes(12).toString('hex')}`;
      const body =
        '[ -n "${ORBIT_TEST_TOKEN:-}" ] || exit 9\nprintf %s "$ORBIT_TEST_TOKEN" | sha256sum | cut -d" " -f1 > artifacts/token.sha256\nenv | cut -d= -f1 | sort > artifacts/env-names.txt';
      const { bundleDir, probe } = await finishedRun('run-secret', 'secret', body, { secrets: { ORBIT_TEST_TOKEN: secret } }, { secretEnv: ['ORBIT_TEST_TOKEN'] });
      expect(probe.exitCode).toBe(0);
      const collected = await host.collect('run-secret', bundleDir);
      expect(collected.manifest.verified).toBe(true);
      expect((await readFile(join(bundleDir, 'artifacts/token.sha256'), 'utf8')).trim()).toBe(createHash('sha256').update(secret).digest('hex'));
      expect(await readFile(join(bundleDir, 'artifacts/env-names.txt'), 'utf8')).toContain('ORBIT_TEST_TOKEN\n');
      for (const f of await filesBelow(bundleDir)) {
        expect((await readFile(join(bundleDir, f))).includes(secret), `${f} holds the secret`).toBe(false);
      }
      const remote = join(sut.workRoot, 'run-secret');
      for (const f of await filesBelow(remote)) {
        expect((await readFile(join(remote, f))).includes(secret), `remote ${f} holds the secret`).toBe(false);
      }
    });
  });
}
