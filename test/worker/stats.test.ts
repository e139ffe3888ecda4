/** `orbit worker`'s stats line (ORBIT_WORKER_STATS_SECONDS): its setting and what one line says. */
import { describe, expect, it } from 'vitest';
import { statsEverySeconds, statsLine } from '../../src/worker/main';

describe('the worker stats line', () => {
  it('is off unless ORBIT_WORKER_STATS_SECONDS asks for it, and refuses a bad value naming the setting', () => {
    expect(statsEverySeconds({})).toBeUndefined();
    expect(statsEverySeconds({ ORBIT_WORKER_STATS_SECONDS: '0' })).toBeUndefined();
    expect(statsEverySeconds({ ORBIT_WORKER_STATS_SECONDS: '30' })).toBe(30);
    expect(() => statsEverySeconds({ ORBIT_WORKER_STATS_SECONDS: 'often' })).toThrow(/ORBIT_WORKER_STATS_SECONDS=often must be a number of seconds/);
  });

  it('counts what was sent since the previous line, per host', () => {
    const before = { monitors: 10, otherActivities: 0, probeBatches: 40, sshCommands: { a: 100, b: 7 }, rssBytes: 0 };
    const now = { monitors: 12, otherActivities: 3, probeBatches: 52, sshCommands: { a: 112, b: 9 }, rssBytes: 300 * 1048576 };
    expect(statsLine(now, before, 60)).toBe('orbit worker: stats: 12 monitors, 3 other activities; last 60 s: 12 probe batches, 14 ssh commands (a 12, b 2); rss 300 MiB');
    expect(statsLine(now, undefined, 60)).toContain('52 probe batches, 121 ssh commands (a 112, b 9)');
  });
});
