import { existsSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalTransport } from '../../src/hosts/local-transport';
import { ShellHost } from '../../src/hosts/shell-host';
import { scriptBundle, tempDir } from '../helpers/bundles';
import { processGone } from '../helpers/processes';

async function waitFor<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('ShellHost over the local transport', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let host: ShellHost;
  beforeAll(async () => {
    tmp = await tempDir();
    host = new ShellHost({ name: 'local', transport: new LocalTransport(), workRoot: join(tmp.dir, 'work') });
  });
  afterAll(async () => tmp.cleanup());

  it('stages, runs detached, and collects verified artifacts', async () => {
    const bundleDir = join(tmp.dir, 'ok');
    await scriptBundle(bundleDir, 'cat inputs/data.txt > artifacts/out.txt\nmkdir -p artifacts/deep/er\necho x > artifacts/deep/er/y\necho done');
    const staged = await host.stage('run-ok', bundleDir);
    expect(staged.filesSent).toBe(8); // job.json, inputs/data.txt, scripts/job.sh, run.sh, manifest.py, precheck.py, precheck.json, gpu_audit.py
    const again = await host.stage('run-ok', bundleDir);
    expect(again).toEqual({ filesSent: 0, bytesSent: 0, filesSkipped: 8 });

    const launched = await host.launch('run-ok');
    expect(launched.alreadyLaunched).toBe(false);
    const probe = await waitFor(() => host.probe('run-ok', 'job.log'), (p) => p.state === 'exited');
    expect(probe.exitCode).toBe(0);
    expect(probe.taskLogTail).toContain('done');

    const collected = await host.collect('run-ok', bundleDir);
    expect(collected.refused).toEqual([]);
    expect(collected.manifest.verified).toBe(true);
    expect(collected.manifest.verifiedFiles.sort()).toEqual(['deep/er/y', 'job.log', 'nvml-audit.jsonl', 'out.txt', 'runtime-precheck.log']);
    expect(await readFile(join(bundleDir, 'artifacts/out.txt'), 'utf8')).toBe('hello\n');
    const lastRun = JSON.parse(await readFile(join(bundleDir, 'runtime/last_run.json'), 'utf8'));
    expect(lastRun).toMatchObject({ schemaVersion: 'orbit.last_run.v1', runId: 'run-ok', exitCode: 0 });
    expect(await readFile(join(bundleDir, 'runtime/runtime.log'), 'utf8')).toMatch(/start pid=\d+[\s\S]*exit code=0/);

    const second = await host.collect('run-ok', bundleDir);
    expect(second.filesFetched).toBe(0);
    expect(second.manifest.verified).toBe(true);
  });

  it('does not start a second process when launched twice', async () => {
    const bundleDir = join(tmp.dir, 'twice');
    await scriptBundle(bundleDir, 'echo started >> artifacts/starts.txt\nsleep 1');
    await host.stage('run-twice', bundleDir);
    const first = await host.launch('run-twice');
    const second = await host.launch('run-twice');
    expect(second.alreadyLaunched).toBe(true);
    expect(second.pid).toBe(first.pid);
    await waitFor(() => host.probe('run-twice', 'job.log'), (p) => p.state === 'exited');
    await host.collect('run-twice', bundleDir);
    expect(await readFile(join(bundleDir, 'artifacts/starts.txt'), 'utf8')).toBe('started\n');
  });

  it('reports the exit code of a failing entrypoint and still collects its log', async () => {
    const bundleDir = join(tmp.dir, 'fail');
    await scriptBundle(bundleDir, 'echo "about to fail" >&2\nexit 7');
    await host.stage('run-fail', bundleDir);
    await host.launch('run-fail');
    const probe = await waitFor(() => host.probe('run-fail', 'job.log'), (p) => p.state === 'exited');
    expect(probe.exitCode).toBe(7);
    const collected = await host.collect('run-fail', bundleDir);
    expect(collected.manifest.verified).toBe(true);
    expect(await readFile(join(bundleDir, 'artifacts/job.log'), 'utf8')).toContain('about to fail');
  });

  it('cancel stops the whole process group, children included', async () => {
    const bundleDir = join(tmp.dir, 'cancel');
    await scriptBundle(bundleDir, 'sleep 300 &\necho $! > artifacts/child.pid\nwait');
    await host.stage('run-cancel', bundleDir);
    await host.launch('run-cancel');
    await waitFor(() => host.probe('run-cancel', 'job.log'), (p) => p.state === 'running' && p.artifactBytes > 0);
    const childPid = Number((await waitFor(() => readFile(join(tmp.dir, 'work/run-cancel/artifacts/child.pid'), 'utf8').catch(() => ''), (s) => s.length > 0)).trim());
    expect(await host.cancel('run-cancel', 10)).toBe('stopped');
    const probe = await host.probe('run-cancel', 'job.log');
    expect(probe.state).toBe('exited');
    expect(probe.exitCode).not.toBe(0);
    expect(processGone(childPid)).toBe(true);
  });

  it('refuses links that leave the bundle and writes nothing outside it', async () => {
    const bundleDir = join(tmp.dir, 'hostile');
    await scriptBundle(bundleDir, 'ln -s /etc/passwd artifacts/passwd\nln -s ../../../../outside artifacts/up\necho ok > artifacts/fine.txt');
    await host.stage('run-hostile', bundleDir);
    await host.launch('run-hostile');
    await waitFor(() => host.probe('run-hostile', 'job.log'), (p) => p.state === 'exited');
    const collected = await host.collect('run-hostile', bundleDir);
    const refused = collected.refused.map((r) => `${r.path}: ${r.message}`).join('\n');
    expect(refused).toContain('artifacts/passwd: symbolic link to "/etc/passwd", outside the bundle');
    expect(refused).toContain('artifacts/up: symbolic link to "../../../../outside", outside the bundle');
    expect(existsSync(join(bundleDir, 'artifacts/passwd'))).toBe(false);
    expect(existsSync(join(bundleDir, 'artifacts/fine.txt'))).toBe(true);
    expect(collected.manifest.verified).toBe(true);
  });

  it('refuses a file whose size disagrees with the manifest, and resumes a cut transfer', async () => {
    const bundleDir = join(tmp.dir, 'resume');
    await scriptBundle(bundleDir, 'head -c 300000 /dev/urandom > artifacts/big.bin\necho small > artifacts/small.txt');
    await host.stage('run-resume', bundleDir);
    await host.launch('run-resume');
    await waitFor(() => host.probe('run-resume', 'job.log'), (p) => p.state === 'exited');
    const remoteBig = join(tmp.dir, 'work/run-resume/artifacts/big.bin');
    // Leave a cut partial file locally: the first 100000 bytes.
    await mkdir(join(bundleDir, 'artifacts'), { recursive: true });
    await writeFile(join(bundleDir, 'artifacts/big.bin.orbit-part'), (await readFile(remoteBig)).subarray(0, 100_000));
    // Tamper with the remote small file after the manifest was written.
    await writeFile(join(tmp.dir, 'work/run-resume/artifacts/small.txt'), 'grown by an attacker\n');
    const collected = await host.collect('run-resume', bundleDir);
    expect(collected.refused).toContainEqual({ path: 'artifacts/small.txt', message: expect.stringMatching(/differs from the manifest's 6/) });
    expect(collected.manifest.verified).toBe(false);
    expect(collected.manifest.missing).toEqual(['small.txt']);
    expect(collected.manifest.verifiedFiles).toContain('big.bin');
    // The big file moved only its remaining 200000 bytes (plus the small log and runtime files).
    expect(collected.bytesFetched).toBeLessThan(300_000 - 100_000 + 20_000);
  });

  it('refuses to collect from a symlinked bundle folder that points elsewhere', async () => {
    const bundleDir = join(tmp.dir, 'linked');
    await scriptBundle(bundleDir, 'mkdir -p artifacts/sub && echo hi > artifacts/sub/f');
    await host.stage('run-linked', bundleDir);
    await host.launch('run-linked');
    await waitFor(() => host.probe('run-linked', 'job.log'), (p) => p.state === 'exited');
    const elsewhere = join(tmp.dir, 'elsewhere');
    await mkdir(elsewhere);
    await symlink(elsewhere, join(bundleDir, 'artifacts/sub'));
    const collected = await host.collect('run-linked', bundleDir);
    expect(collected.refused).toContainEqual({ path: 'artifacts/sub/f', message: 'resolves outside the bundle; not collected' });
    expect(existsSync(join(elsewhere, 'f'))).toBe(false);
  });
});
