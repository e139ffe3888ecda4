/**
 * How Orbit reaches a machine: run a bash script there, move files both ways. The generic host
 * operations (stage, launch, probe, cancel, collect in shell-host.ts) are written once over this
 * interface; each transport (local processes, SSH) implements only these few primitives.
 * Everything a transport returns from the far side is untrusted.
 */
export interface ExecResult {
  /** Exit code, or null when the process was killed by a signal. */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Bytes written to the script's standard input (used for secrets: never on a command line). */
  stdin?: string | Buffer;
  signal?: AbortSignal;
  /** Kill the script and reject after this long. */
  timeoutMs?: number;
  /** Refuse (reject) when stdout exceeds this many bytes; the far side is untrusted. Default 16 MiB. */
  maxOutputBytes?: number;
}

export interface TransferOptions {
  signal?: AbortSignal;
  /** Called with the bytes moved so far for this file. */
  onProgress?: (bytes: number) => void;
  /** Called with each piece of a download, in file order, once it is written (to hash while downloading). The buffer is reused after the call returns: copy what you keep. */
  onData?: (chunk: Buffer) => void;
}

export interface StreamExecOptions extends Omit<ExecOptions, 'maxOutputBytes'> {
  /**
   * Receives the script's stdout as it arrives. While a promise it returned is pending, reading
   * pauses (and the far side blocks once the window fills). A throw or rejection kills the script
   * and rejects the call with that error.
   */
  onStdout: (chunk: Buffer) => void | Promise<void>;
}

export interface Transport {
  /** Human-readable target, e.g. "local" or "orbit@127.0.0.1:2201". */
  readonly description: string;
  /** Runs `script` with bash on the target. Never rejects for a non-zero exit; rejects when the target is unreachable. */
  exec(script: string, options?: ExecOptions): Promise<ExecResult>;
  /** Like `exec`, but stdout is streamed to `onStdout` instead of collected (the result's stdout is empty). */
  execStream(script: string, options: StreamExecOptions): Promise<ExecResult>;
  /** Copies a local file to an absolute path on the target (the caller picks a temporary name and renames). */
  upload(localPath: string, remotePath: string, options?: TransferOptions): Promise<void>;
  /**
   * Appends the target file's bytes from `offset` on to `localPath` (created if missing), at most
   * `maxBytes` bytes. Returns the number of bytes appended.
   */
  download(remotePath: string, localPath: string, offset: number, maxBytes: number, options?: TransferOptions): Promise<number>;
  /** Releases connections. */
  close(): Promise<void>;
}

/** Thrown when a target cannot be reached (connection refused, timed out, dropped). Retryable. */
export class HostUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HostUnreachableError';
  }
}
