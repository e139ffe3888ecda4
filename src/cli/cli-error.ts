/** The CLI's user-facing failure, in a module light enough for every command to load at start. */

/** Thrown for a user-facing failure: the message is printed as is and the process exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CliError';
  }
}

/** Exit code when Temporal cannot be reached or used (README: exit codes). */
export const EXIT_TEMPORAL = 3;
