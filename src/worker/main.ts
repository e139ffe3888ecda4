/**
 * `orbit worker`: runs a worker until SIGINT or SIGTERM, then drains: polling stops at once, running
 * activities get ORBIT_WORKER_GRACE_SECONDS to finish (a monitor is cancelled then and retries on
 * another worker; its job runs on), and the process exits 0 with one line. A second signal exits at once.
 * Quiet by default: its own start and stop lines, and the Temporal SDK's records from WARN up only
 * (see ./logging: --log-level / ORBIT_LOG_LEVEL, ORBIT_LOG_FILE).
 */
import { GracefulShutdownPeriodExpiredError, Runtime } from '@temporalio/worker';
import type { FleetSettings } from '../common/fleet-activities';
import { orbitHome, taskQueue, temporalTarget } from '../config';
import { configuredStore, storeUrl } from '../store/open';
import { parsePauseAfter } from '../activities';
import { fleetHostsFromInventory, loadHostRegistry } from './hosts';
import { commandLog, installQuietRuntime, parseLogLevel } from './logging';
import { createOrbitWorker, DEFAULT_MONITOR_SLOTS, DEFAULT_TRANSFER_SLOTS, type WorkerStats } from './worker';

export const DEFAULT_GRACE_SECONDS = 20;
/** How long past the grace a worker whose activities ignore cancellation is waited for. */
const FORCE_AFTER_GRACE_MS = 10_000;

/** ORBIT_WORKER_GRACE_SECONDS: seconds running activities may go on after a shutdown signal. */
export function shutdownGraceSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.ORBIT_WORKER_GRACE_SECONDS;
  if (raw === undefined || raw === '') return DEFAULT_GRACE_SECONDS;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`ORBIT_WORKER_GRACE_SECONDS=${raw} must be a number of seconds, 0 or more`);
  return n;
}

/** ORBIT_WORKER_STATS_SECONDS: how often the worker prints its stats line (default: never). */
export function statsEverySeconds(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.ORBIT_WORKER_STATS_SECONDS;
  if (raw === undefined || raw === '' || raw === '0') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 1) throw new Error(`ORBIT_WORKER_STATS_SECONDS=${raw} must be a number of seconds, 1 or more (0: no stats line)`);
  return n;
}

/** One stats line: what runs now, and what was sent since the previous line. */
export function statsLine(now: WorkerStats, before: WorkerStats | undefined, seconds: number): string {
  const sent = (name: string) => now.sshCommands[name]! - (before?.sshCommands[name] ?? 0);
  const hosts = Object.keys(now.sshCommands);
  const total = hosts.reduce((a, h) => a + sent(h), 0);
  return (
    `orbit worker: stats: ${now.monitors} monitors, ${now.otherActivities} other activities; last ${seconds} s: ` +
    `${now.probeBatches - (before?.probeBatches ?? 0)} probe batches, ${total} ssh commands` +
    (hosts.length ? ` (${hosts.map((h) => `${h} ${sent(h)}`).join(', ')})` : '') +
    `; rss ${Math.round(now.rssBytes / 1048576)} MiB`
  );
}

/** ORBIT_FLEET_RECONCILE_SECONDS: how often the fleet checks for holders gone without a word (default 10). */
export function fleetSettingsFrom(env: NodeJS.ProcessEnv = process.env): Partial<FleetSettings> {
  const raw = env.ORBIT_FLEET_RECONCILE_SECONDS;
  if (raw === undefined || raw === '') return {};
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0.1) throw new Error(`ORBIT_FLEET_RECONCILE_SECONDS=${raw} must be a number of seconds, 0.1 or more`);
  return { reconcileEveryMs: Math.round(n * 1000) };
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

export interface RunWorkerOptions {
  /**
   * trace, debug, info, warn or error (default ORBIT_LOG_LEVEL, else info): the worker's own lines
   * from this level up; the SDK's records from WARN up, or from this level when it is debug or trace.
   */
  logLevel?: string;
  /** Default: this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** See OrbitWorkerOptions (`orbit worker --monitor-slots`, `--transfer-slots`). */
  monitorSlots?: number;
  transferSlots?: number;
}

