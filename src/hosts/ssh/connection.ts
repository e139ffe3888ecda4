/**
 * One ssh2 connection: opened with the host key verified and the identity loaded, TCP_NODELAY on,
 * and the state its users share (the SFTP session, the channel slots, whether it dropped).
 */
import { Client, type ConnectConfig, type ServerHostKeyAlgorithm, type SFTPWrapper } from 'ssh2';
import { HostUnreachableError } from '../transport';
import { authConfig, authRefused } from './auth';
import { SshAuthError, type HostKeyError } from './errors';
import { hostKeyCheck, type HostKeyCheck } from './host-key';
import type { SshSettings } from './options';
import { Slots } from './slots';

export interface Live {
  client: Client;
  closed: boolean;
  /** Settles (rejecting) when the connection closes: raced against SFTP calls, whose callbacks may never come then. */
  dropped: Promise<never>;
  sftp?: Promise<SFTPWrapper>;
  slots: Slots;
}

/** Opens a connection; `onClose` is called when it closes (after it was ready or not). */
export async function openConnection(s: SshSettings, onClose: (live: Live) => void): Promise<Live> {
  const auth = await authConfig(s.identity, s);
  const check = await hostKeyCheck(s.hostKey, { address: s.address, port: s.port, label: s.label, home: s.home });
  const client = new Client();
  let markDropped: (e: Error) => void = () => undefined;
  const dropped = new Promise<never>((_, reject) => (markDropped = reject));
  dropped.catch(() => undefined);
  const live: Live = { client, closed: false, dropped, slots: new Slots(s.maxChannels ?? 8) };
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
      reject(connectError(s, err, check.failure()));
      client.end();
    });
    client.on('close', () => {
      live.closed = true;
      markDropped(new HostUnreachableError(`connection to ${s.label} was lost`));
      live.sftp = undefined;
      onClose(live);
      if (!ready) {
        reject(check.failure() ?? new HostUnreachableError(`connection to ${s.label} closed before it was ready`, { cause: lastError }));
      }
    });
    try {
      client.connect(connectConfig(s, check, auth));
      // Without TCP_NODELAY every small SSH message waits for a delayed ACK: 47 ms per exec instead of 3 ms,
      // and SFTP reads that trickle (docs/benchmarks.md). ssh2 creates the socket inside connect().
      client.setNoDelay(true);
    } catch (e) {
      reject(new SshAuthError(`cannot connect to ${s.label}: ${(e as Error).message}`, { cause: e }));
    }
  });
}

/** Ends a connection gracefully, destroying it after 2 s. */
export function closeConnection(live: Live): Promise<void> {
  if (live.closed) return Promise.resolve();
  return new Promise<void>((resolve) => {
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

function connectConfig(s: SshSettings, check: HostKeyCheck, auth: Partial<ConnectConfig>): ConnectConfig {
  const config: ConnectConfig = {
    host: s.address,
    port: s.port,
    username: s.user,
    readyTimeout: s.readyTimeoutMs,
    keepaliveInterval: s.keepaliveIntervalMs ?? 15_000,
    keepaliveCountMax: s.keepaliveCountMax ?? 4,
    hostVerifier: (key: Buffer) => check.verify(key),
    ...auth,
  };
  if (check.algorithms.length) {
    const known = check.algorithms as ServerHostKeyAlgorithm[];
    // Offer the key types known_hosts has for this host first, as OpenSSH does ('remove' runs before 'prepend').
    config.algorithms = { serverHostKey: { remove: known, prepend: known, append: [] } };
  }
  return config;
}

function connectError(s: SshSettings, err: Error & { level?: string; code?: string }, hostKeyFailure: HostKeyError | undefined): Error {
  if (hostKeyFailure) return hostKeyFailure;
  if (err.level === 'client-authentication') return authRefused(s.identity, s.user, s.label, err);
  const why = err.level === 'client-timeout' ? `no SSH handshake within ${s.readyTimeoutMs} ms` : err.message;
  return new HostUnreachableError(`cannot reach ${s.label}: ${why}`, { cause: err });
}

/** A failure to use a connection: HostUnreachableError when it is gone, else `otherwise`. */
export function lostOr(live: Live, label: string, e: unknown, otherwise: () => Error): Error {
  const msg = (e as Error)?.message ?? String(e);
  if (live.closed) return new HostUnreachableError(`connection to ${label} was lost: ${msg}`, { cause: e });
  return otherwise();
}
