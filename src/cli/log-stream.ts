/**
 * `streamTaskLog`: a run's task log, line by line, for `orbit logs` and `submit --follow`. While the
 * job runs, the log is read on its host through the client's own host registry (hosts.yaml, the same
 * one a worker builds), by byte offset (./log-reader.ts); when the host does not answer this client,
 * the copy the monitor synced to the store stands in, from the same offset, until it answers again.
 * Once the job ended, the last bytes come from the host, or from the local bundle once the run closed.
 */
import type { Client } from '@temporalio/client';
import { join } from 'node:path';
import { orbitHome } from '../config';
import { raceAbort } from '../hosts/abort';
import type { HostRegistry } from '../hosts/registry';
import type { ShellHost } from '../hosts/shell-host';
import { pullRun } from '../store/cas';
import { openStore } from '../store/open';
import { StoreError } from '../store/store';
import { loadHostRegistry } from '../worker/hosts';
import { CliError, type TemporalWhere } from './errors';
import { fileLogSource, hostLogSource, LogCursor, storeLogSource, tailStart, taskLogPath, type LogSource } from './log-reader';
import { findRun, jobEnded, runNow, type LoggedRun, type RunNow } from './log-run';
import { runWhere } from './outcome';
import { parseSince } from './log-options';

/** Between two reads while following. */
export const FOLLOW_POLL_MS = 750;

/** Phases in which the job was launched: its log may be on its host (before them there is none to read). */
const LAUNCHED_PHASES = new Set(['running', 'recovering', 'collecting']);

export interface StreamLogOptions {
  client: Client;
  /** Which Temporal, for messages. */
  target: TemporalWhere;
  runId: string;
  /** Keep reading while the run goes on (`-f`); without it, what the log holds now. */
  follow?: boolean;
  /** Begin with the last N complete lines (default: all of them). */
  tail?: number;
  /**
   * Lines written since then: a Date, a duration such as `10m` (back from now) or an ISO time. The log
   * has no per-line times, so this decides on the log's last write (its mtime on the host; for an ended
   * run, the workflow's close time): a log last written before the cutoff shows none of its existing
   * lines, one written after shows them all (then --tail applies). Lines that come while following are
   * always shown: they were written after the cutoff.
   */
  since?: Date | string;
  /** Rank of a multi-node run. Runs are single-node: only 0 is accepted. */
  node?: number;
  /** Each line of the log, without its newline. */
  out: (line: string) => void;
  /** One-line messages about the reading itself (host not reachable, log moved, ...), for stderr. */
  note: (line: string) => void;
  signal?: AbortSignal;
  /** The hosts this client reaches (default: loadHostRegistry(orbitHome(env)); closed at the end when made here). */
  hosts?: HostRegistry;
  /** ORBIT_HOME, ORBIT_HOSTS, store settings (default: this process's environment). */
  env?: NodeJS.ProcessEnv;
  pollMs?: number;
}

export interface StreamLogResult {
  /** Lines given to `out`. */
  lines: number;
  /** The log was read to its end: the job ended and its last line was given out. */
  ended: boolean;
}

/** Streams the run's task log to `out`; see StreamLogOptions. Throws CliError for an unknown run (2), bad options (2), Temporal (3). */
export async function streamTaskLog(opts: StreamLogOptions): Promise<StreamLogResult> {
  checkNode(opts.node);
  if (opts.tail !== undefined && (!Number.isSafeInteger(opts.tail) || opts.tail < 0)) throw new CliError(`--tail must be a whole number, 0 or more (got ${opts.tail})`, 2);
  const since = typeof opts.since === 'string' ? parseSince(opts.since) : opts.since;
  const run = await findRun(opts.client, opts.target, opts.runId);
  const reader = new LogStream(opts, run, since);
  try {
    return await reader.run();
  } finally {
    await reader.close();
  }
}

/** Refuses any node but 0: a run is one process tree on one host, with one task log. */
export function checkNode(node: number | undefined): void {
  if (node === undefined || node === 0) return;
  throw new CliError(`--node ${node}: runs are single-node, so their only node is 0`, 2);
}

class LogStream {
  private lines = 0;
  private cursor?: LogCursor;
  /** The host whose log the cursor is in. */
  private cursorHost?: string;
  /** The first log read takes --tail and --since; a log that follows (after a relaunch) is new, read whole. */
  private backlogDone = false;
  /** The host whose log is read from the synced copy now (said once per outage). */
  private outage?: string;
  private copyTrouble = false;
  private temporalTrouble = false;
  private registry?: Promise<HostRegistry | string>;
  private synced?: Promise<LogSource | undefined>;
  private readonly logFile: string;
  private readonly env: NodeJS.ProcessEnv;

