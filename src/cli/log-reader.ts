/**
 * Reading a growing task log by byte offset, wherever it is: on the run's host (one short remote
 * command per read), in a local file (the bundle), or in the store's synced copy. A `LogCursor` keeps
 * the offset and the partial last line between reads, so a read that fails is simply asked again from
 * the same offset: no line is lost or given twice, whichever source answers next.
 */
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { isSafeRelativePath } from '../bundle';
import { ARTIFACTS_DIR } from '../common/layout';
import { shellQuote as q } from '../common/shell';
import type { HostContext } from '../hosts/host/context';
import { readArtifacts, blobKey } from '../store/cas';
import type { BundleStore } from '../store/store';

/** Bytes one read asks for. */
export const READ_LIMIT = 1 << 20;
/** A line longer than this is given out in pieces of this size (the far side is untrusted). */
export const MAX_LINE_BYTES = 1 << 20;
const NL = 0x0a;

export interface LogChunk {
  /** The file's size when it was read (it may have grown since: `bytes` can reach past it). */
  size: number;
  /** Its last modification (epoch ms), when the source knows it. */
  mtimeMs?: number;
  /** The file's bytes from the offset asked for, at most the limit. */
  bytes: Buffer;
}

export interface LogSource {
  /** Where the log is read from, for messages: "host box-1", "the local bundle", ... */
  readonly where: string;
  /**
   * A copy taken at some moment (the store's synced log): a copy shorter than the cursor is behind,
   * not truncated. A live file shorter than the cursor was truncated or replaced.
   */
  readonly snapshot?: boolean;
  /** The bytes from `offset`, at most `limit`; undefined when the file is not there (yet). Rejects when the source cannot be reached. */
  read(offset: number, limit: number, signal?: AbortSignal): Promise<LogChunk | undefined>;
}

/** The path of a run's task log inside its bundle or run folder (`artifacts/<logFile>`). */
export function taskLogPath(logFile: string): string {
  if (!isSafeRelativePath(logFile)) throw new Error(`task log "${logFile}" is not a safe relative path`);
  return `${ARTIFACTS_DIR}/${logFile}`;
}

/**
 * The task log in the run's folder on its host. Each read is one script: the file's size and mtime,
 * then `tail -c +<offset+1> | head -c <limit>` (tail seeks in a regular file). Nothing is kept open
 * between reads, so a dropped connection costs one failed read; the transport reconnects on the next.
 * A missing run folder rejects (the caller reads only once the job was launched); a missing log is undefined.
 */
export function hostLogSource(host: HostContext, runId: string, logFile: string, timeoutMs = 15_000): LogSource {
  const dir = host.runDir(runId);
  const path = `${dir}/${taskLogPath(logFile)}`;
  return {
    where: `host ${host.name}`,
    async read(offset, limit, signal) {
      if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(limit) || limit < 0) throw new Error(`bad log read: offset ${offset}, limit ${limit}`);
      const script = `[ -d ${q(dir)} ] || { echo nodir; exit 0; }
f=${q(path)}
[ -f "$f" ] || { echo none; exit 0; }
s=$(stat -c '%s %Y' -- "$f" 2>/dev/null) || s=$(wc -c < "$f" | tr -d " ")
echo "size $s"
tail -c +${offset + 1} -- "$f" | head -c ${limit}
`;
      const chunks: Buffer[] = [];
      let got = 0;
      const cap = limit + 256;
      const r = await host.transport.execStream(script, {
        signal,
        timeoutMs,
        onStdout: (b) => {
          got += b.length;
          if (got > cap) throw new Error(`reading ${path} on ${host.name}: more than ${cap} bytes came back`);
          chunks.push(Buffer.from(b));
        },
      });
      if (r.code !== 0) throw new Error(`reading ${path} on ${host.name} failed (exit ${r.code}): ${r.stderr.trim().split('\n')[0] ?? ''}`);
      const out = Buffer.concat(chunks);
      // In a phase with a log, a missing run folder means this client's host is not the worker's (two machines' "local").
      if (out.toString('utf8', 0, 6) === 'nodir\n') throw new Error(`there is no run folder ${dir} on ${host.name} as this client reaches it`);
      return parseReadOutput(out, path);
    },
  };
}

