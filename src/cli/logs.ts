/**
 * `orbit logs RUN [-f] [--since D] [--tail N] [--node R]`: a run's task log, followed while it runs
 * (./log-stream.ts), and `lastTraceback`, the Python traceback a failed `submit --follow` prints.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { Bundle } from '../bundle';
import { temporalTarget } from '../config';
import { checkNamespace, CliError } from './errors';
import { parseCount, parseSince } from './log-options';
import { taskLogPath } from './log-reader';
import { checkNode, streamTaskLog } from './log-stream';
import { connectClient } from './connect';

export { streamTaskLog, type StreamLogOptions, type StreamLogResult } from './log-stream';
export { parseSince } from './log-options';

export const LOGS_USAGE = 'usage: orbit logs RUN [-f|--follow] [--since 10m|ISO-TIME] [--tail N] [--node 0]';

/** The flags as commander hands them over (strings, or numbers when it parsed them). */
export interface LogsOptions {
  follow?: boolean;
  since?: string;
  tail?: string | number;
  node?: string | number;
}

export interface LogsIo {
  /** Each log line (stdout). */
  out: (line: string) => void;
  /** One-line notes about the reading (stderr), given as `orbit: <note>`. */
  note: (line: string) => void;
  /** Stops following (SIGINT); the command then returns 0. */
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
}

/** Runs `orbit logs`; returns the exit code. Throws CliError: 2 bad flags or an unknown run, 3 Temporal unreachable. */
export async function logsCommand(runId: string, options: LogsOptions, io: LogsIo): Promise<number> {
  if (!runId?.trim()) throw new CliError(`orbit logs: expected a run id; ${LOGS_USAGE}`, 2);
  const tail = options.tail === undefined ? undefined : parseCount('--tail', options.tail);
  const node = options.node === undefined ? undefined : parseCount('--node', options.node);
  checkNode(node);
  const since = options.since === undefined ? undefined : parseSince(options.since);
  const env = io.env ?? process.env;
  const target = temporalTarget(env);
  const client = await connectClient(target);
  try {
    await checkNamespace(client, target);
    await streamTaskLog({ client, target, runId, follow: options.follow, tail, since, node, out: (l) => io.out(l), note: (l) => io.note(`orbit: ${l}`), signal: io.signal, env });
    return 0;
  } finally {
    await client.connection.close().catch(() => undefined);
  }
}

const TRACEBACK_HEAD = 'Traceback (most recent call last):';
/** How much of the log's end is searched for the traceback. */
const TRACEBACK_WINDOW = 1 << 20;

/**
 * The last Python traceback in the bundle's task log: from its "Traceback (most recent call last):"
 * line through the exception line (the first line after it that is not indented). A prefix before the
 * header (`[rank0]: `, a timestamp) is expected on each of its lines too. Only the log's last MiB is
 * searched. Undefined when the log or a traceback is not there.
 */
export async function lastTraceback(bundleDir: string): Promise<string[] | undefined> {
  const logFile = await Bundle.open(bundleDir).then(
    (b) => b.spec.entrypoint.logFile,
    () => undefined,
  );
  if (!logFile) return undefined;
  const lines = await lastLines(join(bundleDir, taskLogPath(logFile)), TRACEBACK_WINDOW);
  if (!lines) return undefined;
  let at = -1;
  for (let i = lines.length - 1; i >= 0 && at < 0; i--) if (lines[i]!.includes(TRACEBACK_HEAD)) at = i;
  if (at < 0) return undefined;
  const prefix = lines[at]!.slice(0, lines[at]!.indexOf(TRACEBACK_HEAD));
  const block = [lines[at]!];
  for (const line of lines.slice(at + 1)) {
    if (!line.startsWith(prefix)) break;
    const body = line.slice(prefix.length);
    if (!body.trim()) break;
    block.push(line);
    if (!/^[ \t]/.test(body)) break; // the exception line
  }
  return block;
}

/** The lines of the last `window` bytes of a file (the first, cut one dropped); undefined when there is no file. */
async function lastLines(path: string, window: number): Promise<string[] | undefined> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return undefined;
  try {
    const { size } = await fh.stat();
    const start = Math.max(0, size - window);
    const buf = Buffer.alloc(size - start);
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, start + n);
      if (!bytesRead) break;
      n += bytesRead;
    }
    const lines = buf.subarray(0, n).toString('utf8').split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
    return start > 0 ? lines.slice(1) : lines;
  } finally {
    await fh.close();
  }
}
