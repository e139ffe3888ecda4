/** src/worker/logging.ts: levels, and one line per SDK record. */
import { describe, expect, it } from 'vitest';
import type { LogEntry } from '@temporalio/worker';
import { coreLogFilter, expected, formatRecord, LogLevelError, parseLogLevel, sdkLogLevel } from '../../src/worker/logging';

describe('worker logging', () => {
  it('parses levels in any case, defaults to info, refuses others naming the source', () => {
    expect(parseLogLevel(undefined)).toBe('info');
    expect(parseLogLevel('')).toBe('info');
    expect(parseLogLevel('DEBUG')).toBe('debug');
    expect(() => parseLogLevel('loud', 'ORBIT_LOG_LEVEL')).toThrow(new LogLevelError('ORBIT_LOG_LEVEL loud is not one of trace, debug, info, warn, error'));
  });

  it('keeps SDK records from WARN up unless the level is debug or trace', () => {
    expect(['trace', 'debug', 'info', 'warn', 'error'].map((l) => sdkLogLevel(parseLogLevel(l)))).toEqual(['TRACE', 'DEBUG', 'WARN', 'WARN', 'ERROR']);
    // The core's HTTP/2 libraries log every frame at debug: only trace lets them through.
    expect(coreLogFilter('debug')).toEqual({ core: 'DEBUG', other: 'WARN' });
    expect(coreLogFilter('trace')).toEqual({ core: 'TRACE', other: 'TRACE' });
  });

  it('formats a record as one line: time, level, message, key=value', () => {
    const at = BigInt(Date.UTC(2025, 0, 2, 3, 4, 5, 6)) * 1_000_000n;
    const line = formatRecord({
      level: 'WARN',
      message: 'webpack said\nline two',
      timestampNanos: at,
      meta: { sdkComponent: 'worker', spanContexts: undefined, taskQueue: 'a queue', n: 3n, failure: new Error('boom\nstack'), nested: { a: [1, 2] } },
    });
    expect(line).toBe('2025-01-02T03:04:05.006Z WARN  webpack said\\nline two sdkComponent=worker taskQueue="a queue" n=3 failure="Error: boom\\nstack" nested={"a":[1,2]}');
    expect(line).not.toContain('\n');
  });
});

describe('expected SDK warnings', () => {
  const entry = (message: string, taskQueue: string): LogEntry => ({ level: 'WARN', message, meta: { sdkComponent: 'worker', taskQueue }, timestampNanos: 0n });
  it("drops only the monitors' worker's 'no workflows' warning, which is by design", () => {
    expect(expected(entry('No workflows registered, not polling for workflow tasks', 'orbit.monitors'))).toBe(true);
    expect(expected(entry('No workflows registered, not polling for workflow tasks', 'orbit'))).toBe(false);
    expect(expected(entry('Activity failed', 'orbit.monitors'))).toBe(false);
  });
});
