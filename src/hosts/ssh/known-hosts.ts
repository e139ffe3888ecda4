/** OpenSSH's known_hosts format: parsing, host name matching (plain, patterns, hashed) and key checks. */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

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

/** The key types known_hosts lists for `name` (plain entries only). */
export function knownKeyTypes(entries: KnownHostsEntry[], name: string): string[] {
  return entries.filter((e) => !e.marker && knownHostsMatches(e.hosts, name)).map((e) => e.keyType);
}