/** Parses the host read's output: `none`, or `size <bytes>[ <mtime s>]` then the raw bytes. */
export function parseReadOutput(out: Buffer, what: string): LogChunk | undefined {
  const eol = out.indexOf(NL);
  const head = (eol < 0 ? out : out.subarray(0, eol)).toString('utf8').trim();
  if (head === 'none') return undefined;
  const m = /^size (\d{1,15})(?: (\d{1,12}))?$/.exec(head);
  if (!m || eol < 0) throw new Error(`reading ${what}: unexpected answer "${head.slice(0, 80)}"`);
  return { size: Number(m[1]), mtimeMs: m[2] ? Number(m[2]) * 1000 : undefined, bytes: out.subarray(eol + 1) };
}

/** A log in a file on this machine (the local bundle, or a legacy run's folder). */
export function fileLogSource(path: string, where = path, snapshot = false): LogSource {
  return {
    where,
    snapshot,
    async read(offset, limit) {
      const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined;
        throw e;
      });
      if (!fh) return undefined;
      try {
        const st = await fh.stat();
        const want = Math.max(0, Math.min(limit, st.size - offset));
        const buf = Buffer.alloc(want);
        let n = 0;
        while (n < want) {
          const { bytesRead } = await fh.read(buf, n, want - n, offset + n);
          if (bytesRead === 0) break;
          n += bytesRead;
        }
        return { size: st.size, mtimeMs: st.mtimeMs, bytes: buf.subarray(0, n) };
      } finally {
        await fh.close();
      }
    },
  };
}

/**
 * The copy of the task log the monitor synced to the store while the job runs (a prefix of the log on
 * the host, as of the last sync). Read as a byte range of its blob, not verified: it is shown, not kept.
 */
export function storeLogSource(store: BundleStore, runId: string, logFile: string): LogSource {
  const path = taskLogPath(logFile);
  return {
    where: `the copy synced to ${store.url}`,
    snapshot: true,
    async read(offset, limit) {
      const record = await readArtifacts(store, runId);
      const entry = record?.files.find((f) => f.path === path);
      if (!record || !entry) return undefined;
      // When the copy was taken: the log was last written no later than that.
      const mtimeMs = Date.parse(record.updatedAt) || undefined;
      if (offset >= entry.size || limit === 0) return { size: entry.size, mtimeMs, bytes: Buffer.alloc(0) };
      const bytes = await byteRange(await store.getStream(blobKey(entry.sha256)), offset, Math.min(limit, entry.size - offset));
      return { size: entry.size, mtimeMs, bytes };
    },
  };
}

