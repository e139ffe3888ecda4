/**
 * One script on one exec channel. The login shell prints its pid (the session's process group:
 * sshd runs each session in a new session) before becoming bash, so a timed-out or aborted script
 * can be killed with its children. A script too long for one argument (Linux caps one at 128 KiB)
 * travels ahead of stdin instead: bash's `read -N` takes exactly its bytes and leaves the rest for
 * the script.
 */
import type { ClientChannel } from 'ssh2';
import { EXIT, MARK } from '../../common/protocol';
import { shellQuote } from '../../common/shell';
import { abortError } from '../abort';
import { CappedBuffer, DEFAULT_MAX_OUTPUT, MAX_STDERR, StdoutPump } from '../exec-output';
import { HostUnreachableError, type ExecOptions, type ExecResult, type StreamExecOptions } from '../transport';
import { lostOr, type Live } from './connection';

/** Scripts up to this size go on the command line; longer ones ahead of stdin. */
const INLINE_SCRIPT_MAX = 64 * 1024;
/** Stderr is held back until the session's pid line is seen, or this many bytes came without one. */
const PID_LINE_WITHIN = 8192;
const PID_LINE = new RegExp(`(^|\\n)${MARK.sessionPid} (\\d{1,10})\\n`);

export type RunOptions = ExecOptions & Partial<StreamExecOptions>;

/** The command an exec channel runs for `script`, and the stdin to send it. */
export function sessionCommand(script: string, stdin: string | Buffer | undefined): { command: string; stdin: string | Buffer | undefined } {
  const size = Buffer.byteLength(script);
  const inline = size <= INLINE_SCRIPT_MAX;
  const body = inline ? script : `LC_ALL=C IFS= read -r -d '' -N ${size} __orbit_script || exit ${EXIT.scriptNotRead}; eval "$__orbit_script"`;
  return {
    command: `echo "${MARK.sessionPid} $$" >&2; exec bash -c ${shellQuote(body)}`,
    stdin: inline ? stdin : Buffer.concat([Buffer.from(script), Buffer.from(stdin ?? '')]),
  };
}

/** Runs `script` on a channel of `live` (whose slot the caller holds); rejects at `deadline`. */
export function runScript(live: Live, label: string, script: string, options: RunOptions, deadline: number | undefined): Promise<ExecResult> {
  return new RemoteScript(live, label, options, deadline).run(script);
}

class RemoteScript {
  private settled = false;
  private channel?: ClientChannel;
  private pgid?: number;
  private killWanted = false;
  private exit?: { code: number | null };
  private readonly out: CappedBuffer;
  private readonly err = new CappedBuffer(MAX_STDERR);
  /** Stderr held back until the pid line is found in it. */
  private pre: Buffer | undefined = Buffer.alloc(0);
  private timer?: NodeJS.Timeout;
  private pump?: StdoutPump;
  private resolve: (r: ExecResult) => void = () => undefined;
  private reject: (e: Error) => void = () => undefined;
  private readonly onAbort = () => this.finish(abortError(this.options.signal));

  constructor(
    private readonly live: Live,
    private readonly label: string,
    private readonly options: RunOptions,
    private readonly deadline: number | undefined,
  ) {
    this.out = new CappedBuffer(options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT);
  }

