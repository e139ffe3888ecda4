/** How the SSH transport authenticates: a private key file (optionally encrypted) or ssh-agent. */
import { readFile } from 'node:fs/promises';
import { utils, type ConnectConfig } from 'ssh2';
import { expandHome } from '../paths';
import { SshAuthError } from './errors';

/** The private key file (with an optional passphrase from an environment variable) or ssh-agent. */
export type SshIdentity = { keyFile: string; passphraseEnv?: string } | { agent: true };

export interface AuthContext {
  /** The host as messages name it. */
  label: string;
  /** Where `passphraseEnv` and `SSH_AUTH_SOCK` are read. */
  env: NodeJS.ProcessEnv;
  /** Home folder for `~` in the key path. */
  home: string;
}

/** The ssh2 options that authenticate with `identity`; throws SshAuthError when it cannot be used. */
export async function authConfig(identity: SshIdentity, ctx: AuthContext): Promise<Partial<ConnectConfig>> {
  const { label, env } = ctx;
  if ('agent' in identity) {
    const sock = env.SSH_AUTH_SOCK;
    if (!sock) throw new SshAuthError(`host ${label}: identity.agent is true but SSH_AUTH_SOCK is not set; start ssh-agent and ssh-add the key, or use identity.keyFile`);
    return { agent: sock };
  }
  const path = expandHome(identity.keyFile, ctx.home);
  let key: Buffer;
  try {
    key = await readFile(path);
  } catch (e) {
    throw new SshAuthError(`host ${label}: cannot read identity.keyFile ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
  let passphrase: string | undefined;
  if (identity.passphraseEnv) {
    passphrase = env[identity.passphraseEnv];
    if (passphrase === undefined) {
      throw new SshAuthError(`host ${label}: identity.passphraseEnv names ${identity.passphraseEnv}, which is not set in the worker's environment; export it before starting the worker`);
    }
  }
  const parsed = utils.parseKey(key, passphrase);
  if (parsed instanceof Error) {
    const encrypted = /encrypted|passphrase/i.test(parsed.message);
    const hint = encrypted && !passphrase ? '; it is encrypted: set identity.passphraseEnv to the name of an environment variable holding its passphrase' : '';
    throw new SshAuthError(`host ${label}: cannot use identity.keyFile ${path}: ${parsed.message}${hint}`);
  }
  return { privateKey: key, passphrase };
}

/** The error for a host that refused `identity` for `user`. */
export function authRefused(identity: SshIdentity, user: string, label: string, cause: Error): SshAuthError {
  const who = 'agent' in identity ? 'the keys in ssh-agent' : `the key ${identity.keyFile}`;
  return new SshAuthError(
    `${label} refused ${who} for user ${user}: add its public key to ~${user}/.ssh/authorized_keys on the host, or fix identity in hosts.yaml`,
    { cause },
  );
}
