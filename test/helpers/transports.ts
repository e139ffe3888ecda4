import type { ExecOptions, ExecResult, StreamExecOptions, TransferOptions, Transport } from '../../src/hosts/transport';

/** Hands every call to `inner`: tests extend it to watch or tamper with what a host answers. */
export class PassThroughTransport implements Transport {
  readonly description: string;
  constructor(
    protected readonly inner: Transport,
    description = `wrapped ${inner.description}`,
  ) {
    this.description = description;
  }
  exec(script: string, options?: ExecOptions): Promise<ExecResult> {
    return this.inner.exec(script, options);
  }
  execStream(script: string, options: StreamExecOptions): Promise<ExecResult> {
    return this.inner.execStream(script, options);
  }
  upload(localPath: string, remotePath: string, options?: TransferOptions): Promise<void> {
    return this.inner.upload(localPath, remotePath, options);
  }
  download(remotePath: string, localPath: string, offset: number, maxBytes: number, options?: TransferOptions): Promise<number> {
    return this.inner.download(remotePath, localPath, offset, maxBytes, options);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
