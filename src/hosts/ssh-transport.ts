/**
 * The SSH transport: one ssh2 connection per host, opened on first use, shared by concurrent
 * callers, reopened after a drop. Scripts run as `bash -c` on exec channels; files move over one
 * SFTP session per connection with several requests in flight. The host key is always verified,
 * against a pinned fingerprint or a known_hosts file; there is no accept-anything mode.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { Client, utils, type ClientChannel, type ConnectConfig, type ServerHostKeyAlgorithm, type SFTPWrapper } from 'ssh2';
import { shellQuote } from '../bundle/render';
import type { HostEntry, SshHostKeyPolicy, SshIdentity } from './inventory';
import { HostUnreachableError, type ExecOptions, type ExecResult, type StreamExecOptions, type TransferOptions, type Transport } from './transport';

const DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024;
const MAX_STDERR = 1 << 20;
/**
 * Bytes per SFTP request and requests kept in flight. OpenSSH's sftp-server serves reads of up to
 * 256 KiB - 1 KiB (ssh2 learns the limit through limits@openssh.com and splits longer ones); 255 KiB
 * requests move a file 28 % faster than 64 KiB ones here (docs/benchmarks.md). 16 x 255 KiB is 4 MiB
 * in flight per file, which hides the round trip.
 */
const CHUNK = 255 * 1024;
const DEPTH = 16;
const SFTP_NO_SUCH_FILE = 2;
/** Scripts up to this size go on the command line; longer ones ahead of stdin. */
const INLINE_SCRIPT_MAX = 64 * 1024;


export interface SshTransportOptions {
  /** Inventory name, used in messages. */
  name?: string;
  address: string;
  port?: number;
  user: string;
  identity: SshIdentity;
  hostKey: SshHostKeyPolicy;
  /** Longest wait for TCP connect + handshake + authentication. Default 20 s. */
  readyTimeoutMs?: number;
  /** SSH keepalive period; a connection is dropped after `keepaliveCountMax` unanswered. Defaults 15 s and 4. */
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** Exec channels open at once on the connection (sshd's MaxSessions is 10 by default; SFTP takes one). Default 8. */
  maxChannels?: number;
  /** Where `passphraseEnv` and `SSH_AUTH_SOCK` are read. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Home folder for `~` and the default `~/.ssh/known_hosts`. Default `os.homedir()`. */
  home?: string;
}

/**
 * Thrown when the host's key is unknown, changed or revoked. Not retryable: a person must check
 * the fingerprint and pin it; the message says how.
 */
export class HostKeyError extends Error {
  constructor(
    message: string,
    readonly reason: 'unknown' | 'changed' | 'revoked',
    /** The key the host offered, in OpenSSH form (`SHA256:base64`). */
    readonly offeredFingerprint: string,
    readonly keyType: string,
  ) {
    super(message);
    this.name = 'HostKeyError';
  }
}

/**
 * Thrown when Orbit cannot authenticate: the key file is unreadable or encrypted without a
 * passphrase, the agent is missing, or the host refuses the identity. Not retryable: fix hosts.yaml
 * or the host's authorized_keys.
 */
export class SshAuthError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SshAuthError';
  }
}

/** OpenSSH's fingerprint of a public key blob: `SHA256:` + unpadded base64 of its sha256. */
export function sshFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside a public key blob (`ssh-ed25519`, `ssh-rsa`, ...), or "unknown". */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const len = keyBlob.readUInt32BE(0);
  if (len === 0 || len > 64 || keyBlob.length < 4 + len) return 'unknown';
  return keyBlob.subarray(4, 4 + len).toString('latin1');
}

export interface KnownHostsEntry {
  line: number;
  marker?: '@revoked' | '@cert-authority';
  hosts: string;
  keyType: string;
  key: Buffer;
}

/** Parses known_hosts text; malformed lines are skipped as OpenSSH does. */
export function parseKnownHosts(text: string): KnownHostsEntry[] {
  const out: KnownHostsEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostsEntry['marker'];
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority') marker = fields.shift() as KnownHostsEntry['marker'];
    else if (fields[0]?.startsWith('@')) return;
    const [hosts, keyType, b64] = fields;
    if (!hosts || !keyType || !b64 || !/^[A-Za-z0-9+/]+=*$/.test(b64)) return;
    out.push({ line: i + 1, marker, hosts, keyType, key: Buffer.from(b64, 'base64') });
  });
  return out;
}

