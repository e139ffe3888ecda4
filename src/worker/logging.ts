/**
 * Orbit's logging of the Temporal SDK. The SDK's Runtime (the native core shared by every worker and
 * NativeConnection of a process) logs to the console by default: worker state changes, webpack's
 * stats, records with multi-line metadata. Orbit installs it quiet instead: one line per record, to
 * stderr or to ORBIT_LOG_FILE, and SDK records only from WARN up unless the level asks for debug or
 * trace.
 */
import { DefaultLogger, IllegalStateError, Runtime, type LogEntry, type LogLevel } from '@temporalio/worker';
import { openSync, writeSync } from 'node:fs';
import { MONITOR_QUEUE_SUFFIX } from '../common/task-queues';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type OrbitLogLevel = (typeof LOG_LEVELS)[number];
export const DEFAULT_LOG_LEVEL: OrbitLogLevel = 'info';

/** Thrown when a log level (--log-level, ORBIT_LOG_LEVEL) is not one of LOG_LEVELS. */
export class LogLevelError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LogLevelError';
  }
}

/** `raw` (any case) as a level; undefined or empty gives `fallback`. `from` names where it came from. */
export function parseLogLevel(raw: string | undefined, from = 'log level', fallback: OrbitLogLevel = DEFAULT_LOG_LEVEL): OrbitLogLevel {
  if (raw === undefined || raw === '') return fallback;
  const level = raw.toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new LogLevelError(`${from} ${raw} is not one of ${LOG_LEVELS.join(', ')}`);
  return level as OrbitLogLevel;
}

/** Whether a record at `record` passes a logger at `threshold`. */
export function passes(record: OrbitLogLevel, threshold: OrbitLogLevel): boolean {
  return LOG_LEVELS.indexOf(record) >= LOG_LEVELS.indexOf(threshold);
}

/** The level SDK records are kept from: WARN, or lower only when Orbit's level is debug or trace. */
export function sdkLogLevel(level: OrbitLogLevel): LogLevel {
  if (level === 'trace' || level === 'debug') return upper(level);
  return level === 'error' ? 'ERROR' : 'WARN';
}

/**
 * The native core's filter: Temporal's own crates at sdkLogLevel, the libraries under them (h2, hyper,
 * tower: a record per HTTP/2 frame at debug) only at trace.
 */
export function coreLogFilter(level: OrbitLogLevel): { core: LogLevel; other: LogLevel } {
  const core = sdkLogLevel(level);
  return { core, other: level === 'trace' ? core : level === 'error' ? 'ERROR' : 'WARN' };
}

const upper = (level: OrbitLogLevel) => level.toUpperCase() as LogLevel;

/** One record as one line: `<ISO time> <LEVEL> <message> key=value ...`; newlines in it are escaped. */
export function formatRecord(entry: LogEntry): string {
  const time = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
  const meta = Object.entries(entry.meta ?? {})
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${formatValue(v)}`);
  return [time, entry.level.padEnd(5), oneLine(entry.message), ...meta].join(' ');
}

function oneLine(s: string): string {
  return s.replace(/\r?\n/g, '\\n');
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (v instanceof Error) return JSON.stringify(`${v.name}: ${v.message}`);
  if (typeof v === 'bigint') return v.toString();
  try {
    return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) ?? String(v);
  } catch {
    return JSON.stringify(String(v));
  }
}

/** Where records go: ORBIT_LOG_FILE (appended to) when set, else stderr. */
export interface LogSink {
  write(line: string): void;
  /** The file, when records go to one. */
  file?: string;
}

let sink: LogSink | undefined;

/** This process's sink, opened at the first call (from `env`) and kept. */
export function logSink(env: NodeJS.ProcessEnv = process.env): LogSink {
  if (sink) return sink;
  const file = env.ORBIT_LOG_FILE;
  if (!file) return (sink = { write: (line) => process.stderr.write(line + '\n') });
  const fd = openSync(file, 'a');
  return (sink = { file, write: (line) => writeSync(fd, line + '\n') });
}

let installed = false;

/** SDK warnings that say what Orbit intends: the monitors' worker has no workflows by design (src/worker/worker.ts). */
export function expected(entry: LogEntry): boolean {
  return entry.message.startsWith('No workflows registered') && String(entry.meta?.taskQueue ?? '').endsWith(MONITOR_QUEUE_SUFFIX);
}

/**
 * Installs the SDK's Runtime with a one-line logger keeping records from WARN up (or from `level`
 * when it is debug or trace; `level` defaults to ORBIT_LOG_LEVEL, else info), writing to stderr or
 * ORBIT_LOG_FILE. Call it before the first worker or NativeConnection of the process: the Runtime is
 * created once. Returns false, and changes nothing, when a Runtime exists already (installed by this
 * function before, or by other code). A @temporalio/client Client does not use the Runtime: a command
 * that only makes clients needs no call (and importing this module loads @temporalio/worker).
 * Throws LogLevelError for a level that is not one of LOG_LEVELS.
 */
export function installQuietRuntime(level?: string, env: NodeJS.ProcessEnv = process.env): boolean {
  if (installed) return false;
  const orbitLevel = level === undefined ? parseLogLevel(env.ORBIT_LOG_LEVEL, 'ORBIT_LOG_LEVEL') : parseLogLevel(level);
  const out = logSink(env);
  try {
    Runtime.install({
      logger: new DefaultLogger(sdkLogLevel(orbitLevel), (entry) => {
        if (!expected(entry)) out.write(formatRecord(entry));
      }),
      telemetryOptions: { logging: { filter: coreLogFilter(orbitLevel), forward: {} } },
    });
  } catch (e) {
    if (e instanceof IllegalStateError) return false;
    throw e;
  }
  return (installed = true);
}

/**
 * A logger for a command's own lines (e.g. `orbit worker`'s start and stop lines): each line at or
 * above `level` is printed as it is (debug and info to stdout, warn and error to stderr) and, with
 * ORBIT_LOG_FILE, also recorded in that file as one record.
 */
export function commandLog(level: OrbitLogLevel, env: NodeJS.ProcessEnv = process.env) {
  const file = env.ORBIT_LOG_FILE ? logSink(env) : undefined;
  const say = (at: OrbitLogLevel, line: string) => {
    if (!passes(at, level)) return;
    if (passes(at, 'warn')) console.error(line);
    else console.log(line);
    file?.write(formatRecord({ level: upper(at), message: line, timestampNanos: BigInt(Date.now()) * 1_000_000n }));
  };
  return {
    debug: (line: string) => say('debug', line),
    info: (line: string) => say('info', line),
    warn: (line: string) => say('warn', line),
    error: (line: string) => say('error', line),
  };
}
