/**
 * The host-key policy: the key a host offers is always verified, against a pinned fingerprint or a
 * known_hosts file (re-read for each connection attempt); there is no accept-anything mode. A
 * refusal becomes a HostKeyError whose message says how to check and pin the key.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expandHome } from '../paths';
import { HostKeyError } from './errors';
import { checkKnownHosts, keyTypeOf, knownHostsName, knownKeyTypes, parseKnownHosts, sshFingerprint, type KnownHostsVerdict } from './known-hosts';

/** A pinned `SHA256:` fingerprint, or a known_hosts file (default `~/.ssh/known_hosts`). */
export type SshHostKeyPolicy = { fingerprint: string } | { knownHostsFile?: string };

/** The host a key is checked for. */
export interface HostKeyTarget {
  address: string;
  port: number;
  /** The host as messages name it. */
  label: string;
  /** Home folder for `~` and the default known_hosts. */
  home: string;
}

/** The check of one connection attempt: ssh2's hostVerifier, and why it refused, if it did. */
export interface HostKeyCheck {
  verify: (key: Buffer) => boolean;
  failure: () => HostKeyError | undefined;
  /** Host key algorithms to offer first (those known_hosts has for this host). */
  algorithms: string[];
}

/** Throws when a pinned fingerprint is not in OpenSSH's `SHA256:` form. */
export function assertValidPolicy(policy: SshHostKeyPolicy, label: string): void {
  if ('fingerprint' in policy && !/^SHA256:[A-Za-z0-9+/]{43}=?$/.test(policy.fingerprint)) {
    throw new Error(`host ${label}: hostKey.fingerprint must look like "SHA256:" followed by 43 base64 characters, as \`ssh-keygen -lf\` prints it`);
  }
}

/** Builds the host key check for one connection attempt (known_hosts is re-read each time). */
export async function hostKeyCheck(policy: SshHostKeyPolicy, target: HostKeyTarget): Promise<HostKeyCheck> {
  if ('fingerprint' in policy) return pinnedCheck(policy.fingerprint.replace(/=+$/, ''), target);
  const file = expandHome(policy.knownHostsFile ?? join(target.home, '.ssh', 'known_hosts'), target.home);
  let text = '';
  let missing = false;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    missing = true;
  }
  const entries = parseKnownHosts(text);
  const name = knownHostsName(target.address, target.port);
  let failure: HostKeyError | undefined;
  return {
    algorithms: [...new Set(knownKeyTypes(entries, name).flatMap(algorithmsFor))],
    failure: () => failure,
    verify: (key) => {
      const verdict = checkKnownHosts(entries, name, key);
      if (verdict.status === 'match') return true;
      failure = knownHostsFailure(verdict, key, { ...target, file, name, missing });
      return false;
    },
  };
}

function pinnedCheck(pinned: string, target: HostKeyTarget): HostKeyCheck {
  let failure: HostKeyError | undefined;
  return {
    algorithms: [],
    failure: () => failure,
    verify: (key) => {
      const offered = sshFingerprint(key);
      if (offered === pinned) return true;
      failure = new HostKeyError(
        `HOST KEY MISMATCH for ${target.label}: it offered ${keyTypeOf(key)} key ${offered}, but hosts.yaml pins ${pinned}. ` +
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

function knownHostsFailure(
  verdict: Exclude<KnownHostsVerdict, { status: 'match' }>,
  key: Buffer,
  where: HostKeyTarget & { file: string; name: string; missing: boolean },
): HostKeyError {
  const { label, file, name } = where;
  const offered = sshFingerprint(key);
  const type = keyTypeOf(key);
  const scan = `\`ssh-keyscan -p ${where.port} ${where.address} >> ${file}\``;
  if (verdict.status === 'unknown') {
    return new HostKeyError(
      `host key of ${label} is not known: it offered ${type} key ${offered}, and ${file} ${where.missing ? 'does not exist' : `has no entry for ${name}`}. ` +
        `If this fingerprint is the host's (check with \`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub\` on it), pin it in hosts.yaml with ` +
        `hostKey: { fingerprint: "${offered}" }, or add the host with ${scan}.`,
      'unknown',
      offered,
      type,
    );
  }
  if (verdict.status === 'revoked') {
    return new HostKeyError(`host key ${offered} of ${label} is marked @revoked in ${file} line ${verdict.entry.line}; refusing to connect.`, 'revoked', offered, type);
  }
  return new HostKeyError(
    `HOST KEY MISMATCH for ${label}: it offered ${type} key ${offered}, but ${file} line ${verdict.entry.line} lists another ${verdict.entry.keyType} key for ${name}. ` +
      `Someone may be intercepting the connection, or the host was reinstalled. If you checked the new key, remove the old entry ` +
      `(\`ssh-keygen -R '${name}' -f ${file}\`) and run ${scan}, or pin it in hosts.yaml with hostKey: { fingerprint: "${offered}" }.`,
    'changed',
    offered,
    type,
  );
}

/** Host key algorithms to offer for a known key type (rsa keys sign with rsa-sha2-*). */
function algorithmsFor(keyType: string): string[] {
  if (keyType === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  if (/^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521))$/.test(keyType)) return [keyType];
  return [];
}