/** The name known_hosts uses for a host: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

/** True when a known_hosts host field (plain patterns, `!negations`, or `|1|salt|hash`) names `name`. */
export function knownHostsMatches(hostsField: string, name: string): boolean {
  const lower = name.toLowerCase();
  if (hostsField.startsWith('|1|')) {
    const [, , salt, hash] = hostsField.split('|');
    if (!salt || !hash) return false;
    const want = Buffer.from(hash, 'base64');
    const got = createHmac('sha1', Buffer.from(salt, 'base64')).update(lower).digest();
    return want.length === got.length && timingSafeEqual(want, got);
  }
  let matched = false;
  for (const pattern of hostsField.split(',')) {
    const negated = pattern.startsWith('!');
    const body = (negated ? pattern.slice(1) : pattern).toLowerCase();
    if (!body || !globMatch(body, lower)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

function globMatch(pattern: string, text: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(text);
}

export type KnownHostsVerdict =
  | { status: 'match' }
  | { status: 'unknown' }
  | { status: 'changed'; entry: KnownHostsEntry }
  | { status: 'revoked'; entry: KnownHostsEntry };

/** Checks an offered key blob against known_hosts entries for `name`, as OpenSSH would. */
export function checkKnownHosts(entries: KnownHostsEntry[], name: string, keyBlob: Buffer): KnownHostsVerdict {
  const mine = entries.filter((e) => e.marker !== '@cert-authority' && knownHostsMatches(e.hosts, name));
  const revoked = entries.find((e) => e.marker === '@revoked' && e.key.equals(keyBlob));
  if (revoked) return { status: 'revoked', entry: revoked };
  if (mine.some((e) => !e.marker && e.key.equals(keyBlob))) return { status: 'match' };
  const type = keyTypeOf(keyBlob);
  const other = mine.find((e) => !e.marker && e.keyType === type) ?? mine.find((e) => !e.marker);
  return other ? { status: 'changed', entry: other } : { status: 'unknown' };
}

/** Host key algorithms to offer for a known key type (rsa keys sign with rsa-sha2-*). */
function algorithmsFor(keyType: string): string[] {
  if (keyType === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  if (/^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521))$/.test(keyType)) return [keyType];
  return [];
}

interface Live {
  client: Client;
  closed: boolean;
  /** Settles (rejecting) when the connection closes: raced against SFTP calls, whose callbacks may never come then. */
  dropped: Promise<never>;
  sftp?: Promise<SFTPWrapper>;
  slots: Slots;
}

/** A counting semaphore whose waiters can give up. */
class Slots {
  private free: number;
  private waiters: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }
  acquire(signal?: AbortSignal): Promise<() => void> {
    const release = () => {
      const next = this.waiters.shift();
      if (next) next();
      else this.free++;
    };
    if (this.free > 0) {
      this.free--;
      return Promise.resolve(once(release));
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(once(release));
      };
      const onAbort = () => {
        this.waiters = this.waiters.filter((w) => w !== grant);
        reject(abortError(signal));
      };
      this.waiters.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      fn();
    }
  };
}

function abortError(signal?: AbortSignal): Error {
  const e = new Error('the operation was aborted', { cause: signal?.reason });
  e.name = 'AbortError';
  return e;
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw abortError(signal);
}

/** Runs scripts and moves files on one machine over SSH (see the module comment). */
export class SshTransport implements Transport {
  readonly description: string;
  private readonly opts: SshTransportOptions;
  private readonly port: number;
  private readonly env: NodeJS.ProcessEnv;
  private readonly home: string;
  private live?: Live;
  private pending?: Promise<Live>;
  private generation = 0;

  constructor(options: SshTransportOptions) {
    this.opts = options;
    this.port = options.port ?? 22;
    this.env = options.env ?? process.env;
    this.home = options.home ?? homedir();
    this.description = `${options.user}@${options.address}:${this.port}`;
    if ('fingerprint' in options.hostKey && !/^SHA256:[A-Za-z0-9+/]{43}=?$/.test(options.hostKey.fingerprint)) {
      throw new Error(`host ${this.label}: hostKey.fingerprint must look like "SHA256:" followed by 43 base64 characters, as \`ssh-keygen -lf\` prints it`);
    }
  }

