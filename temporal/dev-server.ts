/**
 * Starts (or reuses) the embedded Temporal dev server: `temporal server start-dev` on loopback with a
 * SQLite file under temporal/data/ (git-ignored), the Web UI, and Orbit's search attributes registered.
 */
import { spawn, execFile } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ORBIT_SEARCH_ATTRIBUTES } from '../src/common/search-attributes';
import { REPO_ROOT, findTemporalBinary } from './binary';

const run = promisify(execFile);

export interface DevServerOptions {
  port?: number;
  uiPort?: number;
  /** Folder for the SQLite file, pid and log. */
  dataDir?: string;
  binary?: string;
  namespace?: string;
  /** Keep running after this process exits (the demo); tests stop it themselves. */
  detached?: boolean;
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

export const DEFAULT_DATA_DIR = join(REPO_ROOT, 'temporal', 'data');

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

/** Reuses a server already answering on `port`, or starts one. */
export async function ensureDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const port = options.port ?? 7233;
  const uiPort = options.uiPort ?? port + 1000;
  const dataDir = options.dataDir ?? DEFAULT_DATA_DIR;
  const binary = options.binary ?? findTemporalBinary();
  const namespace = options.namespace ?? 'default';
  const address = `127.0.0.1:${port}`;
  const dbFile = join(dataDir, 'temporal.sqlite');
  const uiUrl = `http://localhost:${uiPort}`;

  if (await portOpen(port)) {
    await waitFor(() => healthy(binary, address), 30_000, `the Temporal server already on ${address}`);
    await registerSearchAttributes(binary, address, namespace);
    const pidFile = join(dataDir, 'server.pid');
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
    '--db-filename', dbFile,
    '--namespace', namespace,
    '--log-level', 'warn',
    ...ORBIT_SEARCH_ATTRIBUTES.flatMap((sa) => ['--search-attribute', `${sa.name}=${sa.type}`]),
  ];
  const child = spawn(binary, args, { detached: true, stdio: ['ignore', logFd, logFd] });
  if (options.detached) child.unref();
  const pid = child.pid ?? null;
  writeFileSync(join(dataDir, 'server.pid'), `${pid}\n`);
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  await waitFor(async () => {
    if (exited !== undefined) throw new Error(`temporal server start-dev exited with ${exited}; see ${join(dataDir, 'server.log')}`);
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
