/** Error names shared by the code that throws them and the retry policies that must not retry them. Node-free, dependency-free. */
/** Error names (Error.name, ApplicationFailure type) that no retry can fix: every retry policy lists them. */
export const ERROR = {
  bundleTampered: 'BundleTamperedError',
  bundleState: 'BundleStateError',
  unsafeEntry: 'UnsafeEntryError',
  validation: 'ValidationError',
  unknownHost: 'UnknownHostError',
  runNotStaged: 'RunNotStagedError',
  secretMissing: 'SecretMissingError',
  hostKey: 'HostKeyError',
  sshAuth: 'SshAuthError',
} as const;

export const NON_RETRYABLE_ERRORS: string[] = Object.values(ERROR);
