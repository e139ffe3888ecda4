/**
 * What both transports do with a script's output, written once: stdout collected up to a limit (the
 * far side is untrusted), stderr kept up to 1 MiB, or stdout handed to a consumer chunk by chunk.
 */

/** Default cap of a script's collected stdout (ExecOptions.maxOutputBytes). */
export const DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024;
/** Stderr beyond this many bytes is dropped. */
export const MAX_STDERR = 1 << 20;

/** Collects chunks up to `max` bytes. */
export class CappedBuffer {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  constructor(readonly max: number) {}

  /** Keeps `b` and returns true, unless the total would pass `max` (then false, and `b` is dropped). */
  add(b: Buffer): boolean {
    this.bytes += b.length;
    if (this.bytes > this.max) return false;
    this.chunks.push(b);
    return true;
  }

  /** Keeps `b` while less than `max` bytes are kept (the chunk that crosses it is kept whole). */
  addWhileRoom(b: Buffer): void {
    if (this.bytes >= this.max) return;
    this.chunks.push(b);
    this.bytes += b.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/**
 * Hands stdout to `onStdout` one chunk after another, never two at once; reading pauses while more
 * than one waits. A throw or rejection of `onStdout` goes to `fail`.
 */
export class StdoutPump {
  private consuming: Promise<void> = Promise.resolve();
  private waiting = 0;

  constructor(
    private readonly onStdout: (chunk: Buffer) => void | Promise<void>,
    private readonly stream: { pause(): void; resume(): void },
    private readonly settled: () => boolean,
    private readonly fail: (e: Error) => void,
  ) {}

  push(b: Buffer): void {
    this.waiting++;
    if (this.waiting > 1) this.stream.pause();
    this.consuming = this.consuming
      .then(() => (this.settled() ? undefined : this.onStdout(b)))
      .then(
        () => {
          if (--this.waiting === 0 && !this.settled()) this.stream.resume();
        },
        (e: unknown) => this.fail(e as Error),
      );
  }

  /** Settles once every chunk handed over so far has been consumed (or has failed). */
  drained(): Promise<void> {
    return this.consuming;
  }
}