/** `length` bytes of `stream` from `offset` (the stream is destroyed once they are read). */
async function byteRange(stream: Readable, offset: number, length: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let pos = 0;
  let kept = 0;
  try {
    for await (const c of stream) {
      const b = c as Buffer;
      const from = Math.max(0, offset - pos);
      pos += b.length;
      if (from >= b.length) continue;
      const piece = b.subarray(from, from + (length - kept));
      parts.push(piece);
      kept += piece.length;
      if (kept >= length) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(parts);
}

export interface CursorStep {
  /** The complete lines this read finished, without their newline (a trailing CR dropped too). */
  lines: string[];
  /** The read came back full: more bytes may be there at once. */
  full: boolean;
  /** The source had no file. */
  missing: boolean;
  /** A live file was shorter than the cursor: it was truncated or replaced; the cursor went back to 0. */
  truncated: boolean;
  mtimeMs?: number;
}

/**
 * Where a reader is in one log: `position` is the offset of the next byte to read; the bytes of the
 * line not finished yet are held until its newline comes. The position moves only after a read
 * succeeded, so a failed read is repeated from the same offset.
 */
export class LogCursor {
  private partial: Buffer = Buffer.alloc(0);

  constructor(public position = 0) {}

  /** Offset where the held partial line starts: the lines given out end here. */
  get linesEnd(): number {
    return this.position - this.partial.length;
  }

  /** One read at the position. */
  async step(source: LogSource, limit = READ_LIMIT, signal?: AbortSignal): Promise<CursorStep> {
    const chunk = await source.read(this.position, limit, signal);
    if (!chunk) return { lines: [], full: false, missing: true, truncated: false };
    if (chunk.size < this.position && !source.snapshot) {
      this.position = 0;
      this.partial = Buffer.alloc(0);
      return { lines: [], full: false, missing: false, truncated: true, mtimeMs: chunk.mtimeMs };
    }
    const bytes = chunk.bytes.subarray(0, limit);
    this.position += bytes.length;
    return { lines: this.split(bytes), full: limit > 0 && bytes.length >= limit, missing: false, truncated: false, mtimeMs: chunk.mtimeMs };
  }

  /** Reads until the source has no more bytes right now; each batch of lines goes to `onLines` as it comes. */
  async drain(source: LogSource, onLines: (lines: string[]) => void, limit = READ_LIMIT, signal?: AbortSignal): Promise<CursorStep> {
    for (;;) {
      const s = await this.step(source, limit, signal);
      if (s.lines.length) onLines(s.lines);
      if (!s.full) return s;
    }
  }

  /** The held partial line, given out once (the log ended without a final newline). */
  flush(): string | undefined {
    if (!this.partial.length) return undefined;
    const line = lineText(this.partial);
    this.partial = Buffer.alloc(0);
    return line;
  }

  private split(bytes: Buffer): string[] {
    const lines: string[] = [];
    let data = this.partial.length ? Buffer.concat([this.partial, bytes]) : bytes;
    for (let nl = data.indexOf(NL); nl >= 0; nl = data.indexOf(NL)) {
      lines.push(...pieces(data.subarray(0, nl)));
      data = data.subarray(nl + 1);
    }
    while (data.length > MAX_LINE_BYTES) {
      lines.push(lineText(data.subarray(0, MAX_LINE_BYTES)));
      data = data.subarray(MAX_LINE_BYTES);
    }
    this.partial = Buffer.from(data);
    return lines;
  }
}

function pieces(line: Buffer): string[] {
  if (line.length <= MAX_LINE_BYTES) return [lineText(line)];
  const out: string[] = [];
  for (let at = 0; at < line.length; at += MAX_LINE_BYTES) out.push(lineText(line.subarray(at, at + MAX_LINE_BYTES)));
  return out;
}

function lineText(b: Buffer): string {
  const s = b.toString('utf8');
  return s.endsWith('\r') ? s.slice(0, -1) : s;
}

/**
 * The offset where the last `n` complete lines of the log begin (0 when it has fewer), found by
 * reading backwards from its end in `chunk`-byte pieces. A partial last line does not count as one.
 * Undefined when the file is not there.
 */
export async function tailStart(source: LogSource, n: number, chunk = 64 * 1024, signal?: AbortSignal): Promise<number | undefined> {
  const head = await source.read(0, 0, signal);
  if (!head) return undefined;
  let end = head.size;
  // Newlines seen from the end; the (n+1)-th from the end (counting the last complete line's own) ends the line before the tail.
  let seen = 0;
  while (end > 0) {
    const from = Math.max(0, end - chunk);
    const got = await source.read(from, end - from, signal);
    if (!got) return undefined;
    const b = got.bytes.subarray(0, end - from);
    for (let i = b.length - 1; i >= 0; i--) {
      if (b[i] !== NL) continue;
      seen++;
      if (seen === n + 1) return from + i + 1;
    }
    end = from;
  }
  return 0;
}
