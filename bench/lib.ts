/**
 * Shared pieces of the benchmarks: arguments, the Temporal dev server, real OpenSSH hosts (the test
 * harness's startSshd), Orbit hosts and the raw `ssh`/`scp`/`rsync` command lines for the same sshd,
 * timing, process memory, workflow histories, and the figure lines every script prints.
 */
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { execFileSync, spawn, type SpawnOptions } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { connect as netConnect, createServer as createNetServer, type Socket } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { RUN_GROUP, RUN_PID } from '../src/hosts/host/scripts';
import { HostRegistry } from '../src/hosts/registry';
import { ShellHost } from '../src/hosts/shell-host';
import { SshTransport, type SshTransportOptions } from '../src/hosts/ssh';
import { createOrbitWorker, type OrbitWorker, type OrbitWorkerOptions } from '../src/worker/worker';
import { ensureDevServer, type DevServer } from '../temporal/dev-server';
import { freePort } from '../test/helpers/ports';
import { sshOptions as sshdTransportOptions, type SshdServer } from '../test/helpers/sshd';

export const REPO = resolve(__dirname, '..');

// ------------------------------------------------------------------ arguments

export interface BenchArgs {
  tiny: boolean;
  /** An already running Temporal (host:port); else a dev server of the script's own is started. */
  temporal?: string;
  /** Free-form numeric options (--n 200, --reps 3, ...). */
  num: (name: string, fallback: number) => number;
  str: (name: string, fallback: string) => string;
  flag: (name: string) => boolean;
}

export function parseArgs(argv = process.argv.slice(2)): BenchArgs {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (!a.startsWith('--')) continue;
    const [k, v] = a.slice(2).split('=', 2) as [string, string | undefined];
    if (v !== undefined) values.set(k, v);
    else if (argv[i + 1] !== undefined && !(argv[i + 1] ?? '').startsWith('--')) values.set(k, argv[++i] ?? '');
    else flags.add(k);
  }
  return {
    tiny: flags.has('tiny'),
    temporal: values.get('temporal') ?? process.env.ORBIT_BENCH_TEMPORAL,
    num: (name, fallback) => (values.has(name) ? Number(values.get(name)) : fallback),
    str: (name, fallback) => values.get(name) ?? fallback,
    flag: (name) => flags.has(name),
  };
}

// ------------------------------------------------------------------ output

/** Runs a script's `main`, then exits: 0 when it finished, 1 with the error's stack when it threw. */
export function runMain(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (e: Error) => {
      console.error(e.stack ?? e.message);
      process.exit(1);
    },
  );
}

/** Prints one figure line: `[bench] label: key value, ...`. */
export function line(bench: string, text: string): void {
  console.log(`[${bench}] ${text}`);
}

export function verdict(ok: boolean): string {
  return ok ? 'MET' : 'MISSED';
}

export const s = (ms: number, digits = 3) => `${(ms / 1000).toFixed(digits)} s`;
export const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
export const mibps = (bytes: number, ms: number) => `${(bytes / 1024 / 1024 / (ms / 1000)).toFixed(1)} MiB/s`;

export function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

/** The value at quantile q (0..1) of xs, nearest rank below; NaN when xs is empty. */
export function percentile(xs: number[], q: number): number {
  const v = [...xs].sort((a, b) => a - b);
  return v.length ? v[Math.min(v.length - 1, Math.floor(q * v.length))]! : NaN;
}

/** nproc, memory, CPU model, versions: printed at the top of each script. */
export async function machine(): Promise<string> {
  const version = async (cmd: string, args: string[]) => {
    try {
      const r = await run(cmd, args, { quiet: true });
      return (r.stdout + r.stderr).trim().split('\n')[0] ?? '?';
    } catch {
      return '?';
    }
  };
  const ssh = await version('ssh', ['-V']);
  const rsync = (await version('rsync', ['--version'])).replace(/\s+protocol.*/, '');
  const model = cpus()[0]?.model ?? '?';
  return `${cpus().length} cpus (${model}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB memory, node ${process.version}, ${ssh}, ${rsync}`;
}