export async function runWorker(options: RunWorkerOptions = {}): Promise<void> {
  const env = options.env ?? process.env;
  const level = options.logLevel !== undefined ? parseLogLevel(options.logLevel, '--log-level') : parseLogLevel(env.ORBIT_LOG_LEVEL, 'ORBIT_LOG_LEVEL');
  // Before the first connection: that creates the SDK's Runtime, with the console logger unless one is installed.
  installQuietRuntime(level, env);
  const log = commandLog(level, env);
  const target = temporalTarget(env);
  const graceSeconds = shutdownGraceSeconds(env);
  const statsEvery = statsEverySeconds(env);
  const hosts = await loadHostRegistry(orbitHome(env), env);
  const worker = await createOrbitWorker({
    connectionOptions: target.connectionOptions,
    namespace: target.namespace,
    taskQueue: taskQueue(env),
    hosts,
    home: orbitHome(env),
    env,
    pauseAfter: parsePauseAfter(env.ORBIT_TEST_PAUSE_AFTER),
    shutdownGraceMs: graceSeconds * 1000,
    shutdownForceMs: graceSeconds * 1000 + FORCE_AFTER_GRACE_MS,
    fleetHosts: fleetHostsFromInventory(env),
    fleetSettings: fleetSettingsFrom(env),
    monitorSlots: options.monitorSlots,
    transferSlots: options.transferSlots,
  });

  // The SDK's runtime shuts the worker down on these signals; this only notes which came, and when.
  let stop: { signal: NodeJS.Signals; at: number; running: number } | undefined;
  const signals = Runtime.instance().options.shutdownSignals;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop) {
      log.warn(`orbit worker: second ${signal}: exiting now, without waiting for running activities`);
      process.exit(1);
    }
    stop = { signal, at: Date.now(), running: worker.inFlightActivities };
  };
  for (const s of signals) process.on(s, onSignal);

  log.info(
    `orbit worker: task queue "${taskQueue(env)}" on ${target.address} (${target.namespace}); hosts: ${hosts.names().join(', ')}; store ${storeUrl(env)}; ` +
      `slots: ${options.monitorSlots ?? DEFAULT_MONITOR_SLOTS} monitors, ${options.transferSlots ?? DEFAULT_TRANSFER_SLOTS} transfers`,
  );
  // Checked now, so a missing credential or bucket is said at start, not at the first run.
  await configuredStore(env)
    .then((s) => s.check())
    .catch((e: Error) => log.warn(`orbit worker: ${e.message}; runs kept in that store will fail to stage until it is fixed`));
  let last: WorkerStats | undefined;
  const stats = statsEvery
    ? setInterval(() => {
        const now = worker.stats();
        log.info(statsLine(now, last, statsEvery));
        last = now;
      }, statsEvery * 1000)
    : undefined;
  try {
    await worker.run();
  } catch (e) {
    if (!(e instanceof GracefulShutdownPeriodExpiredError)) throw e;
    log.error(`orbit worker: ${stop?.signal ?? 'shutdown'}: activities still running ${(graceSeconds * 1000 + FORCE_AFTER_GRACE_MS) / 1000} s after the signal ignored cancellation; exiting anyway`);
    process.exit(1);
  } finally {
    clearInterval(stats);
    for (const s of signals) process.off(s, onSignal);
    await hosts.close();
  }
  if (stop) log.info(`orbit worker: ${stop.signal}: stopped polling, ${drained(stop, graceSeconds)}; exiting`);
}

/** What became of the activities that ran when the signal came. */
function drained(stop: { at: number; running: number }, graceSeconds: number): string {
  const took = (Date.now() - stop.at) / 1000;
  if (stop.running === 0) return 'no activity was running';
  const n = plural(stop.running, 'running activity', 'running activities');
  if (took < graceSeconds) return `${n} ended within ${took.toFixed(1)} s`;
  return `${n} cancelled after the ${graceSeconds} s grace (retried by another worker)`;
}

if (require.main === module) {
  runWorker().catch((e: Error) => {
    console.error(e.stack ?? e.message);
    process.exit(1);
  });
}
