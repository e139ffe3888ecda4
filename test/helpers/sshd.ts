/**
 * Real OpenSSH servers for tests: each `startSshd()` runs `/usr/sbin/sshd -D -e` on 127.0.0.1 with
 * a free port, a throwaway host key, a throwaway user key and its own work root, as the current
 * user. Processes are ended by their own ids only (the sshd listener and its descendants).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import type { SshTransportOptions } from '../../src/hosts/ssh';
import { freePort } from './ports';

const run = promisify(execFile);
const SSHD = '/usr/sbin/sshd';

export interface SshdServer {
  name: string;
  address: string;
  port: number;
  user: string;
  /** OpenSSH form, as `ssh-keygen -lf` prints it: `SHA256:base64`. */
  hostKeyFingerprint: string;
  /** The host's public key line (`ssh-ed25519 AAAA...`). */
  hostPublicKey: string;
  /** A known_hosts file with this server's `[127.0.0.1]:port` entry. */
  knownHostsFile: string;
  /** The private key sshd accepts (no passphrase). */
  keyFile: string;
  /** An absolute work root that exists on the "host". */
  workRoot: string;
  /** The server's temp folder (keys, config, work root). */
  dir: string;
  /** A hosts.yaml entry for this server; `overrides` are merged on top. */
  hostsEntry(overrides?: Record<string, unknown>): Record<string, unknown>;
  /** Starts sshd again after `kill()`, on the same port with the same host key. */
  start(): Promise<void>;
  /** Ends sshd and every session, and deletes the temp folder. */
  stop(): Promise<void>;
  /** SIGSTOP to sshd and its sessions: the port still accepts TCP, nothing answers. */
  pause(): void;
  resume(): void;
  /** SIGKILL to sshd and its sessions (connections drop); files are kept for `start()`. */
  kill(): Promise<void>;
  /** What sshd printed on stderr (last 64 KiB). */
  log(): string;
}

export interface StartSshdOptions {
  name?: string;
  /** Extra environment for every session (e.g. a PATH with the project venv, as a rented host's own Python). */
  sessionEnv?: Record<string, string>;
}

let counter = 0;

/** Starts one sshd and waits until it greets with an SSH banner. */
export async function startSshd(options: StartSshdOptions = {}): Promise<SshdServer> {
  const name = options.name ?? `sshd-${process.pid}-${++counter}`;
  const dir = await mkdtemp(join(tmpdir(), 'orbit-sshd-'));
  const workRoot = join(dir, 'work');
  const home = join(dir, 'home');
  await Promise.all([mkdir(workRoot), mkdir(home)]);
  const hostKey = join(dir, 'host_ed25519');
  const keyFile = join(dir, 'user_ed25519');
  await Promise.all([
    run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}-host`, '-f', hostKey]),
    run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}-user`, '-f', keyFile]),
  ]);
  const hostPublicKey = (await readFile(`${hostKey}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
  const { stdout: fp } = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${hostKey}.pub`]);
  const hostKeyFingerprint = fp.split(/\s+/)[1] ?? '';
  await writeFile(join(dir, 'authorized_keys'), await readFile(`${keyFile}.pub`), { mode: 0o600 });
  const port = await freePort();
  const knownHostsFile = join(dir, 'known_hosts');
  await writeFile(knownHostsFile, `[127.0.0.1]:${port} ${hostPublicKey}\n`);
  const config = join(dir, 'sshd_config');
  await writeFile(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'UsePAM no',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UseDNS no',
      'PrintMotd no',
      'MaxSessions 20',
      'Subsystem sftp internal-sftp',
      // Sessions get an empty home: the runner's own dotfiles (a slow ~/.bashrc) stay out of the tests.
      `SetEnv HOME=${home}${Object.entries(options.sessionEnv ?? {})
        .map(([k, v]) => ` ${k}=${v}`)
        .join('')}`,
      '',
    ].join('\n'),
  );
  if (process.getuid?.() === 0) {
    try {
      mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    } catch {
      // sshd will say what it misses
    }
  }

  let child: ChildProcess | undefined;
  let stderr = '';
  const user = userInfo().username;

  const start = async (): Promise<void> => {
    stderr = '';
    const proc = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    proc.stderr?.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString('utf8')).slice(-65536);
    });
    const exited = new Promise<never>((_, reject) =>
      proc.once('exit', (code, signal) => reject(new Error(`sshd exited early (code ${code}, signal ${signal}):\n${stderr}`))),
    );
    exited.catch(() => undefined);
    await Promise.race([waitForBanner(port, 10_000), exited]);
  };

  const signalAll = (sig: NodeJS.Signals): number[] => {
    if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return [];
    const pids = [child.pid, ...descendants(child.pid)];
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    }
    return pids;
  };

  const end = async (sig: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    signalAll('SIGCONT');
    signalAll(sig);
    await Promise.race([gone, sleep(5000)]);
    signalAll('SIGKILL');
  };

  await start();
  return {
    name,
    address: '127.0.0.1',
    port,
    user,
    hostKeyFingerprint,
    hostPublicKey,
    knownHostsFile,
    keyFile,
    workRoot,
    dir,
    hostsEntry: (overrides = {}) => ({
      name,
      address: '127.0.0.1',
      port,
      user,
      identity: { keyFile },
      hostKey: { knownHostsFile },
      workRoot,
      resources: { gpus: 0, cpus: 2, memoryGb: 4 },
      labels: [],
      ...overrides,
    }),
    start,
    stop: async () => {
      await end('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
    pause: () => void signalAll('SIGSTOP'),
    resume: () => void signalAll('SIGCONT'),
    kill: () => end('SIGKILL'),
    log: () => stderr,
  };
}

/** Writes a hosts.yaml listing the given servers' entries (plus any extra raw entries). */
export async function writeHostsFile(path: string, servers: SshdServer[], extra: Record<string, unknown>[] = []): Promise<void> {
  await writeFile(path, stringify({ hosts: [...servers.map((s) => s.hostsEntry()), ...extra] }));
}

/**
 * SshTransport options that reach `server` with its user key and its pinned host key fingerprint;
 * `extra` replaces any of them (e.g. `hostKey: { knownHostsFile: server.knownHostsFile }`).
 */
export function sshOptions(server: SshdServer, extra: Partial<SshTransportOptions> = {}): SshTransportOptions {
  return {
    name: server.name,
    address: server.address,
    port: server.port,
    user: server.user,
    identity: { keyFile: server.keyFile },
    hostKey: { fingerprint: server.hostKeyFingerprint },
    ...extra,
  };
}

/** Every process below `root`, found through /proc (Linux). */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    for (const c of children.get(pid) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

async function waitForBanner(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await hasBanner(port)) return;
    if (Date.now() > deadline) throw new Error(`sshd on port ${port} did not answer within ${timeoutMs} ms`);
    await sleep(50);
  }
}

function hasBanner(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('error', () => done(false));
    sock.once('data', (b: Buffer) => done(b.toString('latin1').startsWith('SSH-')));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
