/** Error types that no retry can fix. Node-free: the workflow's retry policies list them too. */
export const NON_RETRYABLE_ERRORS = [
  'BundleTamperedError',
  'BundleStateError',
  'ValidationError',
  'UnknownHostError',
  'RunNotStagedError',
  'SecretMissingError',
  'HostKeyError',
  'SshAuthError',
];
