import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShellHost } from '../../src/hosts/shell-host';
import { SshTransport } from '../../src/hosts/ssh-transport';
import type { ExecOptions, ExecResult, StreamExecOptions, TransferOptions, Transport } from '../../src/hosts/transport';
import { scriptBundle, tempDir } from '../helpers/bundles';
import { startSshd, type SshdServer } from './harness';

async function waitFor<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** Every file below `dir` (relative paths). */
async function allFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

/** A compromised host: its listing of the run also offers a path that climbs out of the bundle. */
class HostileTransport implements Transport {
  readonly description: string;
  constructor(private readonly inner: Transport) {
    this.description = `hostile ${inner.description}`;
  }
  async exec(script: string, options?: ExecOptions): Promise<ExecResult> {
    const r = await this.inner.exec(script, options);
    if (script.includes('find artifacts runtime')) return { ...r, stdout: `${r.stdout}f\0artifacts/../../outside.txt\x006\0f\0artifacts/sub/../../../up.txt\x006\0` };
    return r;
  }
  execStream(script: string, options: StreamExecOptions): Promise<ExecResult> {
    return this.inner.execStream(script, options);
  }
  upload(localPath: string, remotePath: string, options?: TransferOptions): Promise<void> {
    return this.inner.upload(localPath, remotePath, options);
  }
  download(remotePath: string, localPath: string, offset: number, maxBytes: number, options?: TransferOptions): Promise<number> {
    return this.inner.download(remotePath, localPath, offset, maxBytes, options);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

describe('ShellHost over SSH', () => {
  let server: SshdServer;
  let transport: SshTransport;
  let host: ShellHost;
  let tmp: Awaited<ReturnType<typeof tempDir>>;

  beforeAll(async () => {
    [server, tmp] = await Promise.all([startSshd({ name: 'ssh-host' }), tempDir()]);
    transport = new SshTransport({
      name: server.name,
      address: server.address,
      port: server.port,
      user: server.user,
      identity: { keyFile: server.keyFile },
      hostKey: { fingerprint: server.hostKeyFingerprint },
    });
    host = new ShellHost({ name: server.name, transport, workRoot: server.workRoot });
  });
  afterAll(async () => {
    await transport?.close();
    await Promise.all([server?.stop(), tmp?.cleanup()]);
  });

  /** Whether `pid` runs on the host; a zombie not yet reaped by init counts as dead. */
  const remoteAlive = async (pid: number) => /^[^Z]/.test((await transport.exec(`ps -o stat= -p ${pid}`)).stdout.trim());

  it('runs a bundle to success and collects verified artifacts', async () => {
    const bundleDir = join(tmp.dir, 'ok');
    await scriptBundle(bundleDir, 'cat inputs/data.txt > artifacts/out.txt\nmkdir -p artifacts/deep\nhead -c 300000 /dev/urandom > artifacts/deep/big.bin\necho done');
    const frozen = 1 + (await allFiles(join(bundleDir, 'inputs'))).length + (await allFiles(join(bundleDir, 'scripts'))).length;
    expect((await host.stage('run-ok', bundleDir)).filesSent).toBe(frozen);
    expect(await host.stage('run-ok', bundleDir)).toMatchObject({ filesSent: 0, bytesSent: 0, filesSkipped: frozen });
    expect((await host.launch('run-ok')).alreadyLaunched).toBe(false);
    const probe = await waitFor(() => host.probe('run-ok', 'job.log'), (p) => p.state === 'exited');
    expect(probe.exitCode).toBe(0);
    expect(probe.taskLogTail).toContain('done');

    const collected = await host.collect('run-ok', bundleDir);
    expect(collected.refused).toEqual([]);
    expect(collected.manifest.verified).toBe(true);
    expect(collected.manifest.verifiedFiles).toEqual(expect.arrayContaining(['deep/big.bin', 'job.log', 'out.txt']));
    expect(await readFile(join(bundleDir, 'artifacts/out.txt'), 'utf8')).toBe('hello\n');
    const remoteBig = await readFile(join(server.workRoot, 'run-ok/artifacts/deep/big.bin'));
    expect((await readFile(join(bundleDir, 'artifacts/deep/big.bin'))).equals(remoteBig)).toBe(true);
    expect(JSON.parse(await readFile(join(bundleDir, 'runtime/last_run.json'), 'utf8'))).toMatchObject({ runId: 'run-ok', exitCode: 0 });
    expect((await host.collect('run-ok', bundleDir)).filesFetched).toBe(0);
  });

  it('does not start a second process when the same run is launched again', async () => {
    const bundleDir = join(tmp.dir, 'twice');
    await scriptBundle(bundleDir, 'echo started >> artifacts/starts.txt\nsleep 1');
    await host.stage('run-twice', bundleDir);
    const [first, second] = [await host.launch('run-twice'), await host.launch('run-twice')];
    expect(first.alreadyLaunched).toBe(false);
    expect(second).toEqual({ pid: first.pid, alreadyLaunched: true });
    await waitFor(() => host.probe('run-twice', 'job.log'), (p) => p.state === 'exited');
    await host.collect('run-twice', bundleDir);
    expect(await readFile(join(bundleDir, 'artifacts/starts.txt'), 'utf8')).toBe('started\n');
  });

  it('cancel kills the whole process group: the job and its child sleep', async () => {
    const bundleDir = join(tmp.dir, 'cancel');
    await scriptBundle(bundleDir, 'sleep 300 &\necho $! > artifacts/child.pid\nwait');
    await host.stage('run-cancel', bundleDir);
    await host.launch('run-cancel');
    const running = await waitFor(() => host.probe('run-cancel', 'job.log'), (p) => p.state === 'running' && p.artifactBytes > 0);
    expect(running.state).toBe('running');
    const pidFile = await waitFor(() => transport.exec(`cat ${server.workRoot}/run-cancel/artifacts/child.pid 2>/dev/null`), (r) => r.stdout.trim() !== '');
    const childPid = Number(pidFile.stdout.trim());
    expect(childPid).toBeGreaterThan(1);
    expect(await remoteAlive(childPid)).toBe(true);
    expect(await host.cancel('run-cancel', 2)).toBe('stopped');
    const after = await host.probe('run-cancel', 'job.log');
    expect(after.state).toBe('exited');
    expect(await remoteAlive(childPid)).toBe(false);
    expect(await remoteAlive(running.pid ?? 0)).toBe(false);
    expect(await host.cancel('run-cancel', 2)).toBe('not-running');
  });

  it('refuses escaping names and a link to /etc/passwd, writing nothing outside the bundle', async () => {
    const bundleDir = join(tmp.dir, 'nest/hostile');
    await scriptBundle(bundleDir, 'ln -s /etc/passwd artifacts/passwd\nln -s .. artifacts/up\necho ok > artifacts/fine.txt\necho x > "artifacts/..\\\\..\\\\escape.txt"');
    await host.stage('run-hostile', bundleDir);
    await host.launch('run-hostile');
    await waitFor(() => host.probe('run-hostile', 'job.log'), (p) => p.state === 'exited');
    // What a naive client would fetch for the fake entries: files that exist on the host.
    await writeFile(join(server.workRoot, 'outside.txt'), 'owned\n');
    await writeFile(join(server.workRoot, 'up.txt'), 'owned\n');
    const before = await allFiles(tmp.dir);

    const hostile = new ShellHost({ name: server.name, transport: new HostileTransport(transport), workRoot: server.workRoot });
    const collected = await hostile.collect('run-hostile', bundleDir);
    const refused = collected.refused.map((r) => `${r.path}: ${r.message}`);
    expect(refused).toContain('artifacts/passwd: symbolic link to "/etc/passwd", outside the bundle; links are not collected');
    expect(refused).toContain('artifacts/up: symbolic link to ".."; links are not collected');
    expect(refused).toContain('"artifacts/../../outside.txt": unsafe path from the host; not collected');
    expect(refused).toContain('"artifacts/sub/../../../up.txt": unsafe path from the host; not collected');
    expect(refused).toContain('"artifacts/..\\\\..\\\\escape.txt": unsafe path from the host; not collected');
    expect(await readFile(join(bundleDir, 'artifacts/fine.txt'), 'utf8')).toBe('ok\n');
    expect(existsSync(join(bundleDir, 'artifacts/passwd'))).toBe(false);
    const after = await allFiles(tmp.dir);
    const outside = after.filter((f) => !before.includes(f) && !f.startsWith('nest/hostile/'));
    expect(outside).toEqual([]);
    expect(existsSync(join(tmp.dir, 'nest/outside.txt'))).toBe(false);
    expect(existsSync(join(tmp.dir, 'up.txt'))).toBe(false);
  });

  it('passes secrets into the job environment but into no collected file', async () => {
    const secret = `tok-${randomBytes(12).toString('hex')}`;
    const bundleDir = join(tmp.dir, 'secret');
    await scriptBundle(bundleDir, '[ -n "${ORBIT_TEST_TOKEN:-}" ] || exit 9\nprintf %s "$ORBIT_TEST_TOKEN" | sha256sum | cut -d" " -f1 > artifacts/token.sha256\nenv | cut -d= -f1 | sort > artifacts/env-names.txt', {
      secretEnv: ['ORBIT_TEST_TOKEN'],
    });
    await host.stage('run-secret', bundleDir);
    await host.launch('run-secret', { secrets: { ORBIT_TEST_TOKEN: secret } });
    const probe = await waitFor(() => host.probe('run-secret', 'job.log'), (p) => p.state === 'exited');
    expect(probe.exitCode).toBe(0);
    const collected = await host.collect('run-secret', bundleDir);
    expect(collected.manifest.verified).toBe(true);
    const { createHash } = await import('node:crypto');
    expect((await readFile(join(bundleDir, 'artifacts/token.sha256'), 'utf8')).trim()).toBe(createHash('sha256').update(secret).digest('hex'));
    expect(await readFile(join(bundleDir, 'artifacts/env-names.txt'), 'utf8')).toContain('ORBIT_TEST_TOKEN\n');
    for (const f of await allFiles(bundleDir)) {
      expect((await readFile(join(bundleDir, f))).includes(secret), `${f} holds the secret`).toBe(false);
    }
    for (const f of await allFiles(join(server.workRoot, 'run-secret'))) {
      expect((await readFile(join(server.workRoot, 'run-secret', f))).includes(secret), `remote ${f} holds the secret`).toBe(false);
    }
  });
});
