/**
 * The SSH transport: one ssh2 connection per host, opened on first use, shared by concurrent
 * callers, reopened after a drop. Scripts run as `bash -c` on exec channels (./exec.ts); files move
 * over one SFTP session per connection with several requests in flight (./sftp.ts). The host key is
 * always verified (./host-key.ts); there is no accept-anything mode.
 */
import { raceAbort, throwIfAborted, withDeadline } from '../abort';
import { HostUnreachableError, type ExecOptions, type ExecResult, type StreamExecOptions, type TransferOptions, type Transport } from '../transport';
import { closeConnection, openConnection, type Live } from './connection';
import { runScript, type RunOptions } from './exec';
import { assertValidPolicy } from './host-key';
import { settingsOf, type SshSettings, type SshTransportOptions } from './options';
import { downloadFile, sftpSession, uploadFile, type SftpContext } from './sftp';

/** Runs scripts and moves files on one machine over SSH (see the module comment). */
export class SshTransport implements Transport {
  readonly description: string;
  private readonly settings: SshSettings;
  private live?: Live;
  private pending?: Promise<Live>;
  private generation = 0;
  /** Commands sent (exec and streaming exec), for the worker's stats line. */
  readonly counts = { commands: 0 };

  constructor(options: SshTransportOptions) {
    this.settings = settingsOf(options);
    this.description = this.settings.description;
    assertValidPolicy(options.hostKey, this.label);
  }

  private get label(): string {
    return this.settings.label;
  }

  // ---------------------------------------------------------------- connection

  private connection(signal?: AbortSignal): Promise<Live> {
    throwIfAborted(signal);
    if (this.live && !this.live.closed) return Promise.resolve(this.live);
    if (!this.pending) {
      const generation = this.generation;
      const p = openConnection(this.settings, (live) => {
        if (this.live === live) this.live = undefined;
      }).then(
        (live) => {
          if (this.pending === p) this.pending = undefined;
          if (generation !== this.generation) {
            live.client.end();
            throw new HostUnreachableError(`connection to ${this.label} was closed while it opened`);
          }
          if (live.closed) throw new HostUnreachableError(`connection to ${this.label} closed right after it opened`);
          this.live = live;
          return live;
        },
        (err: unknown) => {
          if (this.pending === p) this.pending = undefined;
          throw err;
        },
      );
      this.pending = p;
    }
    return raceAbort(this.pending, signal);
  }

  // ---------------------------------------------------------------- exec

  exec(script: string, options: ExecOptions = {}): Promise<ExecResult> {
    return this.execOn(script, options);
  }

  execStream(script: string, options: StreamExecOptions): Promise<ExecResult> {
    return this.execOn(script, options);
  }

  private async execOn(script: string, options: RunOptions): Promise<ExecResult> {
    const { signal, timeoutMs } = options;
    throwIfAborted(signal);
    this.counts.commands++;
    const deadline = timeoutMs ? Date.now() + timeoutMs : undefined;
    const live = await withDeadline(this.connection(signal), deadline, () => new HostUnreachableError(`cannot reach ${this.label} within ${timeoutMs} ms`));
    const release = await withDeadline(
      live.slots.acquire(signal),
      deadline,
      () => new Error(`script on ${this.label} did not get a channel within ${timeoutMs} ms`),
      (lateRelease) => lateRelease(),
    );
    try {
      return await runScript(live, this.label, script, options, deadline);
    } finally {
      release();
    }
  }

  // ---------------------------------------------------------------- files

  private async sftp(signal?: AbortSignal): Promise<SftpContext> {
    const live = await this.connection(signal);
    const sftp = await sftpSession(live, this.label, signal);
    return { live, sftp, label: this.label, exec: (script, options) => this.exec(script, options) };
  }

  async upload(localPath: string, remotePath: string, options: TransferOptions = {}): Promise<void> {
    if (!remotePath.startsWith('/')) throw new Error(`upload to ${this.label}: remote path must be absolute, got "${remotePath}"`);
    await uploadFile(() => this.sftp(options.signal), localPath, remotePath, options);
  }

  async download(remotePath: string, localPath: string, offset: number, maxBytes: number, options: TransferOptions = {}): Promise<number> {
    if (maxBytes <= 0) return 0;
    if (!remotePath.startsWith('/')) throw new Error(`download from ${this.label}: remote path must be absolute, got "${remotePath}"`);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new Error(`download offset must be a whole number >= 0, got ${offset}`);
    return downloadFile(() => this.sftp(options.signal), remotePath, localPath, offset, maxBytes, options);
  }

  async close(): Promise<void> {
    this.generation++;
    const live = this.live;
    this.live = undefined;
    this.pending = undefined;
    if (live) await closeConnection(live);
  }
}