// ------------------------------------------------------------------ processes

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command; rejects on a non-zero exit unless `allowFail`. */
export function run(
  cmd: string,
  args: string[],
  opts: SpawnOptions & { allowFail?: boolean; quiet?: boolean; onSpawn?: (pid: number) => void } = {},
): Promise<RunResult> {
  const t0 = performance.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    if (child.pid) opts.onSpawn?.(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      const r = { code, stdout, stderr, ms: performance.now() - t0 };
      if (code !== 0 && !opts.allowFail) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.trim().slice(-2000)}`));
      else resolvePromise(r);
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resident memory of a process and its descendants (kB), and the largest VmHWM among them. */
export function treeMemory(root: number): { rssKb: number; hwmKb: number } {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      /* gone */
    }
  }
  let rssKb = 0;
  let hwmKb = 0;
  const queue = [root];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      rssKb += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      hwmKb = Math.max(hwmKb, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0));
    } catch {
      /* gone */
    }
    queue.push(...(children.get(pid) ?? []));
  }
  return { rssKb, hwmKb };
}

/** Samples `treeMemory(pid)` every `everyMs` until stopped; keeps the peaks. */
export function memorySampler(pid: number, everyMs = 250) {
  let peakRssKb = 0;
  let peakHwmKb = 0;
  const sample = () => {
    const m = treeMemory(pid);
    peakRssKb = Math.max(peakRssKb, m.rssKb);
    peakHwmKb = Math.max(peakHwmKb, m.hwmKb);
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      sample();
      return { peakRssKb, peakHwmKb };
    },
  };
}

// ------------------------------------------------------------------ Temporal

export interface Temporal {
  address: string;
  connection: Connection;
  client: Client;
  close(): Promise<void>;
}

/** Connects to `--temporal`/ORBIT_BENCH_TEMPORAL, or starts a dev server of its own on free ports (its state in memory with --memory-server). */
export async function temporal(args: BenchArgs): Promise<Temporal> {
  let server: DevServer | undefined;
  let dataDir: string | undefined;
  let address = args.temporal;
  if (!address) {
    dataDir = await mkdtemp(join(tmpdir(), 'orbit-bench-temporal-'));
    server = await ensureDevServer({ port: await freePort(), uiPort: await freePort(), dataDir, inMemory: args.flag('memory-server') });
    address = server.address;
  }
  const connection = await Connection.connect({ address });
  return {
    address,
    connection,
    client: new Client({ connection }),
    close: async () => {
      await connection.close();
      await server?.stop();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** An in-process worker serving `hosts` on a task queue of its own. */
let runtimeInstalled = false;

export async function inProcessWorker(
  address: string,
  taskQueue: string,
  hosts: HostRegistry,
  extra: Partial<Pick<OrbitWorkerOptions, 'transferSlots' | 'monitorSlots' | 'fleetHosts' | 'fleetSettings'>> = {},
) {
  if (!runtimeInstalled) {
    // The expected warnings (probes that get no answer from a killed host) would drown the figures.
    Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } } });
    runtimeInstalled = true;
  }
  const nativeConnection = await NativeConnection.connect({ address });
  // Every host of the registry holds as many CPU jobs as a benchmark starts, unless the benchmark says what each offers.
  const roomy = async () => hosts.names().map((name) => ({ name, gpus: [], cpus: 1024, memoryGb: 4096, labels: [] }));
  const worker: OrbitWorker = await createOrbitWorker({ connection: nativeConnection, namespace: 'default', taskQueue, hosts, fleetHosts: roomy, fleetSettings: { reconcileEveryMs: 1_000 }, ...extra });
  const running = worker.run();
  return {
    worker,
    stop: async () => {
      worker.shutdown();
      await running;
      await hosts.close();
      await nativeConnection.close();
    },
  };
}

// ------------------------------------------------------------------ hosts

/** The SSH transport options Orbit uses for a harness sshd (pinned host key). */
export const transportOptions = sshdTransportOptions;

export function orbitHost(sshd: SshdServer, extra: Partial<SshTransportOptions> = {}): ShellHost {
  return new ShellHost({ name: sshd.name, workRoot: sshd.workRoot, transport: new SshTransport(transportOptions(sshd, extra)) });
}

/**
 * `ssh` options that reach a harness sshd the way a user would: its key, its known_hosts, strict
 * checking, no prompts. With `mux` (a control socket path), connections share one master
 * (ControlMaster=auto, kept 60 s): the raw tools' best case.
 */
export function sshOptions(sshd: SshdServer, mux?: string): string[] {
  return [
    '-i', sshd.keyFile,
    '-o', `UserKnownHostsFile=${sshd.knownHostsFile}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'LogLevel=ERROR',
    ...(mux ? ['-o', 'ControlMaster=auto', '-o', `ControlPath=${mux}`, '-o', 'ControlPersist=60'] : []),
  ];
}

