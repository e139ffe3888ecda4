import { ERROR } from '../../common/errors';
import { MARK } from '../../common/protocol';

/** Thrown when a staged copy does not match the local bundle after upload. Retryable. */
export class StageVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StageVerificationError';
  }
}

/** Thrown when a host operation is asked of a run that was never staged there. Not retryable. */
export class RunNotStagedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = ERROR.runNotStaged;
  }
}

/** The error for a script that exited EXIT.notStaged, with the message it printed after MARK.error. */
export function notStagedError(stdout: string): RunNotStagedError {
  return new RunNotStagedError(stdout.replace(new RegExp(`^${MARK.error} `), '').trim());
}