  constructor(
    private readonly opts: StreamLogOptions,
    private readonly logged: LoggedRun,
    private readonly since: Date | undefined,
  ) {
    this.logFile = logged.input.logFile;
    this.env = opts.env ?? process.env;
  }

  async run(): Promise<StreamLogResult> {
    try {
      let now = await runNow(this.logged);
      if (!now.running) return await this.fromBundle(now);
      for (;;) {
        const ended = jobEnded(now);
        const fromHost = this.readable(now) ? await this.readLive(now.host!) : false;
        if (ended) return await this.finish(fromHost);
        if (!this.opts.follow) return this.result(false);
        await pause(this.opts.pollMs ?? FOLLOW_POLL_MS, this.opts.signal);
        if (this.opts.signal?.aborted) return this.result(false);
        now = await this.nextNow(now);
      }
    } catch (e) {
      if (this.opts.signal?.aborted) return this.result(false);
      throw e;
    }
  }

  /** Where the run stands now; while following, a Temporal that does not answer for a moment is said once and asked again. */
  private async nextNow(last: RunNow): Promise<RunNow> {
    try {
      const now = await runNow(this.logged);
      this.temporalTrouble = false;
      return now;
    } catch (e) {
      if (this.opts.signal?.aborted) throw e;
      if (!this.temporalTrouble) this.opts.note(`Temporal did not answer about run ${this.logged.runId} (${(e as Error).message.split('\n')[0]}); asking again`);
      this.temporalTrouble = true;
      return last;
    }
  }

  async close(): Promise<void> {
    if (this.opts.hosts || !this.registry) return;
    const r = await this.registry;
    if (typeof r !== 'string') await r.close();
  }

  /** The log is worth reading on the run's host: the job was launched there (or its log was read there, and the run just ended). */
  private readable(now: RunNow): boolean {
    if (!now.host) return false;
    if (now.phase === undefined || LAUNCHED_PHASES.has(now.phase)) return true;
    return this.cursor !== undefined && this.cursorHost === now.host;
  }

  private result(ended: boolean): StreamLogResult {
    return { lines: this.lines, ended };
  }

  private emit = (lines: string[]): void => {
    for (const l of lines) this.opts.out(l);
    this.lines += lines.length;
  };

  /** Reads what the log on `hostName` holds now, else the synced copy; true when the host answered. */
  private async readLive(hostName: string): Promise<boolean> {
    if (hostName !== this.cursorHost) {
      if (this.cursorHost) this.opts.note(`run ${this.logged.runId} moved from ${this.cursorHost} to ${hostName}; its log there follows`);
      this.cursor = undefined;
      this.cursorHost = hostName;
      this.outage = undefined;
    }
    const host = await this.hostFor(hostName);
    let problem: string;
    if (typeof host === 'string') problem = host;
    else {
      try {
        await this.readFrom(hostLogSource(host, this.logged.runId, this.logFile), undefined, true);
        if (this.outage) this.opts.note(`host ${hostName} answers again; the log goes on from there`);
        this.outage = undefined;
        return true;
      } catch (e) {
        if (this.opts.signal?.aborted) throw e;
        problem = (e as Error).message.split('\n')[0] ?? String(e);
      }
    }
    if (this.outage !== hostName) {
      this.opts.note(`cannot read the log on ${hostName} from here (${problem}); showing the copy the monitor synced until it answers`);
      this.outage = hostName;
    }
    const copy = await this.syncedCopy();
    if (copy) {
      await this.readFrom(copy).catch((e: Error) => {
        if (this.opts.signal?.aborted) throw e;
        if (!this.copyTrouble) this.opts.note(`the synced copy could not be read either: ${e.message}`);
        this.copyTrouble = true;
      });
    }
    return false;
  }

  /** The job ended: its last line too when the host gave the final bytes, else the local bundle once the run closed. */
  private async finish(fromHost: boolean): Promise<StreamLogResult> {
    if (fromHost && !this.cursor) {
      this.opts.note(`run ${this.logged.runId} wrote no task log (artifacts/${this.logFile} is not on its host)`);
      return this.result(true);
    }
    if (fromHost) return this.flushed();
    if (!this.opts.follow) return this.result(false);
    await raceAbort(this.logged.handle.result().catch(() => undefined), this.opts.signal);
    return this.fromBundle(await runNow(this.logged));
  }

