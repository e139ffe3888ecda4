/**
 * The offset reader of `orbit logs` over real files and real transports: the local one, a real sshd
 * killed and restarted between reads, and a local transport whose reads are cut half-way.
 */
import { appendFile, mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Bundle } from '../../src/bundle';
import { CliError } from '../../src/cli/errors';
import { parseCount, parseSince } from '../../src/cli/log-options';
import { fileLogSource, hostLogSource, LogCursor, MAX_LINE_BYTES, parseReadOutput, storeLogSource, tailStart, type LogSource } from '../../src/cli/log-reader';
import { checkNode } from '../../src/cli/log-stream';
import { lastTraceback } from '../../src/cli/logs';
import { failureHints } from '../../src/cli/follow-log';
import { LocalTransport } from '../../src/hosts/local-transport';
import { ShellHost } from '../../src/hosts/shell-host';
import { SshTransport } from '../../src/hosts/ssh';
import { HostUnreachableError, type ExecResult, type StreamExecOptions, type Transport } from '../../src/hosts/transport';
import { publishArtifacts } from '../../src/store/cas';
import { openStore } from '../../src/store/open';
import { jobSpec } from '../helpers/bundles';
import { sshOptions, startSshd, type SshdServer } from '../helpers/sshd';
import { PassThroughTransport } from '../helpers/transports';
import { useTempDirs } from '../helpers/use-temp-dirs';

const RUN = 'run-1';
const newDir = useTempDirs('orbit-logs-');

/** A local "host" with the run folder made, and the path of its task log. */
async function localRun(transport: Transport = new LocalTransport()): Promise<{ host: ShellHost; log: string }> {
  const work = await newDir();
  await mkdir(join(work, RUN, 'artifacts'), { recursive: true });
  return { host: new ShellHost({ name: 'box', transport, workRoot: work }), log: join(work, RUN, 'artifacts/job.log') };
}

/** Reads until the source has nothing more now, collecting the lines. */
async function drainAll(cursor: LogCursor, src: LogSource, limit?: number): Promise<string[]> {
  const got: string[] = [];
  await cursor.drain(src, (l) => got.push(...l), limit);
  return got;
}

/**
 * A real local transport whose `everyNth` stream exec is cut half-way: the script runs, the first
 * bytes of its output arrive, then the call rejects as a dropped connection would.
 */
class CuttingTransport extends PassThroughTransport {
  calls = 0;
  cuts = 0;
  constructor(private readonly everyNth: number) {
    super(new LocalTransport(), 'cutting local');
  }
  override async execStream(script: string, options: StreamExecOptions): Promise<ExecResult> {
    if (++this.calls % this.everyNth !== 0) return this.inner.execStream(script, options);
    let seen = 0;
    await this.inner.execStream(script, {
      ...options,
      onStdout: (b) => {
        const keep = b.subarray(0, Math.max(0, 12 - seen)); // the header and a few bytes of the log
        seen += keep.length;
        if (keep.length) return options.onStdout(keep);
      },
    });
    this.cuts++;
    throw new HostUnreachableError('connection to cutting local was lost');
  }
}

