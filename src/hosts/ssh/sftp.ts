/**
 * Files over SFTP: one session per connection, with several requests in flight per file. Every
 * call is raced against the connection dropping, since SFTP callbacks may never come then.
 */
import { mkdir, open } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import type { SFTPWrapper } from 'ssh2';
import { shellQuote } from '../../common/shell';
import { raceAbort, settledWithin, throwIfAborted } from '../abort';
import { HostUnreachableError, type ExecOptions, type ExecResult, type TransferOptions } from '../transport';
import { lostOr, type Live } from './connection';

/**
 * Bytes per SFTP request and requests kept in flight. OpenSSH's sftp-server serves reads of up to
 * 256 KiB - 1 KiB (ssh2 learns the limit through limits@openssh.com and splits longer ones); 255 KiB
 * requests move a file 28 % faster than 64 KiB ones here (docs/benchmarks.md). 16 x 255 KiB is 4 MiB
 * in flight per file, which hides the round trip.
 */
const CHUNK = 255 * 1024;
const DEPTH = 16;
const SFTP_NO_SUCH_FILE = 2;
/** Longest wait, after a failure, for requests already sent (the host may be frozen). */
const INFLIGHT_SETTLE_MS = 5000;

/** What a transfer runs on: the connection, its SFTP session, and a way to run a script there. */
export interface SftpContext {
  live: Live;
  sftp: SFTPWrapper;
  label: string;
  exec: (script: string, options?: ExecOptions) => Promise<ExecResult>;
}

/** The connection's SFTP session, opened on first use and shared. */
export async function sftpSession(live: Live, label: string, signal?: AbortSignal): Promise<SFTPWrapper> {
  if (!live.sftp) {
    const p = new Promise<SFTPWrapper>((resolve, reject) => {
      try {
        live.client.sftp((err, sftp) => {
          if (err) {
            reject(lostOr(live, label, err, () => new Error(`${label} offers no SFTP (${err.message}); enable "Subsystem sftp internal-sftp" in its sshd_config`, { cause: err })));
            return;
          }
          sftp.on('close', () => {
            if (live.sftp === p) live.sftp = undefined;
          });
          sftp.on('error', () => undefined);
          resolve(sftp);
        });
      } catch (e) {
        reject(new HostUnreachableError(`connection to ${label} was lost: ${(e as Error).message}`, { cause: e }));
      }
    });
    live.sftp = p;
    p.catch(() => {
      if (live.sftp === p) live.sftp = undefined;
    });
  }
  return raceAbort(live.sftp, signal);
}

/** Turns an SFTP failure into HostUnreachableError when the connection is gone, else a plain error. */
function sftpError(ctx: SftpContext, what: string, e: unknown): Error {
  if ((e as Error)?.name === 'AbortError') return e as Error;
  const msg = (e as Error)?.message ?? String(e);
  if (ctx.live.closed) return new HostUnreachableError(`connection to ${ctx.label} was lost during ${what}: ${msg}`, { cause: e });
  return new Error(`${what} on ${ctx.label} failed: ${msg}`, { cause: e });
}

/** Copies a local file to `remotePath` (over the session `connect` gives), creating its folder when missing. */
export async function uploadFile(connect: () => Promise<SftpContext>, localPath: string, remotePath: string, options: TransferOptions): Promise<void> {
  const local = await open(localPath, 'r');
  try {
    const st = await local.stat();
    const ctx = await connect();
    const { live, sftp } = ctx;
    const handle = await openForUpload(ctx, remotePath, st.mode & 0o777, options.signal);
    try {
      let moved = 0;
      const sending = pipelined(
        st.size,
        async (pos, len) => {
          const buf = Buffer.allocUnsafe(len);
          const { bytesRead } = await local.read(buf, 0, len, pos);
          if (bytesRead !== len) throw new Error(`${localPath} shrank while it was uploaded`);
          await new Promise<void>((res, rej) => sftp.write(handle, buf, 0, len, pos, (e) => (e ? rej(e) : res())));
          moved += len;
          options.onProgress?.(moved);
          return len;
        },
        options.signal,
      );
      await Promise.race([sending, live.dropped]);
    } catch (e) {
      throw sftpError(ctx, `upload to ${remotePath}`, e);
    } finally {
      await Promise.race([sftpClose(sftp, handle), live.dropped.catch(() => undefined)]);
    }
  } finally {
    await local.close();
  }
}