  private flushed(): StreamLogResult {
    const last = this.cursor?.flush();
    if (last !== undefined) this.emit([last]);
    return this.result(true);
  }

  /** The rest of the log from the run's folder here (its task log brought from the store first). */
  private async fromBundle(now: RunNow): Promise<StreamLogResult> {
    let dir: string | undefined;
    try {
      dir = await this.localLog();
    } catch (e) {
      if (!(e instanceof StoreError)) throw e;
      this.opts.note(`the run's task log could not be brought here: ${e.message}`);
      return this.result(false);
    }
    const path = dir && join(dir, taskLogPath(this.logFile));
    // A log followed from a host goes on from the same offset; the bundle's copy may be shorter (a lost host's last sync).
    const src = path ? fileLogSource(path, 'the local bundle', this.cursor !== undefined) : undefined;
    const found = src ? await this.readFrom(src, now.closeTime?.getTime()) : false;
    if (!found && !this.cursor) this.opts.note(`run ${this.logged.runId} has no task log${path ? ` (${path} is not there)` : ' on this machine'}`);
    return this.flushed();
  }

  /** Brings only the task log of a store-held run into `<ORBIT_HOME>/runs/<run id>` (a run from before the store: its folder). */
  private async localLog(): Promise<string | undefined> {
    const where = await runWhere(this.opts.client, this.logged.runId);
    if (!where.store || !where.digest) return where.bundleDir ?? this.logged.input.bundleDir;
    const dir = join(orbitHome(this.env), 'runs', this.logged.runId);
    const wanted = taskLogPath(this.logFile);
    await pullRun(await openStore(where.store, this.env), this.logged.runId, where.digest, dir, { only: (p) => p === wanted });
    return dir;
  }

  /**
   * Reads `src` from the cursor on; the first log read places the cursor by --since and --tail
   * (`lastWrittenMs` stands in for the source's own mtime). False when the file is not there.
   */
  private async readFrom(src: LogSource, lastWrittenMs?: number, live = false): Promise<boolean> {
    if (!this.cursor) {
      const start = await this.startOffset(src, lastWrittenMs);
      if (start === undefined) return false;
      this.cursor = new LogCursor(start);
    }
    const s = await this.cursor.drain(src, this.emit, undefined, this.opts.signal);
    if (s.truncated) {
      this.opts.note(`the log on ${src.where} was truncated or replaced; reading it again from its start`);
      await this.cursor.drain(src, this.emit, undefined, this.opts.signal);
    }
    if (s.missing && live) return true;
    return !s.missing;
  }

  private async startOffset(src: LogSource, lastWrittenMs: number | undefined): Promise<number | undefined> {
    const head = await src.read(0, 0, this.opts.signal);
    if (!head) return undefined;
    if (this.backlogDone) return 0;
    this.backlogDone = true;
    const written = lastWrittenMs ?? head.mtimeMs;
    if (this.since && written !== undefined && written < this.since.getTime()) return tailStart(src, 0, undefined, this.opts.signal);
    if (this.opts.tail !== undefined) return tailStart(src, this.opts.tail, undefined, this.opts.signal);
    return 0;
  }

  /** The host as this client reaches it, or why it cannot (not in its hosts.yaml, no hosts.yaml). */
  private async hostFor(name: string): Promise<ShellHost | string> {
    this.registry ??= this.opts.hosts
      ? Promise.resolve(this.opts.hosts)
      : loadHostRegistry(orbitHome(this.env), this.env).catch((e: Error) => `this client's hosts could not be loaded: ${e.message}`);
    const registry = await this.registry;
    if (typeof registry === 'string') return registry;
    if (!registry.names().includes(name)) return `host ${name} is not in this client's hosts.yaml`;
    return registry.get(name);
  }

  /** The copy the monitor syncs to the store (a run from before the store: the worker's folder, when it is this machine). */
  private syncedCopy(): Promise<LogSource | undefined> {
    const { store, bundleDir } = this.logged.input;
    this.synced ??= store
      ? openStore(store, this.env).then(
          (s) => storeLogSource(s, this.logged.runId, this.logFile),
          () => undefined,
        )
      : Promise.resolve(bundleDir ? fileLogSource(join(bundleDir, taskLogPath(this.logFile)), "the worker's folder", true) : undefined);
    return this.synced;
  }
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
