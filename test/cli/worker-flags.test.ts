/** `orbit worker`'s slot budgets: a bad value, from the flag or its variable, is one line naming it, exit 2, before anything connects. */
import { describe, expect, it } from 'vitest';
import { orbit } from '../helpers/orbit-cli';

describe('orbit worker --monitor-slots / --transfer-slots', () => {
  it('refuses a budget that is not a whole number of 1 or more, naming the flag or the variable', async () => {
    const env = { ...process.env, ORBIT_TEMPORAL_PORT: '1' };
    const flag = await orbit(['worker', '--monitor-slots', '0'], env, 60_000);
    expect(flag.code).toBe(2);
    expect(flag.stderr.trim().split('\n')).toEqual(["orbit: option '--monitor-slots <n>' argument '0' is invalid. must be a whole number, 1 or more; see orbit worker --help"]);
    const variable = await orbit(['worker'], { ...env, ORBIT_WORKER_TRANSFER_SLOTS: 'lots' }, 60_000);
    expect(variable.code).toBe(2);
    expect(variable.stderr).toContain("value 'lots' from env 'ORBIT_WORKER_TRANSFER_SLOTS' is invalid. must be a whole number, 1 or more");
  });

  it('shows both budgets and their defaults in its help', async () => {
    const help = await orbit(['worker', '--help'], process.env, 60_000);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--monitor-slots <n>[\s\S]*default: 2000, env: ORBIT_WORKER_MONITOR_SLOTS/);
    expect(help.stdout).toMatch(/--transfer-slots <n>[\s\S]*default: 32, env:\s+ORBIT_WORKER_TRANSFER_SLOTS/);
  });
});
