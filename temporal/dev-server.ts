/**
 * Starts (or reuses) the embedded Temporal dev server: `temporal server start-dev` on loopback with its
 * SQLite file, pid and log under $ORBIT_HOME/temporal/ (default ~/.orbit/temporal/), the Web UI, and
 * Orbit's search attributes registered; and stops it again (`orbit down`).
 */
import { spawn, execFile, execFileSync } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { connect } from 'node:net';
import { basename, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { ORBIT_SEARCH_ATTRIBUTES } from '../src/common/search-attributes';
import { orbitHome } from '../src/orbit-home';
import { findTemporalBinary } from './binary';

const run = promisify(execFile);

export interface DevServerOptions {
  port?: number;
  uiPort?: number;
  /** Folder for the SQLite file, pid and log; default defaultDataDir(). */
  dataDir?: string;
  binary?: string;
  namespace?: string;
  /** Keep running after this process exits (the demo); tests stop it themselves. */
  detached?: boolean;
  /** Keep the server's state in memory, not in the SQLite file (benchmarks that isolate the worker from the disk). */
  inMemory?: boolean;
  startTimeoutMs?: number;
}

export interface DevServer {
  address: string;
  uiUrl: string;
  /** False when an already running server was reused. */
  started: boolean;
  pid: number | null;
  dbFile: string;
  /** Stops the server if this call started it (SIGTERM, then SIGKILL). */
  stop(): Promise<void>;
  /** SIGKILLs the server (fault tests). */
  kill(): void;
}

/** The dev server's folder (temporal.sqlite, server.pid, server.log): $ORBIT_HOME/temporal. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(orbitHome(env), 'temporal');
}

const PID_FILE = 'server.pid';
const DB_FILE = 'temporal.sqlite';

export function portOpen(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Registers any of Orbit's search attributes the namespace lacks (idempotent). */
export async function registerSearchAttributes(binary: string, address: string, namespace = 'default'): Promise<string[]> {
  const { stdout } = await run(binary, ['operator', 'search-attribute', 'list', '--address', address, '--namespace', namespace, '-o', 'json']);
  const existing = JSON.stringify(JSON.parse(stdout));
  const added: string[] = [];
  for (const sa of ORBIT_SEARCH_ATTRIBUTES) {
    if (existing.includes(`"${sa.name}"`)) continue;
    await run(binary, ['operator', 'search-attribute', 'create', '--address', address, '--namespace', namespace, '--name', sa.name, '--type', sa.type]);
    added.push(sa.name);
  }
  return added;
}

/** `temporal server start-dev` exited before it answered; `reason` is the last error line of its log. */
export class DevServerStartError extends Error {
  readonly reason: string;
  constructor(readonly exitCode: number | null, readonly logFile: string) {
    const reason = lastErrorLine(logFile);
    super(`temporal server start-dev exited with ${exitCode}${reason ? `: ${reason}` : ''}; see ${logFile}`);
    this.reason = reason;
  }
  /** Another process took one of its ports between choosing and binding it. */
  get portTaken(): boolean {
    return /address already in use/i.test(this.reason);
  }
}

function lastErrorLine(logFile: string): string {
  try {
    const lines = readFileSync(logFile, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);
    const error = [...lines].reverse().find((l) => /^error\b/i.test(l)) ?? lines.at(-1) ?? '';
    return error.replace(/^error:\s*/i, '').slice(0, 300);
  } catch {
    return '';
  }
}

/** Reuses a server already answering on `port`, or starts one. */
export async function ensureDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const port = options.port ?? 7233;
  const uiPort = options.uiPort ?? port + 1000;
  const dataDir = options.dataDir ?? defaultDataDir();
  const binary = options.binary ?? findTemporalBinary();
  const namespace = options.namespace ?? 'default';
  const address = `127.0.0.1:${port}`;
  const dbFile = join(dataDir, DB_FILE);
  const uiUrl = `http://localhost:${uiPort}`;

  if (await portOpen(port)) {
    await waitFor(() => healthy(binary, address), 30_000, `the Temporal server already on ${address}`);
    await registerSearchAttributes(binary, address, namespace);
    const pidFile = join(dataDir, PID_FILE);
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) || null : null;
    return { address, uiUrl, started: false, pid, dbFile, stop: async () => {}, kill: () => {} };
  }

  mkdirSync(dataDir, { recursive: true });
  const logFd = openSync(join(dataDir, 'server.log'), 'a');
  const args = [
    'server', 'start-dev',
    '--ip', '127.0.0.1',
    '--port', String(port),
    '--ui-port', String(uiPort),
    ...(options.inMemory ? [] : ['--db-filename', dbFile]),
    '--namespace', namespace,
    '--log-level', 'warn',
    ...ORBIT_SEARCH_ATTRIBUTES.flatMap((sa) => ['--search-attribute', `${sa.name}=${sa.type}`]),
  ];
  const child = spawn(binary, args, { detached: true, stdio: ['ignore', logFd, logFd] });
  if (options.detached) child.unref();
  const pid = child.pid ?? null;
  writeFileSync(join(dataDir, PID_FILE), `${pid}\n`);
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  await waitFor(async () => {
    if (exited !== undefined) throw new DevServerStartError(exited, join(dataDir, 'server.log'));
    return (await portOpen(port)) && (await healthy(binary, address));
  }, options.startTimeoutMs ?? 60_000, `temporal server start-dev on ${address}`);
  await registerSearchAttributes(binary, address, namespace);

  const signal = (sig: NodeJS.Signals) => {
    try {
      if (pid) process.kill(-pid, sig);
    } catch {
      /* already gone */
    }
  };
  return {
    address,
    uiUrl,
    started: true,
    pid,
    dbFile,
    kill: () => signal('SIGKILL'),
    stop: async () => {
      if (exited !== undefined) return;
      signal('SIGTERM');
      await waitFor(async () => exited !== undefined, 10_000, 'the dev server to stop').catch(() => signal('SIGKILL'));
    },
  };
}

