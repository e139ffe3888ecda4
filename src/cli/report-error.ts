/**
 * The CLI's one error handler: a user-facing failure is printed as one line (`orbit: ...`) with its
 * exit code (2 bad input, 3 Temporal); only a bug prints a stack (exit 1). Loaded only when a command
 * fails, so a command that succeeds never pays for the modules it names.
 */
import { formatProblem, ValidationError } from '../bundle';
import { temporalTarget, type TemporalTarget } from '../config';
import { InventoryNotFoundError } from '../hosts/inventory';
import { StoreError } from '../store/store';
import { CliError, temporalCliError } from './errors';

export function reportError(e: unknown, err: (s: string) => void = console.error, target: () => Pick<TemporalTarget, 'address' | 'namespace'> = temporalTarget): number {
  if (e instanceof CliError) {
    err(`orbit: ${e.message}`);
    return e.exitCode;
  }
  if (e instanceof ValidationError) {
    const [only] = e.problems;
    if (e.problems.length === 1 && only) err(`orbit: ${e.what} is invalid: ${formatProblem(only)}`);
    else err(`orbit: ${e.what} is invalid:\n${e.problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`);
    return 2;
  }
  if (e instanceof StoreError) {
    err(`orbit: ${e.message}`);
    return e.problem === 'unreachable' ? 3 : e.problem === 'missing' || e.problem === 'corrupt' ? 1 : 2;
  }
  if (e instanceof InventoryNotFoundError) {
    err(`orbit: ${e.message}`);
    return 2;
  }
  let where: Pick<TemporalTarget, 'address' | 'namespace'>;
  try {
    where = target();
  } catch {
    where = { address: 'the configured address', namespace: 'the configured namespace' };
  }
  const temporal = temporalCliError(e, where);
  if (temporal) {
    err(`orbit: ${temporal.message}`);
    return temporal.exitCode;
  }
  err(e instanceof Error ? (e.stack ?? e.message) : String(e));
  return 1;
}