  /** A transport for a hosts.yaml entry. */
  static fromHost(host: HostEntry, overrides: Partial<SshTransportOptions> = {}): SshTransport {
    return new SshTransport({
      name: host.name,
      address: host.address,
      port: host.port,
      user: host.user,
      identity: host.identity,
      hostKey: host.hostKey,
      ...overrides,
    });
  }

  private get label(): string {
    return this.opts.name ? `${this.opts.name} (${this.description})` : this.description;
  }

  // ---------------------------------------------------------------- connection

  private connection(signal?: AbortSignal): Promise<Live> {
    throwIfAborted(signal);
    if (this.live && !this.live.closed) return Promise.resolve(this.live);
    if (!this.pending) {
      const generation = this.generation;
      const p = this.open().then(
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
    if (!signal) return this.pending;
    return raceAbort(this.pending, signal);
  }

  private async open(): Promise<Live> {
    const auth = await this.authConfig();
    const check = await this.hostKeyCheck();
    const client = new Client();
    let markDropped: (e: Error) => void = () => undefined;
    const dropped = new Promise<never>((_, reject) => (markDropped = reject));
    dropped.catch(() => undefined);
    const live: Live = { client, closed: false, dropped, slots: new Slots(this.opts.maxChannels ?? 8) };
    return new Promise<Live>((resolve, reject) => {
      let ready = false;
      let lastError: Error | undefined;
      client.on('ready', () => {
        ready = true;
        resolve(live);
      });
      client.on('error', (err: Error & { level?: string }) => {
        lastError = err;
        if (ready) return; // 'close' follows; the next call reconnects
        reject(this.connectError(err, check.failure()));
        client.end();
      });
      client.on('close', () => {
        live.closed = true;
        markDropped(new HostUnreachableError(`connection to ${this.label} was lost`));
        live.sftp = undefined;
        if (this.live === live) this.live = undefined;
        if (!ready) {
          reject(check.failure() ?? new HostUnreachableError(`connection to ${this.label} closed before it was ready`, { cause: lastError }));
        }
      });
      const config: ConnectConfig = {
        host: this.opts.address,
        port: this.port,
        username: this.opts.user,
        readyTimeout: this.opts.readyTimeoutMs ?? 20_000,
        keepaliveInterval: this.opts.keepaliveIntervalMs ?? 15_000,
        keepaliveCountMax: this.opts.keepaliveCountMax ?? 4,
        hostVerifier: (key: Buffer) => check.verify(key),
        ...auth,
      };
      if (check.algorithms.length) {
        const known = check.algorithms as ServerHostKeyAlgorithm[];
        // Offer the key types known_hosts has for this host first, as OpenSSH does ('remove' runs before 'prepend').
        config.algorithms = { serverHostKey: { remove: known, prepend: known, append: [] } };
      }
      try {
        client.connect(config);
        // Without TCP_NODELAY every small SSH message waits for a delayed ACK: 47 ms per exec instead of 3 ms,
        // and SFTP reads that trickle (docs/benchmarks.md). ssh2 creates the socket inside connect().
        client.setNoDelay(true);
      } catch (e) {
        reject(new SshAuthError(`cannot connect to ${this.label}: ${(e as Error).message}`, { cause: e }));
      }
    });
  }

  private connectError(err: Error & { level?: string; code?: string }, hostKeyFailure: HostKeyError | undefined): Error {
    if (hostKeyFailure) return hostKeyFailure;
    if (err.level === 'client-authentication') {
      const who = 'agent' in this.opts.identity ? 'the keys in ssh-agent' : `the key ${this.opts.identity.keyFile}`;
      return new SshAuthError(
        `${this.label} refused ${who} for user ${this.opts.user}: add its public key to ~${this.opts.user}/.ssh/authorized_keys on the host, or fix identity in hosts.yaml`,
        { cause: err },
      );
    }
    const why = err.level === 'client-timeout' ? `no SSH handshake within ${this.opts.readyTimeoutMs ?? 20_000} ms` : err.message;
    return new HostUnreachableError(`cannot reach ${this.label}: ${why}`, { cause: err });
  }

  private async authConfig(): Promise<Partial<ConnectConfig>> {
    const identity = this.opts.identity;
    if ('agent' in identity) {
      const sock = this.env.SSH_AUTH_SOCK;
      if (!sock) throw new SshAuthError(`host ${this.label}: identity.agent is true but SSH_AUTH_SOCK is not set; start ssh-agent and ssh-add the key, or use identity.keyFile`);
      return { agent: sock };
    }
    const path = this.expand(identity.keyFile);
    let key: Buffer;
    try {
      key = await readFile(path);
    } catch (e) {
      throw new SshAuthError(`host ${this.label}: cannot read identity.keyFile ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
    }
    let passphrase: string | undefined;
    if (identity.passphraseEnv) {
      passphrase = this.env[identity.passphraseEnv];
      if (passphrase === undefined) {
        throw new SshAuthError(`host ${this.label}: identity.passphraseEnv names ${identity.passphraseEnv}, which is not set in the worker's environment; export it before starting the worker`);
      }
    }
    const parsed = utils.parseKey(key, passphrase);
    if (parsed instanceof Error) {
      const encrypted = /encrypted|passphrase/i.test(parsed.message);
      const hint = encrypted && !passphrase ? '; it is encrypted: set identity.passphraseEnv to the name of an environment variable holding its passphrase' : '';
      throw new SshAuthError(`host ${this.label}: cannot use identity.keyFile ${path}: ${parsed.message}${hint}`);
    }
    return { privateKey: key, passphrase };
  }

  private expand(p: string): string {
    if (p === '~') return this.home;
    if (p.startsWith('~/')) return join(this.home, p.slice(2));
    return p;
  }

  /** Builds the host key check for one connection attempt (known_hosts is re-read each time). */
  private async hostKeyCheck(): Promise<{ verify: (key: Buffer) => boolean; failure: () => HostKeyError | undefined; algorithms: string[] }> {
    let failure: HostKeyError | undefined;
    const policy = this.opts.hostKey;
    const address = this.opts.address;
    const port = this.port;
    const scan = (file: string) => `\`ssh-keyscan -p ${port} ${address} >> ${file}\``;
    if ('fingerprint' in policy) {
      const pinned = policy.fingerprint.replace(/=+$/, '');
      return {
        algorithms: [],
        failure: () => failure,
        verify: (key) => {
          const offered = sshFingerprint(key);
          if (offered === pinned) return true;
          failure = new HostKeyError(
            `HOST KEY MISMATCH for ${this.label}: it offered ${keyTypeOf(key)} key ${offered}, but hosts.yaml pins ${pinned}. ` +
              `Someone may be intercepting the connection, or the host was reinstalled. ` +
              `If you checked the new key on the host (\`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub\`), set hostKey.fingerprint to "${offered}" in hosts.yaml.`,
            'changed',
            offered,
            keyTypeOf(key),
          );
          return false;
        },
      };
    }
    const file = this.expand(policy.knownHostsFile ?? join(this.home, '.ssh', 'known_hosts'));
    let text = '';
    let missing = false;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      missing = true;
    }
    const entries = parseKnownHosts(text);
    const name = knownHostsName(address, port);
    const knownTypes = entries.filter((e) => !e.marker && knownHostsMatches(e.hosts, name)).map((e) => e.keyType);
    const algorithms = [...new Set(knownTypes.flatMap(algorithmsFor))];
    return {
      algorithms,
      failure: () => failure,
      verify: (key) => {
        const verdict = checkKnownHosts(entries, name, key);
        if (verdict.status === 'match') return true;
        const offered = sshFingerprint(key);
        const type = keyTypeOf(key);
        if (verdict.status === 'unknown') {
          failure = new HostKeyError(
            `host key of ${this.label} is not known: it offered ${type} key ${offered}, and ${file} ${missing ? 'does not exist' : `has no entry for ${name}`}. ` +
              `If this fingerprint is the host's (check with \`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub\` on it), pin it in hosts.yaml with ` +
              `hostKey: { fingerprint: "${offered}" }, or add the host with ${scan(file)}.`,
            'unknown',
            offered,
            type,
          );
        } else if (verdict.status === 'revoked') {
          failure = new HostKeyError(`host key ${offered} of ${this.label} is marked @revoked in ${file} line ${verdict.entry.line}; refusing to connect.`, 'revoked', offered, type);
        } else {
          failure = new HostKeyError(
            `HOST KEY MISMATCH for ${this.label}: it offered ${type} key ${offered}, but ${file} line ${verdict.entry.line} lists another ${verdict.entry.keyType} key for ${name}. ` +
              `Someone may be intercepting the connection, or the host was reinstalled. If you checked the new key, remove the old entry ` +
              `(\`ssh-keygen -R '${name}' -f ${file}\`) and run ${scan(file)}, or pin it in hosts.yaml with hostKey: { fingerprint: "${offered}" }.`,
            'changed',
            offered,
            type,
          );
        }
        return false;
      },
    };
  }

  // ---------------------------------------------------------------- exec

  exec(script: string, options: ExecOptions = {}): Promise<ExecResult> {
    return this.execOn(script, options);
  }

  execStream(script: string, options: StreamExecOptions): Promise<ExecResult> {
    return this.execOn(script, options);
  }

  private async execOn(script: string, options: ExecOptions & Partial<StreamExecOptions>): Promise<ExecResult> {
    const { signal, timeoutMs } = options;
    throwIfAborted(signal);
    const deadline = timeoutMs ? Date.now() + timeoutMs : undefined;
    const live = await withDeadline(this.connection(signal), deadline, () => new HostUnreachableError(`cannot reach ${this.label} within ${timeoutMs} ms`));
    const release = await withDeadline(
      live.slots.acquire(signal),
      deadline,
      () => new Error(`script on ${this.label} did not get a channel within ${timeoutMs} ms`),
      (lateRelease) => lateRelease(),
    );
    try {
      return await this.runOn(live, script, options, deadline);
    } finally {
      release();
    }
  }

  private runOn(live: Live, script: string, options: ExecOptions & Partial<StreamExecOptions>, deadline: number | undefined): Promise<ExecResult> {
    const max = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
    const { signal, onStdout } = options;
    // The login shell prints its pid (the session's process group: sshd runs each session in a new
    // session) before becoming bash, so a timed-out or aborted script can be killed with its children.
    // A script too long for one argument (Linux caps one at 128 KiB) travels ahead of stdin instead:
    // bash's `read -N` takes exactly its bytes and leaves the rest for the script.
    const size = Buffer.byteLength(script);
    const inline = size <= INLINE_SCRIPT_MAX;
    const body = inline ? script : `LC_ALL=C IFS= read -r -d '' -N ${size} __orbit_script || exit 97; eval "$__orbit_script"`;
    const command = `echo "ORBIT_PID $$" >&2; exec bash -c ${shellQuote(body)}`;
    const stdin = inline ? options.stdin : Buffer.concat([Buffer.from(script), Buffer.from(options.stdin ?? '')]);
    return new Promise<ExecResult>((resolve, reject) => {
      let settled = false;
      let channel: ClientChannel | undefined;
      let pgid: number | undefined;
      let killWanted = false;
      let exit: { code: number | null } | undefined;
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let outBytes = 0;
      let errBytes = 0;
      let pre: Buffer | undefined = Buffer.alloc(0);
      let timer: NodeJS.Timeout | undefined;
      /** The last promise `onStdout` returned: the session is finished only after it settles. */
      let consuming: Promise<void> = Promise.resolve();
      let waiting = 0;

      // Kills the script's process group over the same connection (never reconnects for it).
      const killRemote = () => {
        if (pgid === undefined) return;
        const target = pgid;
        pgid = undefined;
        if (live.closed) return;
        void live.slots
          .acquire()
          .then((release) =>
            this.runOn(live, `kill -KILL -- -${target} 2>/dev/null || kill -KILL ${target} 2>/dev/null; true`, { timeoutMs: 10_000 }, Date.now() + 10_000).finally(release),
          )
          .catch(() => undefined)
          .finally(() => channel?.close());
      };
      const finish = (error: Error | undefined, result?: ExecResult) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (error) {
          // A timed-out, aborted or too chatty script is killed; after a lost connection nothing can be.
          killWanted = !(error instanceof HostUnreachableError);
          if (!killWanted) channel?.close();
          else if (pgid !== undefined) killRemote();
          else setTimeout(() => channel?.close(), 10_000).unref();
          reject(error);
        } else if (result) resolve(result);
      };
      const onAbort = () => finish(abortError(signal));
      if (deadline !== undefined) {
        timer = setTimeout(
          () =>
            finish(
              channel
                ? new Error(`script on ${this.label} timed out after ${options.timeoutMs} ms`)
                : new HostUnreachableError(`${this.label} did not open a session within ${options.timeoutMs} ms`),
            ),
          Math.max(0, deadline - Date.now()),
        );
      }
      signal?.addEventListener('abort', onAbort, { once: true });

      const onStderr = (b: Buffer) => {
        if (pre) {
          pre = Buffer.concat([pre, b]);
          const text = pre.toString('latin1');
          const m = /(^|\n)ORBIT_PID (\d{1,10})\n/.exec(text);
          if (!m && pre.length < 8192) return;
          let rest = pre;
          if (m) {
            pgid = Number(m[2]);
            const start = m.index + (m[1] ?? '').length;
            rest = Buffer.concat([pre.subarray(0, start), pre.subarray(start + m[0].length - (m[1] ?? '').length)]);
            if (killWanted) killRemote();
          }
          pre = undefined;
          b = rest;
        }
        if (errBytes < MAX_STDERR) {
          err.push(b);
          errBytes += b.length;
        }
      };

      try {
        live.client.exec(command, (e, ch) => {
          if (e) {
            finish(live.closed ? new HostUnreachableError(`connection to ${this.label} was lost: ${e.message}`, { cause: e }) : new Error(`cannot open a session on ${this.label}: ${e.message}`, { cause: e }));
            return;
          }
          channel = ch;
          if (settled && !killWanted) ch.close();
          ch.on('data', (b: Buffer) => {
            if (settled) return;
            if (onStdout) {
              // Chunks are handed over one after another, never two at once; reading pauses while some wait.
              waiting++;
              if (waiting > 1) ch.pause();
              consuming = consuming
                .then(() => (settled ? undefined : onStdout(b)))
                .then(
                  () => {
                    if (--waiting === 0 && !settled) ch.resume();
                  },
                  (e: unknown) => finish(e as Error),
                );
              return;
            }
            outBytes += b.length;
            if (outBytes > max) finish(new Error(`script on ${this.label} printed more than ${max} bytes`));
            else out.push(b);
          });
          ch.stderr.on('data', onStderr);
          ch.on('exit', (code: number | null) => {
            exit = { code: typeof code === 'number' ? code : null };
          });
          ch.on('error', (chErr: Error) => finish(new Error(`session on ${this.label} failed: ${chErr.message}`, { cause: chErr })));
          ch.on('close', () => {
            if (pre) onStderr(Buffer.alloc(0));
            if (pre) {
              err.push(pre);
              pre = undefined;
            }
            // OpenSSH always reports exit-status or exit-signal before it closes a session.
            if (!exit) {
              finish(new HostUnreachableError(`connection to ${this.label} was lost while a script ran`));
              return;
            }
            const code = exit.code;
            void consuming.then(() =>
              finish(undefined, {
                code,
                stdout: Buffer.concat(out).toString('utf8'),
                stderr: Buffer.concat(err).toString('utf8'),
              }),
            );
          });
          ch.on('end', () => undefined);
          ch.end(stdin ?? '');
        });
      } catch (e) {
        finish(new HostUnreachableError(`connection to ${this.label} was lost: ${(e as Error).message}`, { cause: e }));
      }
    });
  }

