/**
 * Small files in one tar stream: `tar -T -` on the host reads the paths from stdin; each entry is
 * checked (a path asked for, not seen before, a regular file of the listed size, and the manifest's
 * sha256 when there is one), written to `.orbit-part` and renamed into place as it arrives.
 */
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { ManifestEntry, Problem } from '../../bundle';
import { shellQuote as q } from '../../common/shell';
import { TarFormatError, TarReader, type TarEntry } from '../tar-reader';
import type { ExecResult, Transport } from '../transport';
import { mainThreadWriter, WriterThread, type FileWriter } from '../writer-thread';
import type { RemoteFile } from './listing';
import { LOCAL_WRITE_ERRORS, partialPath, type LocalFolders } from './local-files';

/** Streamed files wait for the local writers in a queue of at most this many bytes; then the stream pauses. */
const STREAM_QUEUE_BYTES = 16 * 1024 * 1024;
/** Below this many streamed files their writes stay on the main thread (a thread costs more than it saves). */
const WRITER_THREAD_MIN_FILES = 256;

export interface StreamTarget {
  transport: Transport;
  /** The run folder on the host. */
  dir: string;
  folders: LocalFolders;
  manifest: Map<string, ManifestEntry>;
  signal: AbortSignal;
  /** Called for each file written in place. */
  fetched: (f: RemoteFile, bytes: number, sha: string) => void;
  refused: Problem[];
}

/** Fetches `files` (all small, none of them local yet) as one tar stream; returns those it did not deliver intact. */
export async function streamFiles(t: StreamTarget, files: RemoteFile[]): Promise<RemoteFile[]> {
  const sink = new TarSink(t, files);
  const reader = new TarReader((e) => sink.write(e), { maxEntryBytes: files.reduce((m, f) => Math.max(m, f.size), 0) });
  let outcome: ExecResult | undefined;
  try {
    outcome = await t.transport.execStream(`cd ${q(t.dir)} && exec tar --null --no-recursion --hard-dereference -T - -cf -`, {
      stdin: files.map((f) => `${f.path}\0`).join(''),
      signal: t.signal,
      onStdout: (chunk) => reader.push(chunk),
    });
  } catch (e) {
    if (!(e instanceof TarFormatError)) throw e;
  } finally {
    await sink.close();
  }
  return sink.leftovers(outcome?.stderr ?? '');
}

/**
 * Writes the entries of the stream as they arrive, by a thread of its own when there are many;
 * the stream pauses while more than STREAM_QUEUE_BYTES wait to be written.
 */
class TarSink {
  private readonly wanted: Map<string, RemoteFile>;
  private readonly delivered = new Set<string>();
  private readonly writer: FileWriter;
  private readonly writing = new Set<Promise<void>>();
  private queuedBytes = 0;
  private writeError: Error | undefined;

  constructor(
    private readonly t: StreamTarget,
    private readonly files: RemoteFile[],
  ) {
    this.wanted = new Map(files.map((f) => [f.path, f]));
    this.writer = files.length >= WRITER_THREAD_MIN_FILES ? new WriterThread() : mainThreadWriter;
  }

  async write(e: TarEntry): Promise<void> {
    const f = this.wanted.get(e.path);
    if (!f || this.delivered.has(f.path) || e.type !== 'file' || !e.data || e.size !== f.size) return;
    const sha = createHash('sha256').update(e.data).digest('hex');
    const entry = this.t.manifest.get(f.path);
    if (entry && entry.sha256 !== sha) return; // changed while read: fetched again over SFTP
    this.delivered.add(f.path);
    if (!(await this.t.folders.ensure(posix.dirname(f.path)))) {
      this.t.refused.push({ path: f.path, message: 'resolves outside the bundle; not collected' });
      return;
    }
    const target = join(this.t.folders.root, f.path);
    const size = e.data.length;
    const w = this.writer
      .write(partialPath(target), target, e.data) // the reader's own copy: moved to the thread, not copied again
      .then(
        () => this.t.fetched(f, size, sha),
        (err: NodeJS.ErrnoException) => {
          if (LOCAL_WRITE_ERRORS.includes(err.code ?? '')) this.t.refused.push({ path: f.path, message: `cannot be written locally (${err.code}); not collected` });
          else this.writeError ??= err;
        },
      )
      .finally(() => {
        this.writing.delete(w);
        this.queuedBytes -= size;
      });
    this.writing.add(w);
    this.queuedBytes += size;
    while (this.queuedBytes > STREAM_QUEUE_BYTES && !this.writeError) await Promise.race(this.writing);
    if (this.writeError) throw this.writeError;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.writing);
    await this.writer.close();
  }

  /**
   * The files to fetch again. tar names a file it could not read whole on stderr ("file changed as
   * we read it", "File shrank by N bytes; padding with zeros"); without a manifest hash to prove it,
   * such a copy is fetched again.
   */
  async leftovers(complaints: string): Promise<RemoteFile[]> {
    if (this.writeError) throw this.writeError;
    const again: RemoteFile[] = [];
    for (const f of this.files) {
      if (!this.delivered.has(f.path)) again.push(f);
      else if (complaints && !this.t.manifest.has(f.path) && complaints.includes(`${f.path}:`)) {
        await rm(join(this.t.folders.root, f.path), { force: true });
        again.push(f);
      }
    }
    return again;
  }
}