describe('LogCursor over the host read (local transport)', () => {
  it('gives complete lines only and carries a partial line over to the next read', async () => {
    const { host, log } = await localRun();
    const src = hostLogSource(host, RUN, 'job.log');
    const cursor = new LogCursor();
    expect((await cursor.step(src)).missing).toBe(true);
    await writeFile(log, 'alpha\nbe');
    expect(await drainAll(cursor, src)).toEqual(['alpha']);
    expect(cursor.position).toBe(8);
    expect(cursor.linesEnd).toBe(6);
    await appendFile(log, 'ta\r\ngamma\n\ndel');
    expect(await drainAll(cursor, src)).toEqual(['beta', 'gamma', '']);
    expect(await drainAll(cursor, src)).toEqual([]);
    await appendFile(log, 'ta');
    expect(await drainAll(cursor, src)).toEqual([]);
    expect(cursor.flush()).toBe('delta');
    expect(cursor.flush()).toBeUndefined();
  });

  it('reads in pieces of the limit, multi-byte characters split across reads intact', async () => {
    const { host, log } = await localRun();
    const text = Array.from({ length: 50 }, (_, i) => `zeile ${i} größe ✓`).join('\n') + '\n';
    await writeFile(log, text);
    const src = hostLogSource(host, RUN, 'job.log');
    const got = await drainAll(new LogCursor(), src, 5);
    expect(got.join('\n') + '\n').toBe(text);
  });

  it('rejects when the run folder is not there (another machine), and refuses a garbled answer', async () => {
    const work = await newDir();
    const src = hostLogSource(new ShellHost({ name: 'box', transport: new LocalTransport(), workRoot: work }), RUN, 'job.log');
    await expect(src.read(0, 10)).rejects.toThrow(/no run folder .*run-1 on box/);
    expect(() => parseReadOutput(Buffer.from('size x\n'), 'f')).toThrow(/unexpected answer/);
    expect(parseReadOutput(Buffer.from('size 12 1700000000\nabc'), 'f')).toEqual({ size: 12, mtimeMs: 1_700_000_000_000, bytes: Buffer.from('abc') });
  });

  it('resumes from the same offset after reads cut half-way: a growing log comes out whole, each line once', async () => {
    const transport = new CuttingTransport(3);
    const { host, log } = await localRun(transport);
    const src = hostLogSource(host, RUN, 'job.log');
    const cursor = new LogCursor();
    const got: string[] = [];
    await writeFile(log, '');
    let failures = 0;
    for (let i = 1; i <= 40; i++) {
      // A line written in two pieces, so reads also end inside it.
      await appendFile(log, `line ${i} `);
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          await cursor.drain(src, (l) => got.push(...l), 16);
        } catch (e) {
          expect(e).toBeInstanceOf(HostUnreachableError);
          failures++;
        }
      }
      await appendFile(log, `of 40\n`);
    }
    for (let tries = 0; tries < 10; tries++) await cursor.drain(src, (l) => got.push(...l), 16).catch(() => failures++);
    expect(transport.cuts).toBeGreaterThan(10);
    expect(failures).toBe(transport.cuts);
    expect(got).toEqual(Array.from({ length: 40 }, (_, i) => `line ${i + 1} of 40`));
  });

  it('notices a log truncated or replaced and reads the new one from its start', async () => {
    const { host, log } = await localRun();
    const src = hostLogSource(host, RUN, 'job.log');
    const cursor = new LogCursor();
    await writeFile(log, 'one\ntwo\nthree\n');
    expect(await drainAll(cursor, src)).toEqual(['one', 'two', 'three']);
    await writeFile(`${log}.new`, 'fresh\n');
    await rename(`${log}.new`, log);
    const s = await cursor.step(src);
    expect(s.truncated).toBe(true);
    expect(await drainAll(cursor, src)).toEqual(['fresh']);
  });

  it('splits a line longer than MAX_LINE_BYTES into pieces', async () => {
    const dir = await newDir();
    const path = join(dir, 'big.log');
    await writeFile(path, 'x'.repeat(MAX_LINE_BYTES * 2 + 10) + '\nend\n');
    const got = await drainAll(new LogCursor(), fileLogSource(path));
    expect(got.map((l) => l.length)).toEqual([MAX_LINE_BYTES, MAX_LINE_BYTES, 10, 3]);
  });
});

describe('tailStart', () => {
  it('finds where the last N complete lines begin, reading backwards in small pieces', async () => {
    const dir = await newDir();
    const path = join(dir, 'job.log');
    const src = fileLogSource(path);
    expect(await tailStart(src, 3)).toBeUndefined();
    await writeFile(path, 'a1\nb22\nc333\nd4444\npart');
    const from = async (n: number) => {
      const cursor = new LogCursor((await tailStart(src, n, 4))!);
      return drainAll(cursor, src);
    };
    expect(await from(2)).toEqual(['c333', 'd4444']);
    expect(await from(0)).toEqual([]);
    expect(await from(4)).toEqual(['a1', 'b22', 'c333', 'd4444']);
    expect(await from(10)).toEqual(['a1', 'b22', 'c333', 'd4444']);
    await appendFile(path, '\n');
    expect(await from(1)).toEqual(['part']);
  });
});

describe('the host read over a real sshd killed between reads', () => {
  let server: SshdServer;
  let transport: SshTransport;
  beforeAll(async () => {
    server = await startSshd({ name: 'logbox' });
    transport = new SshTransport(sshOptions(server, { readyTimeoutMs: 3_000 }));
  });
  afterAll(async () => {
    await transport?.close();
    await server?.stop();
  });

  it('fails while sshd is gone and goes on from the same offset once it is back (the transport reconnects)', async () => {
    await mkdir(join(server.workRoot, RUN, 'artifacts'), { recursive: true });
    const log = join(server.workRoot, RUN, 'artifacts/job.log');
    await writeFile(log, 'first\nsec');
    const src = hostLogSource(new ShellHost({ name: 'logbox', transport, workRoot: server.workRoot }), RUN, 'job.log', 5_000);
    const cursor = new LogCursor();
    const got: string[] = [];
    await cursor.drain(src, (l) => got.push(...l));
    await server.kill();
    await appendFile(log, 'ond\nthird\n');
    await expect(cursor.drain(src, (l) => got.push(...l))).rejects.toThrow();
    expect(cursor.position).toBe(9);
    await server.start();
    await cursor.drain(src, (l) => got.push(...l));
    expect(got).toEqual(['first', 'second', 'third']);
  });
});

