import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { CappedBuffer, DEFAULT_MAX_OUTPUT, MAX_STDERR, StdoutPump } from './exec-output';
import type { ExecOptions, ExecResult, StreamExecOptions, TransferOptions, Transport } from './transport';

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
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        child.kill('SIGKILL');
        reject(e);
      };
      const child = spawn('bash', ['--norc', '--noprofile', '-c', script], { stdio: ['pipe', 'pipe', 'pipe'], signal: options.signal });
      const out = new CappedBuffer(options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT);
      const err = new CappedBuffer(MAX_STDERR);
      const pump = onStdout && new StdoutPump(onStdout, child.stdout, () => settled, fail);
      let timer: NodeJS.Timeout | undefined;
      if (options.timeoutMs) {
        timer = setTimeout(() => fail(new Error(`local script timed out after ${options.timeoutMs} ms`)), options.timeoutMs);
      }
      child.stdout.on('data', (b: Buffer) => {
        if (settled) return;
        if (pump) pump.push(b);
        else if (!out.add(b)) fail(new Error(`local script printed more than ${out.max} bytes`));
      });
      child.stderr.on('data', (b: Buffer) => err.addWhileRoom(b));
      child.on('error', (e) => fail(e));
      child.on('close', (code) => {
        void (pump?.drained() ?? Promise.resolve()).then(() => {
          if (settled) return;
          settled = true;
          if (timer) clearTimeout(timer);
          resolvePromise({ code, stdout: out.text(), stderr: err.text() });
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
