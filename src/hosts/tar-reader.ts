/**
 * A streaming reader of the tar archives GNU tar writes (ustar, GNU long names, pax headers), for
 * many small files fetched over one stream. The archive comes from the far side, so it is parsed as
 * untrusted input: every header's checksum is checked, sizes and name lengths are bounded, and
 * nothing here touches the file system; the caller decides what an entry's name may be.
 */

const BLOCK = 512;
/** GNU long names ('L') and pax headers ('x') larger than this are refused. */
const MAX_META_BYTES = 1024 * 1024;

export interface TarEntry {
  /** The name as the archive gives it (pax `path`, GNU long name, or ustar prefix + name). */
  path: string;
  /** '0' regular file; anything else (links, folders, devices) is reported but carries no data. */
  type: 'file' | 'other';
  size: number;
  /**
   * The entry's bytes, for a regular file of at most `maxEntryBytes`; undefined when larger. A kept
   * entry is copied once, into memory of its own (its whole ArrayBuffer, offset 0): the receiver may
   * transfer it to another thread without a second copy.
   */
  data?: Buffer;
}

/** Thrown for an archive that is not well-formed; what was read before it stays valid. */
export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarFormatError';
  }
}

interface Pending {
  /** Bytes of data still to read, then `padding` bytes to skip. */
  left: number;
  padding: number;
  /** Where the data is kept, filled from offset `filled` on; undefined when the data is skipped. */
  into: Buffer | undefined;
  filled: number;
  done: (data: Buffer | undefined) => void | Promise<void>;
}

/** A buffer of exactly `size` bytes that owns its ArrayBuffer (allocUnsafe would hand out slices of a shared pool below 4 KiB). */
function ownBuffer(size: number): Buffer {
  return Buffer.allocUnsafeSlow(size);
}

export class TarReader {
  private queue: Buffer[] = [];
  private queued = 0;
  private pending: Pending | undefined;
  private longName: string | undefined;
  private paxPath: string | undefined;
  private paxSize: number | undefined;
  private zeroBlocks = 0;
  /** True once the two zero blocks that end an archive were read. */
  ended = false;

  constructor(
    private readonly onEntry: (entry: TarEntry) => void | Promise<void>,
    private readonly options: { maxEntryBytes: number },
  ) {}

  /** True when the archive stopped between entries (a cut stream leaves this false). */
  get atBoundary(): boolean {
    return this.pending === undefined && this.queued === 0;
  }

  /** Feeds the next piece of the archive; entries complete in it are handed to `onEntry` in order. */
  async push(chunk: Buffer): Promise<void> {
    if (this.ended) return; // GNU tar pads the archive to a record: trailing zeros
    this.queue.push(chunk);
    this.queued += chunk.length;
    for (;;) {
      if (this.pending) {
        const p = this.pending;
        while (p.left > 0 && this.queued > 0) {
          const piece = this.take(Math.min(p.left, this.queue[0]!.length));
          p.left -= piece.length;
          if (p.into) p.filled += piece.copy(p.into, p.filled);
        }
        if (p.left > 0) return;
        if (this.queued < p.padding) return;
        this.take(p.padding);
        this.pending = undefined;
        await p.done(p.into);
        continue;
      }
      if (this.ended || this.queued < BLOCK) return;
      await this.header(this.take(BLOCK));
    }
  }