describe('the synced copy in the store', () => {
  it('reads byte ranges of the log the monitor published, and counts as a copy (never truncated)', async () => {
    const dir = await newDir();
    const store = await openStore(`file://${join(dir, 'store')}`);
    const runDir = join(dir, 'run');
    await mkdir(join(runDir, 'artifacts'), { recursive: true });
    await writeFile(join(runDir, 'artifacts/job.log'), 'one\ntwo\nthr');
    const src = storeLogSource(store, RUN, 'job.log');
    const cursor = new LogCursor();
    expect((await cursor.step(src)).missing).toBe(true);
    await publishArtifacts(store, RUN, runDir);
    expect(await drainAll(cursor, src, 3)).toEqual(['one', 'two']);
    expect(cursor.position).toBe(11);
    // A cursor further on than the copy (it read the host) waits for the copy to catch up.
    const ahead = new LogCursor(20);
    expect(await drainAll(ahead, src)).toEqual([]);
    expect(ahead.position).toBe(20);
  });
});

describe('lastTraceback', () => {
  it('finds the last traceback through its exception line, prefixes included', async () => {
    const dir = join(await newDir(), 'bundle');
    const bundle = await Bundle.create(dir, jobSpec());
    await writeFile(
      bundle.path('artifacts/job.log'),
      [
        'step 1',
        'Traceback (most recent call last):',
        '  File "a.py", line 1, in <module>',
        'KeyError: first',
        'retrying',
        '[rank0]: Traceback (most recent call last):',
        '[rank0]:   File "train.py", line 9, in <module>',
        '[rank0]:     main()',
        '[rank0]:     ^^^^^^',
        '[rank0]: RuntimeError: CUDA out of memory',
        '[rank0]: cleanup done',
        'exit',
      ].join('\n'),
    );
    expect(await lastTraceback(dir)).toEqual([
      '[rank0]: Traceback (most recent call last):',
      '[rank0]:   File "train.py", line 9, in <module>',
      '[rank0]:     main()',
      '[rank0]:     ^^^^^^',
      '[rank0]: RuntimeError: CUDA out of memory',
    ]);
    // What submit --follow prints under a failed run: the traceback, then the command that explains it.
    expect(await failureHints({ workflowId: 'r-1', status: 'failed', bundleDir: dir })).toEqual([
      '  last traceback in the task log:',
      '    [rank0]: Traceback (most recent call last):',
      '    [rank0]:   File "train.py", line 9, in <module>',
      '    [rank0]:     main()',
      '    [rank0]:     ^^^^^^',
      '    [rank0]: RuntimeError: CUDA out of memory',
      '  why: orbit diagnose r-1   (orbit report r-1 writes the HTML report)',
    ]);
    await writeFile(bundle.path('artifacts/job.log'), 'all fine\n');
    expect(await lastTraceback(dir)).toBeUndefined();
    expect(await failureHints({ workflowId: 'r-2', status: 'timed-out', bundleDir: dir })).toEqual(['  why: orbit diagnose r-2   (orbit report r-2 writes the HTML report)']);
    expect(await lastTraceback(join(dir, 'nope'))).toBeUndefined();
  });
});

describe('the flags', () => {
  const exit = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return e instanceof CliError ? [e.exitCode, e.message] : e;
    }
    return undefined;
  };

  it('--since takes a duration back from now or an ISO time; anything else is a usage error', () => {
    const now = new Date('2026-05-01T12:00:00Z');
    expect(parseSince('10m', now).toISOString()).toBe('2026-05-01T11:50:00.000Z');
    expect(parseSince('2026-05-01T10:00:00Z', now).toISOString()).toBe('2026-05-01T10:00:00.000Z');
    expect(exit(() => parseSince('yesterday', now))).toEqual([2, expect.stringMatching(/^--since "yesterday" is not a duration/)]);
    expect(exit(() => parseSince('2026-06-01T00:00:00Z', now))).toEqual([2, expect.stringMatching(/in the future/)]);
  });

  it('--tail must be a whole number and --node must be 0', () => {
    expect(parseCount('--tail', '20')).toBe(20);
    expect(exit(() => parseCount('--tail', '-1'))).toEqual([2, '--tail must be a whole number, 0 or more (got "-1")']);
    expect(exit(() => checkNode(0))).toBeUndefined();
    expect(exit(() => checkNode(1))).toEqual([2, '--node 1: runs are single-node, so their only node is 0']);
  });
});
