import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkKnownHosts, keyTypeOf, knownHostsMatches, knownHostsName, parseKnownHosts, sshFingerprint } from '../../src/hosts/ssh';
import { tempDir } from '../helpers/bundles';

describe('known_hosts and fingerprints (no sshd)', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let keyA: string;
  let keyB: string;
  beforeAll(async () => {
    tmp = await tempDir();
    for (const k of ['a', 'b']) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(tmp.dir, k)]);
    keyA = (await readFile(join(tmp.dir, 'a.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
    keyB = (await readFile(join(tmp.dir, 'b.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
  });
  afterAll(async () => tmp.cleanup());

  const blob = (line: string) => Buffer.from(line.split(' ')[1] ?? '', 'base64');

  it('computes the fingerprint OpenSSH prints', () => {
    const printed = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(tmp.dir, 'a.pub')], { encoding: 'utf8' }).split(' ')[1];
    expect(sshFingerprint(blob(keyA))).toBe(printed);
    expect(keyTypeOf(blob(keyA))).toBe('ssh-ed25519');
    expect(keyTypeOf(Buffer.from([0, 0]))).toBe('unknown');
  });

  it('matches plain, port, pattern, negated and hashed entries', async () => {
    expect(knownHostsName('h.example.com', 22)).toBe('h.example.com');
    expect(knownHostsName('10.0.0.1', 2201)).toBe('[10.0.0.1]:2201');
    expect(knownHostsMatches('h.example.com,10.0.0.1', '10.0.0.1')).toBe(true);
    expect(knownHostsMatches('[10.0.0.1]:2201', '10.0.0.1')).toBe(false);
    expect(knownHostsMatches('*.Example.com,!bad.example.com', 'gpu.example.com')).toBe(true);
    expect(knownHostsMatches('*.example.com,!bad.example.com', 'bad.example.com')).toBe(false);
    expect(knownHostsMatches('gpu?.example.com', 'gpu1.example.com')).toBe(true);
    const file = join(tmp.dir, 'kh');
    await writeFile(file, `gpu.example.com ${keyA}\n[10.0.0.1]:2201 ${keyB}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
    const entries = parseKnownHosts(await readFile(file, 'utf8'));
    expect(entries.every((e) => e.hosts.startsWith('|1|'))).toBe(true);
    expect(checkKnownHosts(entries, 'gpu.example.com', blob(keyA))).toEqual({ status: 'match' });
    expect(checkKnownHosts(entries, '[10.0.0.1]:2201', blob(keyB))).toEqual({ status: 'match' });
    expect(checkKnownHosts(entries, '[10.0.0.1]:2201', blob(keyA))).toMatchObject({ status: 'changed', entry: { line: 2 } });
    expect(checkKnownHosts(entries, '10.0.0.1', blob(keyB))).toEqual({ status: 'unknown' });
  });

  it('honours @revoked, skips @cert-authority, comments and garbage', () => {
    const entries = parseKnownHosts(`# comment\n\ngarbage\n@cert-authority * ${keyA}\n@revoked * ${keyB}\nh ${keyB}\n`);
    expect(entries.map((e) => e.marker ?? 'plain')).toEqual(['@cert-authority', '@revoked', 'plain']);
    expect(checkKnownHosts(entries, 'h', blob(keyB))).toMatchObject({ status: 'revoked', entry: { line: 5 } });
    expect(checkKnownHosts(entries, 'other', blob(keyA))).toEqual({ status: 'unknown' });
  });
});
