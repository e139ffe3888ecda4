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

// Plain JavaScript, evaluated in the thread: it needs no build step and no TypeScript loader.
const THREAD = `
const { parentPort } = require('node:worker_threads');
const { writeFileSync, renameSync } = require('node:fs');
parentPort.on('message', ({ id, part, target, data }) => {
  try {
    writeFileSync(part, data);
    renameSync(part, target);
    parentPort.postMessage({ id });
  } catch (e) {
    parentPort.postMessage({ id, code: e && e.code, message: String(e && e.message || e) });
  }
});
`;

interface Reply {
  id: number;
  code?: string;
  message?: string;
}

export class WriterThread implements FileWriter {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private next = 0;
  private failure: Error | undefined;

  constructor() {
    this.worker = new Worker(THREAD, { eval: true });
    this.worker.on('message', (r: Reply) => {
      const w = this.waiting.get(r.id);
      if (!w) return;
      this.waiting.delete(r.id);
      if (r.message === undefined) w.resolve();
      else w.reject(Object.assign(new Error(r.message), { code: r.code }));
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
   * must not use it afterwards (pass a copy that owns its memory).
   */
  write(part: string, target: string, data: Uint8Array): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.next++;
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, part, target, data }, [data.buffer as ArrayBuffer]);
    });
  }

  /** Stops the thread; writes not yet answered are rejected. */
  async close(): Promise<void> {
    const e = new Error('file writer thread closed');
    this.failure ??= e;
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }
}
