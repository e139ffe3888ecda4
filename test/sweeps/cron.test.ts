import { describe, expect, it } from 'vitest';
import { cronProblem } from '../../src/sweeps/cron';
import { formatDuration, parseDuration } from '../../src/sweeps/duration';

describe('cron strings, checked as Temporal reads them', () => {
  it.each([
    '0 3 * * *',
    '*/15 * * * *',
    '0 12 * * MON-WED,FRI',
    '0 0 1 jan,jul *',
    '30 2 * * 7',
    '0 0 12 * * * 2030',
    '0 3 * * * 2027',
    '5/10 1-5/2,8 * * *',
    '@daily',
    '@hourly # every hour',
  ])('accepts %s', (expr) => {
    expect(cronProblem(expr)).toBeUndefined();
  });

  it.each([
    ['61 * * * *', /minute "61" is not in range 0-59/],
    ['0 24 * * *', /hour "24" is not in range 0-23/],
    ['0 0 0 * *', /day of month "0" is not in range 1-31/],
    ['0 0 * 13 *', /month "13" is not in range 1-12/],
    ['0 0 * * 8', /day of week "8" is not in range 0-7/],
    ['0 0 * * mon-sun', /the end must be in range .* not before the start/],
    ['* * *', /has 3 fields; write 5/],
    ['0 0 * * * * * *', /has 8 fields/],
    ['*/0 * * * *', /step after "\/" must be a whole number of at least 1/],
    ['1-2-3 * * * *', /more than one "-"/],
    ['0,,5 * * * *', /empty item/],
    ['@fortnightly', /is not one of @yearly/],
    ['@every 5m', /schedule.interval/],
    ['TZ=Europe/Paris 0 3 * * *', /schedule.timezone/],
    ['', /is empty/],
  ])('refuses %j', (expr, message) => {
    expect(cronProblem(expr)).toMatch(message);
  });
});

describe('durations', () => {
  it('parses units and combinations', () => {
    expect(parseDuration('90s')).toEqual({ ok: true, ms: 90_000 });
    expect(parseDuration('1h30m')).toEqual({ ok: true, ms: 5_400_000 });
    expect(parseDuration('2d')).toEqual({ ok: true, ms: 172_800_000 });
    expect(parseDuration('250ms')).toEqual({ ok: true, ms: 250 });
    expect(parseDuration('1.5h')).toEqual({ ok: true, ms: 5_400_000 });
  });
  it('refuses numbers without units and unknown units', () => {
    expect(parseDuration('60')).toMatchObject({ ok: false });
    expect(parseDuration('3 weeks')).toMatchObject({ ok: false });
    expect(parseDuration('')).toMatchObject({ ok: false });
  });
  it('formats back', () => {
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(1500)).toBe('1s500ms');
  });
});
