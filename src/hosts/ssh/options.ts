import { homedir } from 'node:os';
import type { SshIdentity } from './auth';
import type { SshHostKeyPolicy } from './host-key';

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

/** The options with their defaults filled in, and how messages name the host. */
export interface SshSettings extends SshTransportOptions {
  port: number;
  env: NodeJS.ProcessEnv;
  home: string;
  readyTimeoutMs: number;
  /** `user@address:port`. */
  description: string;
  /** `name (user@address:port)`, or the description alone. */
  label: string;
}

export function settingsOf(options: SshTransportOptions): SshSettings {
  const port = options.port ?? 22;
  const description = `${options.user}@${options.address}:${port}`;
  return {
    ...options,
    port,
    env: options.env ?? process.env,
    home: options.home ?? homedir(),
    readyTimeoutMs: options.readyTimeoutMs ?? 20_000,
    description,
    label: options.name ? `${options.name} (${description})` : description,
  };
}