  // ---------------------------------------------------------------- files

  private async sftp(signal?: AbortSignal): Promise<{ live: Live; sftp: SFTPWrapper }> {
    const live = await this.connection(signal);
    if (!live.sftp) {
      const p = new Promise<SFTPWrapper>((resolve, reject) => {
        try {
          live.client.sftp((err, sftp) => {
            if (err) {
              reject(
                live.closed
                  ? new HostUnreachableError(`connection to ${this.label} was lost: ${err.message}`, { cause: err })
                  : new Error(`${this.label} offers no SFTP (${err.message}); enable "Subsystem sftp internal-sftp" in its sshd_config`, { cause: err }),
              );
              return;
            }
            sftp.on('close', () => {
              if (live.sftp === p) live.sftp = undefined;
            });
            sftp.on('error', () => undefined);
            resolve(sftp);
          });
        } catch (e) {
          reject(new HostUnreachableError(`connection to ${this.label} was lost: ${(e as Error).message}`, { cause: e }));
        }
      });
      live.sftp = p;
      p.catch(() => {
        if (live.sftp === p) live.sftp = undefined;
      });
    }
    return { live, sftp: await raceAbort(live.sftp, signal) };
  }

  /** Turns an SFTP failure into HostUnreachableError when the connection is gone, else a plain error. */
  private sftpError(live: Live, what: string, e: unknown): Error {
    if ((e as Error)?.name === 'AbortError') return e as Error;
    const msg = (e as Error)?.message ?? String(e);
    if (live.closed) return new HostUnreachableError(`connection to ${this.label} was lost during ${what}: ${msg}`, { cause: e });
    return new Error(`${what} on ${this.label} failed: ${msg}`, { cause: e });
  }