  run(script: string): Promise<ExecResult> {
    const { command, stdin } = sessionCommand(script, this.options.stdin);
    return new Promise<ExecResult>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      if (this.deadline !== undefined) this.timer = setTimeout(() => this.finish(this.timeoutError()), Math.max(0, this.deadline - Date.now()));
      this.options.signal?.addEventListener('abort', this.onAbort, { once: true });
      try {
        this.live.client.exec(command, (e, ch) => {
          if (e) this.finish(lostOr(this.live, this.label, e, () => new Error(`cannot open a session on ${this.label}: ${e.message}`, { cause: e })));
          else this.attach(ch, stdin);
        });
      } catch (e) {
        this.finish(new HostUnreachableError(`connection to ${this.label} was lost: ${(e as Error).message}`, { cause: e }));
      }
    });
  }

  private timeoutError(): Error {
    const ms = this.options.timeoutMs;
    return this.channel ? new Error(`script on ${this.label} timed out after ${ms} ms`) : new HostUnreachableError(`${this.label} did not open a session within ${ms} ms`);
  }

  private attach(ch: ClientChannel, stdin: string | Buffer | undefined): void {
    this.channel = ch;
    if (this.settled && !this.killWanted) ch.close();
    const { onStdout } = this.options;
    if (onStdout) this.pump = new StdoutPump(onStdout, ch, () => this.settled, (e) => this.finish(e));
    ch.on('data', (b: Buffer) => this.onData(b));
    ch.stderr.on('data', (b: Buffer) => this.onStderr(b));
    ch.on('exit', (code: number | null) => {
      this.exit = { code: typeof code === 'number' ? code : null };
    });
    ch.on('error', (chErr: Error) => this.finish(new Error(`session on ${this.label} failed: ${chErr.message}`, { cause: chErr })));
    ch.on('close', () => this.onClose());
    ch.on('end', () => undefined);
    ch.end(stdin ?? '');
  }

  private onData(b: Buffer): void {
    if (this.settled) return;
    if (this.pump) this.pump.push(b);
    else if (!this.out.add(b)) this.finish(new Error(`script on ${this.label} printed more than ${this.out.max} bytes`));
  }

  private onStderr(b: Buffer): void {
    if (this.pre) {
      const pre = Buffer.concat([this.pre, b]);
      this.pre = pre;
      const m = PID_LINE.exec(pre.toString('latin1'));
      if (!m && pre.length < PID_LINE_WITHIN) return;
      let rest = pre;
      if (m) {
        this.pgid = Number(m[2]);
        const lead = (m[1] ?? '').length;
        const start = m.index + lead;
        rest = Buffer.concat([pre.subarray(0, start), pre.subarray(start + m[0].length - lead)]);
        if (this.killWanted) this.killRemote();
      }
      this.pre = undefined;
      b = rest;
    }
    this.err.addWhileRoom(b);
  }

  private onClose(): void {
    if (this.pre) this.onStderr(Buffer.alloc(0));
    if (this.pre) {
      this.err.addWhileRoom(this.pre);
      this.pre = undefined;
    }
    // OpenSSH always reports exit-status or exit-signal before it closes a session.
    if (!this.exit) {
      this.finish(new HostUnreachableError(`connection to ${this.label} was lost while a script ran`));
      return;
    }
    const code = this.exit.code;
    void (this.pump?.drained() ?? Promise.resolve()).then(() => this.finish(undefined, { code, stdout: this.out.text(), stderr: this.err.text() }));
  }

  private finish(error: Error | undefined, result?: ExecResult): void {
    if (this.settled) return;
    this.settled = true;
    if (this.timer) clearTimeout(this.timer);
    this.options.signal?.removeEventListener('abort', this.onAbort);
    if (error) {
      // A timed-out, aborted or too chatty script is killed; after a lost connection nothing can be.
      this.killWanted = !(error instanceof HostUnreachableError);
      if (!this.killWanted) this.channel?.close();
      else if (this.pgid !== undefined) this.killRemote();
      else setTimeout(() => this.channel?.close(), 10_000).unref();
      this.reject(error);
    } else if (result) this.resolve(result);
  }

  /** Kills the script's process group over the same connection (never reconnects for it). */
  private killRemote(): void {
    if (this.pgid === undefined) return;
    const target = this.pgid;
    this.pgid = undefined;
    if (this.live.closed) return;
    const kill = `kill -KILL -- -${target} 2>/dev/null || kill -KILL ${target} 2>/dev/null; true`;
    void this.live.slots
      .acquire()
      .then((release) => runScript(this.live, this.label, kill, { timeoutMs: 10_000 }, Date.now() + 10_000).finally(release))
      .catch(() => undefined)
      .finally(() => this.channel?.close());
  }
}
