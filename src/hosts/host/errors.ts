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

/** Whose side a failure that no retry can fix is on: the worker's disk, names or permissions, or the run folder on the host. */
export type FailureSide = 'local' | 'remote';

/**
 * A collection that cannot go on, for a reason no retry fixes (the worker's disk is full, its folder
 * is read-only, the run folder on the host lost its parts). What was written before stays; the
 * caller reports it with this reason. Never a sign that the host is unreachable.
 */
export class CollectionEndedError extends Error {
  constructor(
    readonly side: FailureSide,
    reason: string,
  ) {
    super(reason);
    this.name = 'CollectionEndedError';
  }
}