  async upload(localPath: string, remotePath: string, options: TransferOptions = {}): Promise<void> {
    if (!remotePath.startsWith('/')) throw new Error(`upload to ${this.label}: remote path must be absolute, got "${remotePath}"`);
    const local = await open(localPath, 'r');
    try {
      const st = await local.stat();
      const { live, sftp } = await this.sftp(options.signal);
      let handle: Buffer;
      try {
        handle = await sftpOpen(sftp, remotePath, 'w', st.mode & 0o777);
      } catch (e) {
        if ((e as { code?: number }).code !== SFTP_NO_SUCH_FILE) throw this.sftpError(live, `upload to ${remotePath}`, e);
        const r = await this.exec(`mkdir -p -- ${shellQuote(dirname(remotePath))}`, { signal: options.signal });
        if (r.code !== 0) throw new Error(`cannot create ${dirname(remotePath)} on ${this.label}: ${r.stderr.trim()}`);
        handle = await sftpOpen(sftp, remotePath, 'w', st.mode & 0o777).catch((e2: unknown) => {
          throw this.sftpError(live, `upload to ${remotePath}`, e2);
        });
      }
      try {
        let moved = 0;
        const sending = pipelined(
          st.size,
          async (pos, len) => {
            const buf = Buffer.allocUnsafe(len);
            const { bytesRead } = await local.read(buf, 0, len, pos);
            if (bytesRead !== len) throw new Error(`${localPath} shrank while it was uploaded`);
            await new Promise<void>((res, rej) => sftp.write(handle, buf, 0, len, pos, (e) => (e ? rej(e) : res())));
            moved += len;
            options.onProgress?.(moved);
            return len;
          },
          options.signal,
        );
        await Promise.race([sending, live.dropped]);
      } catch (e) {
        throw this.sftpError(live, `upload to ${remotePath}`, e);
      } finally {
        await Promise.race([sftpClose(sftp, handle), live.dropped.catch(() => undefined)]);
      }
    } finally {
      await local.close();
    }
  }