export interface StopDevServerOptions {
  /** When given, only a server listening on this port is stopped. */
  port?: number;
  /** The folder whose server.pid names the server; default defaultDataDir(). */
  dataDir?: string;
  /** How long to wait after SIGTERM before SIGKILL. */
  graceMs?: number;
}

export type StopDevServerResult =
  | { state: 'stopped'; pid: number; /** It outlived the grace period and was SIGKILLed. */ forced: boolean }
  | {
      state: 'not-running';
      /** The data dir's server runs, but on this port rather than the one asked for (it was left alone). */
      otherPort?: number;
      /** Something listens on the port asked for, but it is not the data dir's server (it was left alone). */
      portBusy?: boolean;
    };

/**
 * Stops the dev server that ensureDevServer started from `dataDir`: reads server.pid, checks that the
 * pid is that server (its command line is `temporal server start-dev` with the folder's SQLite file and,
 * when asked, the port), sends SIGTERM to its process group, waits up to `graceMs` (10 s) for it to
 * exit, then SIGKILLs it, and removes server.pid. A pid file naming no such server is stale: it is
 * removed and nothing is signalled.
 */
export async function stopDevServer(options: StopDevServerOptions = {}): Promise<StopDevServerResult> {
  const dataDir = options.dataDir ?? defaultDataDir();
  const pidFile = join(dataDir, PID_FILE);
  const pid = readPid(pidFile);
  const argv = pid === null ? undefined : commandLine(pid);
  const ours = argv !== undefined && isDevServerOf(argv, join(dataDir, DB_FILE));
  if (!ours) {
    rmSync(pidFile, { force: true });
    return notRunning(options.port);
  }
  const listening = flagValue(argv, '--port');
  if (options.port !== undefined && listening !== undefined && Number(listening) !== options.port) {
    return { state: 'not-running', otherPort: Number(listening), ...((await portOpen(options.port)) ? { portBusy: true } : {}) };
  }
  const id = pid as number;
  signalGroup(id, 'SIGTERM');
  let forced = false;
  if (!(await exited(id, options.graceMs ?? 10_000))) {
    forced = true;
    signalGroup(id, 'SIGKILL');
    await exited(id, 5_000);
  }
  rmSync(pidFile, { force: true });
  return { state: 'stopped', pid: id, forced };
}

async function notRunning(port: number | undefined): Promise<StopDevServerResult> {
  return port !== undefined && (await portOpen(port)) ? { state: 'not-running', portBusy: true } : { state: 'not-running' };
}

function readPid(pidFile: string): number | null {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

/** The argv of a live process, or undefined when there is none (or it is a zombie). */
function commandLine(pid: number): string[] | undefined {
  try {
    if (/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) return undefined;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || process.platform === 'linux') return undefined;
  }
  try {
    // No /proc (macOS): ps prints the arguments space-separated, enough for the checks below.
    return execFileSync('ps', ['-p', String(pid), '-o', 'args='], { encoding: 'utf8' }).trim().split(/\s+/).filter(Boolean);
  } catch {
    return undefined;
  }
}

function flagValue(argv: string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** `temporal server start-dev ... --db-filename <dbFile>`, as ensureDevServer starts it. */
function isDevServerOf(argv: string[], dbFile: string): boolean {
  if (!basename(argv[0] ?? '').startsWith('temporal') || !argv.includes('server') || !argv.includes('start-dev')) return false;
  const db = flagValue(argv, '--db-filename');
  return db !== undefined && resolve(db) === resolve(dbFile);
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig); // its process group: ensureDevServer starts it detached, as a group leader
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

/** Waits for the process to be gone (or a zombie, its parent yet to reap it); false after `timeoutMs`. */
async function exited(pid: number, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (commandLine(pid) === undefined) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function healthy(binary: string, address: string): Promise<boolean> {
  try {
    await run(binary, ['operator', 'cluster', 'health', '--address', address], { timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

if (require.main === module) {
  ensureDevServer({ detached: true })
    .then((s) => {
      console.log(`${s.started ? 'started' : 'reusing'} Temporal dev server at ${s.address} (Web UI ${s.uiUrl}, database ${s.dbFile})`);
      process.exit(0);
    })
    .catch((e: Error) => {
      console.error(e.message);
      process.exit(1);
    });
}
