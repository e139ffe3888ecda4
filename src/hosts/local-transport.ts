import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ExecOptions, ExecResult, TransferOptions, Transport } from './transport';

const DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024;

/** Runs scripts with the worker machine's own bash; files move with plain copies. */
export class LocalTransport implements Transport {
  readonly description = 'local';

  exec(script: string, options: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolvePromise, reject) => {
      const child = spawn('bash', ['--norc', '--noprofile', '-c', script], { stdio: ['pipe', 'pipe', 'pipe'], signal: options.signal });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let outBytes = 0;
      const max = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
      let timer: NodeJS.Timeout | undefined;
      if (options.timeoutMs) {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`local script timed out after ${options.timeoutMs} ms`));
        }, options.timeoutMs);
      }
      child.stdout.on('data', (b: Buffer) => {
        outBytes += b.length;
        if (outBytes > max) {
          child.kill('SIGKILL');
          reject(new Error(`local script printed more than ${max} bytes`));
        } else out.push(b);
      });
      child.stderr.on('data', (b: Buffer) => {
        if (err.reduce((n, x) => n + x.length, 0) < 1 << 20) err.push(b);
      });
      child.on('error', (e) => {
        if (timer) clearTimeout(timer);
        reject(e);
      });
      child.on('close', (code) => {
        if (timer) clearTimeout(timer);
        resolvePromise({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
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
      moved += b.length;
      options.onProgress?.(moved);
    });
    await pipeline(source, createWriteStream(localPath, { flags: 'a' }), { signal: options.signal });
    return moved;
  }

  async close(): Promise<void> {}
}