  async download(remotePath: string, localPath: string, offset: number, maxBytes: number, options: TransferOptions = {}): Promise<number> {
    if (maxBytes <= 0) return 0;
    if (!remotePath.startsWith('/')) throw new Error(`download from ${this.label}: remote path must be absolute, got "${remotePath}"`);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new Error(`download offset must be a whole number >= 0, got ${offset}`);
    await mkdir(dirname(isAbsolute(localPath) ? localPath : join(process.cwd(), localPath)), { recursive: true });
    const { live, sftp } = await this.sftp(options.signal);
    let handle: Buffer;
    try {
      handle = await sftpOpen(sftp, remotePath, 'r');
    } catch (e) {
      throw this.sftpError(live, `download of ${remotePath}`, e);
    }
    const out = await open(localPath, 'a');
    let moved = 0;
    // Read buffers are reused once their bytes are written: a fresh 255 KiB buffer per read costs page
    // faults and garbage collection, which halved throughput here (docs/benchmarks.md).
    const spare: Buffer[] = [];
    try {
      // Reads are issued ahead; their results are appended strictly in order.
      await Promise.race([
        pipelined(
          maxBytes,
          (pos, len) => readFully(sftp, handle, offset + pos, len, len === CHUNK ? spare.pop() : undefined),
          options.signal,
          async (chunk: Buffer) => {
            await out.write(chunk);
            options.onData?.(chunk);
            moved += chunk.length;
            options.onProgress?.(moved);
            if (chunk.length === CHUNK) spare.push(chunk);
          },
        ),
        live.dropped,
      ]);
    } catch (e) {
      throw this.sftpError(live, `download of ${remotePath}`, e);
    } finally {
      await out.close();
      await Promise.race([sftpClose(sftp, handle), live.dropped.catch(() => undefined)]);
    }
    return moved;
  }

