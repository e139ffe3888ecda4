import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ExecOptions, ExecResult, StreamExecOptions, TransferOptions, Transport } from './transport';

const DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024;

/** Runs scripts with the worker machine's own bash; files move with plain copies. */
export class LocalTransport implements Transport {
  readonly description = 'local';

  exec(script: string, options: ExecOptions = {}): Promise<ExecResult> {
    return this.run(script, options);
  }

  execStream(script: string, options: StreamExecOptions): Promise<ExecResult> {
    return this.run(script, options);
  }

  private run(script: string, options: ExecOptions & Partial<StreamExecOptions>): Promise<ExecResult> {
    const { onStdout } = options;
    return new Promise((resolvePromise, reject) => {
      let settled = false;
      let consuming: Promise<void> = Promise.resolve();
      let waiting = 0;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        child.kill('SIGKILL');
        reject(e);
      };
      const child = spawn('bash', ['--norc', '--noprofile', '-c', script], { stdio: ['pipe', 'pipe', 'pipe'], signal: options.signal });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let outBytes = 0;
      const max = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
      let timer: NodeJS.Timeout | undefined;
      if (options.timeoutMs) {
        timer = setTimeout(() => fail(new Error(`local script timed out after ${options.timeoutMs} ms`)), options.timeoutMs);
      }
      child.stdout.on('data', (b: Buffer) => {
        if (settled) return;
        if (onStdout) {
          // Chunks are handed over one after another, never two at once; reading pauses while some wait.
          waiting++;
          if (waiting > 1) child.stdout.pause();
          consuming = consuming
            .then(() => (settled ? undefined : onStdout(b)))
            .then(
              () => {
                if (--waiting === 0 && !settled) child.stdout.resume();
              },
              (e: unknown) => fail(e as Error),
            );
          return;
        }
        outBytes += b.length;
        if (outBytes > max) fail(new Error(`local script printed more than ${max} bytes`));
        else out.push(b);
      });
      child.stderr.on('data', (b: Buffer) => {
        if (err.reduce((n, x) => n + x.length, 0) < 1 << 20) err.push(b);
      });
      child.on('error', (e) => fail(e));
      child.on('close', (code) => {
        void consuming.then(() => {
          if (settled) return;
          settled = true;
          if (timer) clearTimeout(timer);
          resolvePromise({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
        });
      });
      child.stdin.on('error', () => undefined);
      child.stdin.end(options.stdin ?? '');
    });
  }

  async upload(localPath: string, remotePath: string, _options?: TransferOptions): Promise<void> {
    await mkdir(dirname(remotePath), { recursive: true });
    await copyFile(localPath, remotePath);
  }

  async download(remotePath: string, localPath: string, offset: number, maxBytes: number, options: TransferOptions = {}): Promise<number> {
    if (maxBytes <= 0) return 0;
    await mkdir(dirname(localPath), { recursive: true });
    let moved = 0;
    const source = createReadStream(remotePath, { start: offset, end: offset + maxBytes - 1 });
    source.on('data', (b) => {
      options.onData?.(b as Buffer);
      moved += b.length;
      options.onProgress?.(moved);
    });
    await pipeline(source, createWriteStream(localPath, { flags: 'a' }), { signal: options.signal });
    return moved;
  }

  async close(): Promise<void> {}
}