export const target = (sshd: SshdServer) => `${sshd.user}@${sshd.address}`;

type RunOpts = Parameters<typeof run>[2] & { mux?: string; sshExtra?: string[] };

export function rawSsh(sshd: SshdServer, command: string, opts: RunOpts = {}) {
  return run('ssh', [...sshOptions(sshd, opts.mux), ...(opts.sshExtra ?? []), '-p', String(sshd.port), target(sshd), command], opts);
}

export function rawScp(sshd: SshdServer, from: string[], to: string, opts: RunOpts = {}) {
  return run('scp', [...sshOptions(sshd, opts.mux), '-P', String(sshd.port), '-q', '-r', '-p', ...from, to], opts);
}

/** Ends a multiplexing master started with `mux`. */
export async function closeMux(sshd: SshdServer, mux: string): Promise<void> {
  await run('ssh', [...sshOptions(sshd, mux), '-p', String(sshd.port), '-O', 'exit', target(sshd)], { allowFail: true });
}

/** The `-e` value rsync uses to reach the sshd. */
export function rsyncRsh(sshd: SshdServer): string {
  return ['ssh', ...sshOptions(sshd), '-p', String(sshd.port)].join(' ');
}

// ------------------------------------------------------------------ histories

export interface Timeline {
  events: number;
  startMs: number;
  endMs: number;
  activities: { type: string; scheduled: number; started?: number; completed?: number; attempt?: number; lastFailure?: string }[];
  workflowTasks: { scheduled: number; started?: number; completed?: number }[];
}

const ms = (t: unknown): number => {
  const ts = t as { seconds?: { toNumber?: () => number } | number | string; nanos?: number } | null | undefined;
  if (!ts) return NaN;
  const sec = typeof ts.seconds === 'object' && ts.seconds?.toNumber ? ts.seconds.toNumber() : Number(ts.seconds ?? 0);
  return sec * 1000 + (ts.nanos ?? 0) / 1e6;
};

/** Event count and per-activity / per-workflow-task timestamps (epoch ms) of a closed workflow. */
export async function timeline(handle: WorkflowHandle): Promise<Timeline> {
  const history = await handle.fetchHistory();
  const events = history.events ?? [];
  const byId = new Map<number, Timeline['activities'][number]>();
  const wft = new Map<number, Timeline['workflowTasks'][number]>();
  const out: Timeline = { events: events.length, startMs: NaN, endMs: NaN, activities: [], workflowTasks: [] };
  for (const e of events) {
    const id = Number(e.eventId);
    const t = ms(e.eventTime);
    if (e.workflowExecutionStartedEventAttributes) out.startMs = t;
    if (e.workflowExecutionCompletedEventAttributes || e.workflowExecutionFailedEventAttributes) out.endMs = t;
    if (e.activityTaskScheduledEventAttributes) {
      const a = { type: e.activityTaskScheduledEventAttributes.activityType?.name ?? '?', scheduled: t };
      byId.set(id, a);
      out.activities.push(a);
    }
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      const a = byId.get(Number(started.scheduledEventId));
      if (a) {
        a.started = t;
        a.attempt = started.attempt ?? 1;
        if (started.lastFailure?.message) a.lastFailure = started.lastFailure.message;
      }
    }
    const done = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes;
    if (done) {
      const a = byId.get(Number(done.scheduledEventId));
      if (a) a.completed = t;
    }
    if (e.workflowTaskScheduledEventAttributes) {
      const w = { scheduled: t };
      wft.set(id, w);
      out.workflowTasks.push(w);
    }
    if (e.workflowTaskStartedEventAttributes) {
      const w = wft.get(Number(e.workflowTaskStartedEventAttributes.scheduledEventId));
      if (w) w.started = t;
    }
    if (e.workflowTaskCompletedEventAttributes) {
      const w = wft.get(Number(e.workflowTaskCompletedEventAttributes.scheduledEventId));
      if (w) w.completed = t;
    }
  }
  return out;
}

