/** The SSH transport's permanent failures: both are listed in every retry policy's non-retryable errors. */
import { ERROR } from '../../common/errors';

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
    this.name = ERROR.hostKey;
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
    this.name = ERROR.sshAuth;
  }
}
