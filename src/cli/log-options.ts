/** The flags of `orbit logs` as text (`--since 10m`, `--tail 20`, `--node 0`), each refused in one line naming it (exit 2). */
import { parseDuration } from '../sweeps/duration';
import { CliError } from './errors';

const ISO_TIME = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** `--since`: a duration back from `now` (`90s`, `10m`, `1h30m`, `2d`) or an ISO time (`2026-01-02T10:00:00Z`). */
export function parseSince(text: string, now = new Date()): Date {
  const s = text.trim();
  if (ISO_TIME.test(s)) {
    const ms = Date.parse(s);
    if (Number.isNaN(ms)) throw new CliError(`--since "${text}" is not a valid time`, 2);
    if (ms > now.getTime()) throw new CliError(`--since ${text} is in the future`, 2);
    return new Date(ms);
  }
  const d = parseDuration(s);
  if (!d.ok) throw new CliError(`--since ${d.message}, or an ISO time such as 2026-01-02T10:00:00Z`, 2);
  return new Date(now.getTime() - d.ms);
}

/** A whole number, 0 or more, for `flag`. */
export function parseCount(flag: string, value: string | number): number {
  const n = typeof value === 'number' ? value : /^\s*\d{1,9}\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw new CliError(`${flag} must be a whole number, 0 or more (got "${value}")`, 2);
  return n;
}