/** Histogram of event types of a closed workflow (for the history-size figure). */
export async function eventTypes(handle: WorkflowHandle): Promise<Map<string, number>> {
  const history = await handle.fetchHistory();
  const counts = new Map<string, number>();
  for (const e of history.events ?? []) {
    const key = Object.keys(e).find((k) => k.endsWith('EventAttributes') && (e as Record<string, unknown>)[k]) ?? String(e.eventType);
    const name = key.replace(/EventAttributes$/, '');
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return counts;
}

/** Timestamps (epoch ms) of the first and last lines of a run's runtime/runtime.log. */
export function runtimeLogSpan(text: string): { first: number; last: number; start?: number; exit?: number } {
  const lines = text.split('\n').filter(Boolean);
  const at = (l: string | undefined) => (l ? Date.parse(l.split(' ')[0] ?? '') : NaN);
  return {
    first: at(lines[0]),
    last: at(lines[lines.length - 1]),
    start: at(lines.find((l) => / start pid=/.test(l))),
    exit: at(lines.find((l) => / exit code=/.test(l))),
  };
}

export { HostRegistry, ShellHost, SshTransport };

// ------------------------------------------------------------------ wire bytes

/**
 * A TCP relay on 127.0.0.1 in front of a port, counting the bytes each way: what crossed the wire,
 * SSH framing included, whatever the client. Connections end when either side ends.
 */
export async function countingProxy(targetPort: number) {
  const counts = { down: 0, up: 0 };
  const sockets = new Set<Socket>();
  const server = createNetServer((client) => {
    const upstream = netConnect({ host: '127.0.0.1', port: targetPort });
    sockets.add(client);
    sockets.add(upstream);
    client.on('data', (b: Buffer) => (counts.up += b.length));
    upstream.on('data', (b: Buffer) => (counts.down += b.length));
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    counts,
    reset: () => {
      counts.down = 0;
      counts.up = 0;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * Kills a detached run's process group on a harness host (its run.sh wrote runtime/pid), only while
 * that group is still this run's (the launch's recorded identity, RUN_GROUP): never a reused pid.
 */
export function killRun(workRoot: string, runId: string): void {
  const script = `${RUN_GROUP}\npid=${RUN_PID}\ngroup_is_run "$pid" && kill -KILL -- "-$pid" 2>/dev/null\nexit 0\n`;
  try {
    execFileSync('bash', ['--norc', '--noprofile', '-c', script], { cwd: join(workRoot, runId), stdio: 'ignore', timeout: 10_000 });
  } catch {
    /* not staged, or gone */
  }
}

/**
 * PROTOTYPE of a recommended src change, for the experiment lines only: sets TCP_NODELAY on the
 * transport's ssh2 connection each time it is used (ssh2 leaves Nagle's algorithm on). Patches this
 * one instance. Since dd59246 SshTransport sets it itself, so this measures the same as without.
 */
export function withNoDelay<T extends ShellHost>(host: T): T {
  const t = host.transport as unknown as { connection: (signal?: AbortSignal) => Promise<{ client: { setNoDelay(on: boolean): unknown } }> };
  const original = t.connection.bind(t);
  t.connection = async (signal?: AbortSignal) => {
    const live = await original(signal);
    live.client.setNoDelay(true);
    return live;
  };
  return host;
}

/** Writes `size` random (incompressible) bytes to `path`, through `buf`; returns their sha256. */
export async function writeRandomFile(path: string, size: number, buf: Buffer): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  const fh = await open(path, 'w');
  const hash = createHash('sha256');
  try {
    for (let left = size; left > 0; ) {
      const len = Math.min(left, buf.length);
      randomFillSync(buf, 0, len);
      hash.update(buf.subarray(0, len));
      await fh.write(buf, 0, len);
      left -= len;
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}
