import { describe, expect, it } from 'vitest';
import { listQuery, listUiUrl } from '../../src/cli/list';
import { parseTime } from '../../src/cli/sweep';
import { cellText, formatCsv, formatTable } from '../../src/cli/table';
import { firingIdOf } from '../../src/workflows/sweep';
import { temporalTarget } from '../../src/config';

describe('orbit list queries', () => {
  it('ANDs one equality per filter, on Orbit search attributes', () => {
    expect(listQuery({})).toBe('');
    expect(listQuery({ task: 'collection', phase: 'succeeded', host: 'local', sweep: 'nightly' })).toBe(
      'OrbitTaskType = "collection" AND OrbitPhase = "succeeded" AND OrbitHost = "local" AND OrbitSweep = "nightly"',
    );
    expect(listQuery({ query: 'OrbitPhase = "failed" OR OrbitPhase = "lost"', host: 'gpu-1' })).toBe('(OrbitPhase = "failed" OR OrbitPhase = "lost") AND OrbitHost = "gpu-1"');
    expect(listQuery({ query: 'ExecutionStatus = "Running"' })).toBe('ExecutionStatus = "Running"');
    expect(listQuery({ task: 'a"b' })).toBe('OrbitTaskType = "a\\"b"');
  });

  it('links the Web UI list with the same query', () => {
    const target = temporalTarget({ ORBIT_TEMPORAL_PORT: '7233' });
    expect(listUiUrl(target, 'OrbitPhase = "failed"')).toBe('http://localhost:8233/namespaces/default/workflows?query=OrbitPhase%20%3D%20%22failed%22');
  });
});

describe('tables', () => {
  it('pads columns and shortens numbers', () => {
    expect(formatTable(['cell', 'mse'], [['a', 0.123456], ['long-name', 12], ['c', null]])).toBe(['CELL       MSE', 'a          0.1235', 'long-name  12', 'c          -'].join('\n'));
    expect(cellText(1e-7)).toBe('1e-7');
  });
  it('writes RFC 4180 CSV', () => {
    expect(formatCsv(['a', 'b'], [['x,y', 'say "hi"'], [1.23456789, null]])).toBe('a,b\n"x,y","say ""hi"""\n1.23456789,');
  });
});

describe('times', () => {
  it('firing ids are the scheduled time in UTC', () => {
    expect(firingIdOf(new Date('2026-11-25T03:04:05.678Z'))).toBe('20261125-030405');
  });
  it('backfill accepts ISO times, now and durations ago', () => {
    const now = new Date('2026-11-25T12:00:00Z');
    expect(parseTime('-2h', now).toISOString()).toBe('2026-11-25T10:00:00.000Z');
    expect(parseTime('now', now)).toBe(now);
    expect(parseTime('2026-11-24T00:00:00Z', now).toISOString()).toBe('2026-11-24T00:00:00.000Z');
    expect(() => parseTime('yesterday', now)).toThrow(/is not a time/);
  });
});