async function openForUpload(ctx: SftpContext, remotePath: string, mode: number, signal?: AbortSignal): Promise<Buffer> {
  try {
    return await sftpOpen(ctx.sftp, remotePath, 'w', mode);
  } catch (e) {
    if ((e as { code?: number }).code !== SFTP_NO_SUCH_FILE) throw sftpError(ctx, `upload to ${remotePath}`, e);
    const r = await ctx.exec(`mkdir -p -- ${shellQuote(dirname(remotePath))}`, { signal });
    if (r.code !== 0) throw new Error(`cannot create ${dirname(remotePath)} on ${ctx.label}: ${r.stderr.trim()}`);
    return sftpOpen(ctx.sftp, remotePath, 'w', mode).catch((e2: unknown) => {
      throw sftpError(ctx, `upload to ${remotePath}`, e2);
    });
  }
}

/** Appends at most `maxBytes` of `remotePath` from `offset` on to `localPath`; returns the bytes appended. */
export async function downloadFile(
  connect: () => Promise<SftpContext>,
  remotePath: string,
  localPath: string,
  offset: number,
  maxBytes: number,
  options: TransferOptions,
): Promise<number> {
  await mkdir(dirname(isAbsolute(localPath) ? localPath : join(process.cwd(), localPath)), { recursive: true });
  const ctx = await connect();
  const { live, sftp } = ctx;
  let handle: Buffer;
  try {
    handle = await sftpOpen(sftp, remotePath, 'r');
  } catch (e) {
    throw sftpError(ctx, `download of ${remotePath}`, e);
  }
  const out = await open(localPath, 'a');
  let moved = 0;
  // Read buffers are reused once their bytes are written: a fresh 255 KiB buffer per read costs page
  // faults and garbage collection, which halved throughput here (docs/benchmarks.md).
  const spare: Buffer[] = [];
  try {
    // Reads are issued ahead; their results are appended strictly in order.
    await Promise.race([
      pipelined(
        maxBytes,
        (pos, len) => readFully(sftp, handle, offset + pos, len, len === CHUNK ? spare.pop() : undefined),
        options.signal,
        async (chunk: Buffer) => {
          await out.write(chunk);
          options.onData?.(chunk);
          moved += chunk.length;
          options.onProgress?.(moved);
          if (chunk.length === CHUNK) spare.push(chunk);
        },
      ),
      live.dropped,
    ]);
  } catch (e) {
    throw sftpError(ctx, `download of ${remotePath}`, e);
  } finally {
    await out.close();
    await Promise.race([sftpClose(sftp, handle), live.dropped.catch(() => undefined)]);
  }
  return moved;
}

function sftpOpen(sftp: SFTPWrapper, path: string, flags: 'r' | 'w', mode?: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const cb = (err: Error | undefined, handle: Buffer) => (err ? reject(err) : resolve(handle));
    if (mode !== undefined) sftp.open(path, flags, { mode }, cb);
    else sftp.open(path, flags, cb);
  });
}

function sftpClose(sftp: SFTPWrapper, handle: Buffer): Promise<void> {
  return new Promise((resolve) => {
    try {
      sftp.close(handle, () => resolve());
    } catch {
      resolve();
    }
  });
}

/** Reads up to `len` bytes at `pos` (into `into` when given), looping over short reads; fewer bytes only at end of file. */
async function readFully(sftp: SFTPWrapper, handle: Buffer, pos: number, len: number, into?: Buffer): Promise<Buffer> {
  const buf = into ?? Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const n = await new Promise<number>((resolve, reject) =>
      sftp.read(handle, buf, got, len - got, pos + got, (err, bytesRead) => (err ? reject(err) : resolve(bytesRead))),
    );
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/**
 * Runs `step(pos, len)` over [0, total) in CHUNK pieces with up to DEPTH in flight. With `consume`,
 * results are handed over in order, and a short piece (end of file) ends the transfer.
 */
async function pipelined<T extends Buffer | number>(
  total: number,
  step: (pos: number, len: number) => Promise<T>,
  signal: AbortSignal | undefined,
  consume?: (chunk: Buffer) => Promise<void>,
): Promise<void> {
  const inflight: { len: number; p: Promise<T> }[] = [];
  let next = 0;
  const issue = () => {
    while (inflight.length < DEPTH && next < total) {
      const len = Math.min(CHUNK, total - next);
      const p = step(next, len);
      p.catch(() => undefined);
      inflight.push({ len, p });
      next += len;
    }
  };
  try {
    issue();
    while (inflight.length) {
      throwIfAborted(signal);
      const head = inflight.shift();
      if (!head) break;
      const result = await raceAbort(head.p, signal);
      if (consume && Buffer.isBuffer(result)) {
        if (result.length) await consume(result);
        if (result.length < head.len) break; // end of file
      }
      issue();
    }
  } finally {
    // Let requests already sent finish before their handle is closed (bounded: the host may be frozen).
    await settledWithin(inflight.map((x) => x.p), INFLIGHT_SETTLE_MS);
  }
}
