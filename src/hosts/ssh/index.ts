/** The SSH transport and what its users need of it: options, errors, identity and host-key types, known_hosts helpers. */
export { SshTransport } from './transport';
export type { SshTransportOptions } from './options';
export { HostKeyError, SshAuthError } from './errors';
export type { SshIdentity } from './auth';
export type { SshHostKeyPolicy } from './host-key';
export { checkKnownHosts, keyTypeOf, knownHostsMatches, knownHostsName, parseKnownHosts, sshFingerprint, type KnownHostsEntry, type KnownHostsVerdict } from './known-hosts';
