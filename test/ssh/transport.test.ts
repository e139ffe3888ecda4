import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostKeyError, SshAuthError, SshTransport, type SshTransportOptions } from '../../src/hosts/ssh';
import { HostUnreachableError } from '../../src/hosts/transport';
import { tempDir } from '../helpers/bundles';
import { closedPort } from '../helpers/ports';
import { sshOptions, startSshd, type SshdServer } from '../helpers/sshd';

function transportFor(s: SshdServer, extra: Partial<SshTransportOptions> = {}): SshTransport {
  return new SshTransport(sshOptions(s, { hostKey: { knownHostsFile: s.knownHostsFile }, readyTimeoutMs: 5000, ...extra }));
}

describe('SshTransport against a real sshd', () => {
  let server: SshdServer;
  let other: SshdServer;
  let t: SshTransport;
  let tmp: Awaited<ReturnType<typeof tempDir>>;

  beforeAll(async () => {
    [server, other, tmp] = await Promise.all([startSshd({ name: 'main' }), startSshd({ name: 'other' }), tempDir()]);
    t = transportFor(server);
  });
  afterAll(async () => {
    await t?.close();
    await Promise.all([server?.stop(), other?.stop(), tmp?.cleanup()]);
  });

  it('runs bash scripts: stdout, stderr, exit code, stdin', async () => {
    const r = await t.exec('echo "out $((6*7))"; echo err >&2; exit 3');
    expect(r).toEqual({ code: 3, stdout: 'out 42\n', stderr: 'err\n' });
    const piped = await t.exec('tr a-z A-Z; printf "%s" "$0"', { stdin: 'secret value\n' });
    expect(piped.code).toBe(0);
    expect(piped.stdout).toBe('SECRET VALUE\nbash');
    const quoted = await t.exec(`printf '%s|' "it's" '$HOME' "a\\"b"`);
    expect(quoted.stdout).toBe(`it's|$HOME|a"b|`);
    const binary = await t.exec('head -c 100000 /dev/zero | tr "\\0" x');
    expect(binary.stdout).toBe('x'.repeat(100_000));
  });

  it('runs scripts longer than one command-line argument may be, stdin intact', async () => {
    const lines = Array.from({ length: 6000 }, (_, i) => `x${i}='${'é'.repeat(10)}-${i}'`);
    const script = `${lines.join('\n')}\necho "$x0 $x5999"\ncat`;
    expect(Buffer.byteLength(script)).toBeGreaterThan(200_000);
    const r = await t.exec(script, { stdin: 'from stdin\n' });
    expect(r).toEqual({ code: 0, stdout: `${'é'.repeat(10)}-0 ${'é'.repeat(10)}-5999\nfrom stdin\n`, stderr: '' });
  });

  it('shares one connection between concurrent callers', async () => {
    const fresh = transportFor(server);
    try {
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => fresh.exec(`echo $PPID-${i}`)));
      expect(results.map((r) => r.stdout.split('-')[1]?.trim())).toEqual(Array.from({ length: 12 }, (_, i) => String(i)));
      const sshdPids = new Set(results.map((r) => r.stdout.split('-')[0]));
      // One connection: every session is a child of the same per-connection sshd process.
      expect(sshdPids.size).toBe(1);
    } finally {
      await fresh.close();
    }
  });

  it('kills the whole remote script on timeout, children included', async () => {
    const marker = join(server.workRoot, 'timeout-child.pid');
    const started = Date.now();
    await expect(t.exec(`sleep 30 & echo $! > ${marker}; wait`, { timeoutMs: 700 })).rejects.toThrow(/timed out after 700 ms/);
    expect(Date.now() - started).toBeLessThan(3000);
    const pid = Number((await readFile(marker, 'utf8')).trim());
    await expect.poll(() => isAlive(pid), { timeout: 5000 }).toBe(false);
  });

  it('stops on abort and refuses output over maxOutputBytes', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    await expect(t.exec('sleep 30', { signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' });
    await expect(t.exec('head -c 5000 /dev/zero', { maxOutputBytes: 1000 })).rejects.toThrow(/printed more than 1000 bytes/);
    expect((await t.exec('echo still fine')).stdout).toBe('still fine\n');
  });

  it('streams stdout in order to a slow consumer, and kills the script when the consumer throws', async () => {
    // 8 MiB, far more than the SSH window: the far side must wait while the consumer is slow.
    const expected = (await t.exec('seq 1 1000000 | sha256sum')).stdout.split(' ')[0];
    const hash = createHash('sha256');
    let chunks = 0;
    const r = await t.execStream('seq 1 1000000; echo done >&2', {
      onStdout: async (chunk) => {
        hash.update(chunk);
        if (++chunks % 50 === 0) await new Promise((res) => setTimeout(res, 5));
      },
    });
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: 'done\n' });
    expect(hash.digest('hex')).toBe(expected);
    expect(chunks).toBeGreaterThan(50);

    const marker = join(server.workRoot, 'stream-child.pid');
    await expect(
      t.execStream(`sleep 30 & echo $! > ${marker}; while true; do echo tick; sleep 0.05; done`, {
        onStdout: () => {
          throw new Error('consumer refuses this stream');
        },
      }),
    ).rejects.toThrow('consumer refuses this stream');
    const pid = Number((await readFile(marker, 'utf8')).trim());
    await expect.poll(() => isAlive(pid), { timeout: 5000 }).toBe(false);
  });

  it('uploads byte-exact (creating folders) and downloads ranges that resume', async () => {
    const data = randomBytes(1_234_567);
    const local = join(tmp.dir, 'up.bin');
    await writeFile(local, data, { mode: 0o750 });
    const remote = join(server.workRoot, 'deep/er/up.bin');
    let progress = 0;
    await t.upload(local, remote, { onProgress: (n) => (progress = n) });
    expect(progress).toBe(data.length);
    expect((await readFile(remote)).equals(data)).toBe(true);
    expect((await t.exec(`stat -c %a ${remote}`)).stdout.trim()).toBe('750');

    const back = join(tmp.dir, 'back/down.bin');
    expect(await t.download(remote, back, 0, 100_000)).toBe(100_000);
    expect(await t.download(remote, back, 100_000, 1)).toBe(1);
    expect(await t.download(remote, back, 100_001, 10_000_000)).toBe(data.length - 100_001);
    expect((await readFile(back)).equals(data)).toBe(true);
    expect(await t.download(remote, back, data.length, 1000)).toBe(0);
    expect(await t.download(remote, back, data.length + 50, 1000)).toBe(0);

    const empty = join(server.workRoot, 'empty');
    await writeFile(empty, '');
    await t.upload(empty, join(server.workRoot, 'empty-copy'));
    expect((await readFile(join(server.workRoot, 'empty-copy'))).length).toBe(0);
    await expect(t.download(join(server.workRoot, 'nope'), join(tmp.dir, 'nope'), 0, 10)).rejects.toThrow(/download of .*nope.* failed/);
  });

  it('reconnects after the host drops every connection and restarts', async () => {
    const fresh = transportFor(server);
    try {
      expect((await fresh.exec('echo one')).stdout).toBe('one\n');
      await server.kill();
      await expect(fresh.exec('echo during')).rejects.toBeInstanceOf(HostUnreachableError);
      await server.start();
      expect((await fresh.exec('echo two')).stdout).toBe('two\n');
      const local = join(tmp.dir, 'after.txt');
      await writeFile(local, 'after restart');
      await fresh.upload(local, join(server.workRoot, 'after.txt'));
      expect(await readFile(join(server.workRoot, 'after.txt'), 'utf8')).toBe('after restart');
    } finally {
      await fresh.close();
    }
  });

  it('refuses an unknown host key, showing the fingerprint and how to pin it', async () => {
    const empty = join(tmp.dir, 'empty_known_hosts');
    await writeFile(empty, '');
    const e = await transportFor(server, { hostKey: { knownHostsFile: empty } }).exec('true').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(HostKeyError);
    const err = e as HostKeyError;
    expect(err.reason).toBe('unknown');
    expect(err.offeredFingerprint).toBe(server.hostKeyFingerprint);
    expect(err.message).toContain(`it offered ssh-ed25519 key ${server.hostKeyFingerprint}`);
    expect(err.message).toContain(`hostKey: { fingerprint: "${server.hostKeyFingerprint}" }`);
    expect(err.message).toContain(`ssh-keyscan -p ${server.port} 127.0.0.1 >> ${empty}`);

    const missing = await transportFor(server, { hostKey: { knownHostsFile: join(tmp.dir, 'absent') } }).exec('true').catch((x: unknown) => x);
    expect((missing as Error).message).toMatch(/absent does not exist/);
  });

  it('refuses a changed key: pinned fingerprint or known_hosts entry of another host key', async () => {
    const pinned = await transportFor(server, { hostKey: { fingerprint: other.hostKeyFingerprint } }).exec('true').catch((x: unknown) => x);
    expect(pinned).toBeInstanceOf(HostKeyError);
    expect((pinned as HostKeyError).reason).toBe('changed');
    expect((pinned as Error).message).toContain(`HOST KEY MISMATCH for main (${server.user}@127.0.0.1:${server.port}): it offered ssh-ed25519 key ${server.hostKeyFingerprint}, but hosts.yaml pins ${other.hostKeyFingerprint}`);
    expect((pinned as Error).message).toContain(`set hostKey.fingerprint to "${server.hostKeyFingerprint}"`);

    const stale = join(tmp.dir, 'stale_known_hosts');
    await writeFile(stale, `# old entry\n[127.0.0.1]:${server.port} ${other.hostPublicKey}\n`);
    const changed = await transportFor(server, { hostKey: { knownHostsFile: stale } }).exec('true').catch((x: unknown) => x);
    expect(changed).toBeInstanceOf(HostKeyError);
    expect((changed as Error).message).toContain(`${stale} line 2 lists another ssh-ed25519 key for [127.0.0.1]:${server.port}`);

    const ok = transportFor(server, { hostKey: { fingerprint: server.hostKeyFingerprint } });
    expect((await ok.exec('echo pinned')).stdout).toBe('pinned\n');
    await ok.close();
  });

  it('accepts hashed known_hosts entries', async () => {
    const hashed = join(tmp.dir, 'hashed_known_hosts');
    await writeFile(hashed, await readFile(server.knownHostsFile));
    const { execFileSync } = await import('node:child_process');
    execFileSync('ssh-keygen', ['-H', '-f', hashed], { stdio: 'ignore' });
    expect(await readFile(hashed, 'utf8')).toMatch(/^\|1\|/);
    const h = transportFor(server, { hostKey: { knownHostsFile: hashed } });
    expect((await h.exec('echo hashed')).stdout).toBe('hashed\n');
    await h.close();
  });

  it('fails with HostUnreachableError on a closed port and on a frozen host, within the timeout', async () => {
    const port = await closedPort();
    const started = Date.now();
    const closed = await transportFor(server, { port }).exec('true').catch((x: unknown) => x);
    expect(closed).toBeInstanceOf(HostUnreachableError);
    expect((closed as Error).message).toMatch(/ECONNREFUSED/);
    expect((closed as Error).cause).toBeDefined();

    other.pause();
    try {
      const frozen = await transportFor(other, { readyTimeoutMs: 800 }).exec('true').catch((x: unknown) => x);
      expect(frozen).toBeInstanceOf(HostUnreachableError);
      expect((frozen as Error).message).toMatch(/no SSH handshake within 800 ms/);
    } finally {
      other.resume();
    }
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('notices a frozen host through keepalives, then reconnects once it answers again', async () => {
    const k = transportFor(other, { keepaliveIntervalMs: 200, keepaliveCountMax: 2 });
    try {
      expect((await k.exec('echo before')).stdout).toBe('before\n');
      other.pause();
      const started = Date.now();
      try {
        const e = await k.exec('echo during').catch((x: unknown) => x);
        expect(e).toBeInstanceOf(HostUnreachableError);
        expect((e as Error).message).toMatch(/connection to other .* was lost/);
        expect(Date.now() - started).toBeLessThan(3000);
      } finally {
        other.resume();
      }
      expect((await k.exec('echo after')).stdout).toBe('after\n');
    } finally {
      await k.close();
    }
  });

  it('authenticates with the keys of ssh-agent via SSH_AUTH_SOCK', async () => {
    const { spawn, execFileSync } = await import('node:child_process');
    const sock = join(tmp.dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    try {
      await expect.poll(() => existsSync(sock), { timeout: 5000 }).toBe(true);
      execFileSync('ssh-add', ['-q', server.keyFile], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
      const viaAgent = transportFor(server, { identity: { agent: true }, env: { SSH_AUTH_SOCK: sock } });
      expect((await viaAgent.exec('echo agent')).stdout).toBe('agent\n');
      await viaAgent.close();
      const noAgent = await transportFor(server, { identity: { agent: true }, env: {} }).exec('true').catch((x: unknown) => x);
      expect(noAgent).toBeInstanceOf(SshAuthError);
      expect((noAgent as Error).message).toMatch(/SSH_AUTH_SOCK is not set/);
    } finally {
      if (agent.pid) process.kill(agent.pid, 'SIGTERM');
    }
  });

  it('reports a refused identity and an encrypted key without passphrase as SshAuthError', async () => {
    const refused = await transportFor(server, { identity: { keyFile: other.keyFile } }).exec('true').catch((x: unknown) => x);
    expect(refused).toBeInstanceOf(SshAuthError);
    expect((refused as Error).message).toMatch(/refused the key .*user_ed25519 for user/);

    const { execFileSync } = await import('node:child_process');
    const enc = join(tmp.dir, 'enc_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'pw-123', '-f', enc]);
    const noPass = await transportFor(server, { identity: { keyFile: enc } }).exec('true').catch((x: unknown) => x);
    expect(noPass).toBeInstanceOf(SshAuthError);
    expect((noPass as Error).message).toMatch(/set identity.passphraseEnv/);
    const unset = await transportFor(server, { identity: { keyFile: enc, passphraseEnv: 'ORBIT_TEST_PW' }, env: {} }).exec('true').catch((x: unknown) => x);
    expect((unset as Error).message).toMatch(/ORBIT_TEST_PW, which is not set/);

    await writeFile(join(server.dir, 'authorized_keys'), (await readFile(join(server.dir, 'authorized_keys'), 'utf8')) + (await readFile(`${enc}.pub`, 'utf8')));
    const withPass = transportFor(server, { identity: { keyFile: enc, passphraseEnv: 'ORBIT_TEST_PW' }, env: { ORBIT_TEST_PW: 'pw-123' } });
    expect((await withPass.exec('echo unlocked')).stdout).toBe('unlocked\n');
    await withPass.close();
  });
});

/** True while `pid` runs; a zombie waiting for init to reap it counts as dead. */
function isAlive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}
