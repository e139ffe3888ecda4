/**
 * Writes whole files from a worker thread with plain synchronous calls. Creating thousands of small
 * files is bound by the file system's own cost per file; from the main thread's promise API each one
 * also pays a hand-off to libuv's pool and back (about 40 % more here, docs/benchmarks.md), and
 * synchronous calls on the main thread would stall the transfer feeding them. One thread writing
 * one file after another does neither.
 */
import { rename, writeFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';

/** Writes a whole file as `part`, then renames it to `target`. */
export interface FileWriter {
  write(part: string, target: string, data: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** The same from the main thread, with the promise API: for a few files, where starting a thread costs more. */
export const mainThreadWriter: FileWriter = {
  async write(part, target, data) {
    await writeFile(part, data);
    await rename(part, target);
  },
  async close() {},
};

// Plain JavaScript, evaluated in the thread: it needs no build step and no TypeScript loader. Writes
// come in batches and are answered in batches: one message each way per batch, not per file.
const THREAD = `
const { parentPort } = require('node:worker_threads');
const { writeFileSync, renameSync } = require('node:fs');
parentPort.on('message', (batch) => {
  const replies = [];
  for (const { id, part, target, data } of batch) {
    try {
      writeFileSync(part, data);
      renameSync(part, target);
      replies.push({ id });
    } catch (e) {
      replies.push({ id, code: e && e.code, message: String(e && e.message || e) });
    }
  }
  parentPort.postMessage(replies);
});
`;

interface Reply {
  id: number;
  code?: string;
  message?: string;
}

interface Job {
  id: number;
  part: string;
  target: string;
  data: Uint8Array;
}

/**
 * A batch is sent once the writes asked for in one turn of the event loop are in (all the entries
 * of one chunk of the stream), or sooner once it holds this many bytes. Each message wakes the
 * other thread: one per file cost as much CPU as the writes themselves on a busy machine
 * (docs/benchmarks.md).
 */
const BATCH_BYTES = 4 * 1024 * 1024;

export class WriterThread implements FileWriter {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private batch: Job[] = [];
  private batchBytes = 0;
  private flushing: NodeJS.Immediate | undefined;
  private next = 0;
  private failure: Error | undefined;

  constructor() {
    this.worker = new Worker(THREAD, { eval: true });
    this.worker.on('message', (replies: Reply[]) => {
      for (const r of replies) {
        const w = this.waiting.get(r.id);
        if (!w) continue;
        this.waiting.delete(r.id);
        if (r.message === undefined) w.resolve();
        else w.reject(Object.assign(new Error(r.message), { code: r.code }));
      }
    });
    const fail = (e: Error) => {
      this.failure = e;
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`file writer thread exited (code ${code})`)));
  }

  /**
   * Writes `data` to `part`, then renames it to `target`. `data` is moved to the thread: the caller
   * must not use it afterwards. Data that is a view into a larger ArrayBuffer is copied first (a
   * TarEntry's data owns its memory and is not).
   */
  write(part: string, target: string, data: Uint8Array): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength) data = new Uint8Array(data);
    const id = this.next++;
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.batch.push({ id, part, target, data });
      this.batchBytes += data.byteLength;
      if (this.batchBytes >= BATCH_BYTES) this.flush();
      else this.flushing ??= setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = undefined;
    const batch = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    if (!batch.length || this.failure) return;
    this.worker.postMessage(
      batch,
      batch.map((j) => j.data.buffer as ArrayBuffer),
    );
  }

  /** Stops the thread; writes not yet answered (or not yet sent) are rejected. */
  async close(): Promise<void> {
    const e = new Error('file writer thread closed');
    this.failure ??= e;
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = undefined;
    this.batch = [];
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }
}