  private async header(h: Buffer): Promise<void> {
    if (h.every((b) => b === 0)) {
      if (++this.zeroBlocks === 2) {
        this.ended = true;
        this.queue = [];
        this.queued = 0;
      }
      return;
    }
    this.zeroBlocks = 0;
    const stored = octal(h.subarray(148, 156));
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    if (stored === undefined || stored !== sum) throw new TarFormatError('tar header checksum does not match: the stream is not a tar archive or is corrupt');
    const flag = String.fromCharCode(h[156]!);
    const meta = flag === 'L' || flag === 'x' || flag === 'g';
    const size = (meta ? undefined : this.paxSize) ?? sizeField(h.subarray(124, 136));
    if (size === undefined) throw new TarFormatError('tar header has an unreadable size field');
    const padding = (BLOCK - (size % BLOCK)) % BLOCK;

    if (meta) {
      if (size > MAX_META_BYTES) throw new TarFormatError(`tar ${flag} header of ${size} bytes is over the ${MAX_META_BYTES}-byte limit`);
      this.pending = {
        left: size,
        padding,
        into: ownBuffer(size),
        filled: 0,
        done: (data = Buffer.alloc(0)) => {
          if (flag === 'L') this.longName = cString(data);
          else if (flag === 'x') this.readPax(data);
        },
      };
      return;
    }

    let path = this.paxPath ?? this.longName ?? cString(h.subarray(0, 100));
    if (this.paxPath === undefined && this.longName === undefined && h.subarray(257, 263).toString('latin1') === 'ustar\0') {
      const prefix = cString(h.subarray(345, 500));
      if (prefix) path = `${prefix}/${path}`;
    }
    this.longName = this.paxPath = this.paxSize = undefined;
    const regular = flag === '0' || flag === '\0' || flag === '7';
    // Only regular files carry data in the archive (GNU tar writes size 0 for links and folders).
    const dataBytes = regular ? size : flag === '5' || flag === '1' || flag === '2' ? 0 : size;
    const keep = regular && size <= this.options.maxEntryBytes;
    this.pending = {
      left: dataBytes,
      padding: dataBytes ? (BLOCK - (dataBytes % BLOCK)) % BLOCK : 0,
      into: keep ? ownBuffer(size) : undefined,
      filled: 0,
      done: (data) => this.onEntry({ path, type: regular ? 'file' : 'other', size, data }),
    };
  }

  /** pax extended header records: "<len> <key>=<value>\n". Only path and size matter here. */
  private readPax(data: Buffer): void {
    let at = 0;
    while (at < data.length) {
      const space = data.indexOf(0x20, at);
      const len = space > at ? Number(data.subarray(at, space).toString('latin1')) : NaN;
      if (!Number.isSafeInteger(len) || len <= 0 || at + len > data.length) throw new TarFormatError('tar pax header has a malformed record');
      const record = data.subarray(space + 1, at + len - 1).toString('utf8');
      const eq = record.indexOf('=');
      const key = record.slice(0, eq);
      const value = record.slice(eq + 1);
      if (key === 'path') this.paxPath = value;
      else if (key === 'size') {
        if (!/^\d{1,15}$/.test(value)) throw new TarFormatError(`tar pax size "${value.slice(0, 20)}" is not a number`);
        this.paxSize = Number(value);
      }
      at += len;
    }
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.queue[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.queue.shift();
      else this.queue[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const head = this.queue[0]!;
        const k = Math.min(head.length, n - at);
        head.copy(out, at, 0, k);
        at += k;
        if (k === head.length) this.queue.shift();
        else this.queue[0] = head.subarray(k);
      }
    }
    this.queued -= n;
    return out;
  }
}

function cString(b: Buffer): string {
  const end = b.indexOf(0);
  return b.subarray(0, end < 0 ? b.length : end).toString('utf8');
}

function octal(b: Buffer): number | undefined {
  const text = cString(b).trim();
  return /^[0-7]{1,12}$/.test(text) ? parseInt(text, 8) : undefined;
}

/** A size field: octal, or GNU's base-256 form (high bit set) for sizes of 8 GiB and more. */
function sizeField(b: Buffer): number | undefined {
  if (b[0]! & 0x80) {
    if (b[0] !== 0x80) return undefined; // negative or over 2^88: refuse
    let n = 0;
    for (let i = 1; i < b.length; i++) n = n * 256 + b[i]!;
    return Number.isSafeInteger(n) ? n : undefined;
  }
  return octal(b);
}