  async close(): Promise<void> {
    this.generation++;
    const live = this.live;
    this.live = undefined;
    this.pending = undefined;
    if (!live || live.closed) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        live.client.destroy();
        resolve();
      }, 2000);
      live.client.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      live.client.end();
    });
  }
}

function sftpOpen(sftp: SFTPWrapper, path: string, flags: 'r' | 'w', mode?: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const cb = (err: Error | undefined, handle: Buffer) => (err ? reject(err) : resolve(handle));
    if (mode !== undefined) sftp.open(path, flags, { mode }, cb);
    else sftp.open(path, flags, cb);
  });
}

function sftpClose(sftp: SFTPWrapper, handle: Buffer): Promise<void> {
  return new Promise((resolve) => {
    try {
      sftp.close(handle, () => resolve());
    } catch {
      resolve();
    }
  });
}

/** Reads up to `len` bytes at `pos` (into `into` when given), looping over short reads; fewer bytes only at end of file. */
async function readFully(sftp: SFTPWrapper, handle: Buffer, pos: number, len: number, into?: Buffer): Promise<Buffer> {
  const buf = into ?? Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const n = await new Promise<number>((resolve, reject) =>
      sftp.read(handle, buf, got, len - got, pos + got, (err, bytesRead) => (err ? reject(err) : resolve(bytesRead))),
    );
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/**
 * Runs `step(pos, len)` over [0, total) in CHUNK pieces with up to DEPTH in flight. With `consume`,
 * results are handed over in order, and a short piece (end of file) ends the transfer.
 */
async function pipelined<T extends Buffer | number>(
  total: number,
  step: (pos: number, len: number) => Promise<T>,
  signal: AbortSignal | undefined,
  consume?: (chunk: Buffer) => Promise<void>,
): Promise<void> {
  const inflight: { len: number; p: Promise<T> }[] = [];
  let next = 0;
  const issue = () => {
    while (inflight.length < DEPTH && next < total) {
      const len = Math.min(CHUNK, total - next);
      const p = step(next, len);
      p.catch(() => undefined);
      inflight.push({ len, p });
      next += len;
    }
  };
  try {
    issue();
    while (inflight.length) {
      throwIfAborted(signal);
      const head = inflight.shift();
      if (!head) break;
      const result = await raceAbort(head.p, signal);
      if (consume && Buffer.isBuffer(result)) {
        if (result.length) await consume(result);
        if (result.length < head.len) break; // end of file
      }
      issue();
    }
  } finally {
    // Let requests already sent finish before their handle is closed (bounded: the host may be frozen).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled(inflight.map((x) => x.p)), new Promise((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
  }
}

function raceAbort<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e as Error);
      },
    );
  });
}

/** Rejects with `onTimeout()` at `deadline`; a value arriving later is handed to `onLate`. */
function withDeadline<T>(p: Promise<T>, deadline: number | undefined, onTimeout: () => Error, onLate?: (v: T) => void): Promise<T> {
  if (deadline === undefined) return p;
  return new Promise<T>((resolve, reject) => {
    let timedOut = false;
    const t = setTimeout(() => {
      timedOut = true;
      reject(onTimeout());
    }, Math.max(0, deadline - Date.now()));
    p.then(
      (v) => {
        clearTimeout(t);
        if (timedOut) onLate?.(v);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e as Error);
      },
    );
  });
}
