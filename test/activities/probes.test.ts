/**
 * HostProbes (src/activities/probes.ts): the monitors of a host share one probe per poll interval,
 * a new monitor gets its first answer within one interval, a host that does not answer fails every
 * subscriber at once, and the timer stops with the last subscriber.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Probe } from '../../src/common/activities';
import { HostProbes } from '../../src/activities/probes';
import type { ProbeTarget, ShellHost } from '../../src/hosts/shell-host';

const probe = (over: Partial<Probe> = {}): Probe => ({ state: 'running', pid: 1, exitCode: null, artifactBytes: 0, runtimeLogTail: [], taskLogTail: [], ...over });

/** A host whose batched probe is recorded: when it was sent and for which runs; it answers after `latencyMs`, or fails while `down`. */
function fakeHost(latencyMs = 5) {
  const calls: { at: number; runs: string[]; timeoutMs?: number }[] = [];
  const state = { down: false, step: 0 };
  const host = {
    name: 'fake',
    probeMany: async (targets: ProbeTarget[], options: { timeoutMs?: number } = {}) => {
      calls.push({ at: Date.now(), runs: targets.map((t) => t.runId), timeoutMs: options.timeoutMs });
      await new Promise((r) => setTimeout(r, latencyMs));
      if (state.down) throw new Error('connect ETIMEDOUT');
      state.step++;
      return new Map(targets.map((t) => [t.runId, probe({ taskLogTail: [`${t.runId} at ${state.step}`] })]));
    },
  };
  return { host: host as unknown as ShellHost, calls, state };
}

const subs: { close(): void }[] = [];
afterEach(() => subs.splice(0).forEach((s) => s.close()));

function subscribe(probes: HostProbes, runId: string, pollIntervalMs = 200, probeTimeoutMs = 1000) {
  const s = probes.subscribe({ runId, taskLogFile: 'job.log', pollIntervalMs, probeTimeoutMs });
  subs.push(s);
  return s;
}

describe('HostProbes', () => {
  it('probes 50 monitors of one host with one command per poll interval', async () => {
    const { host, calls } = fakeHost();
    const probes = new HostProbes(host);
    const monitors = Array.from({ length: 50 }, (_, i) => subscribe(probes, `run-${i}`));
    const t0 = Date.now();
    // Each monitor takes three rounds, as its loop would: no sleep of its own between them.
    const seen = await Promise.all(monitors.map(async (m) => [await m.next(), await m.next(), await m.next()]));
    const took = Date.now() - t0;
    expect(calls.length).toBe(3);
    for (const c of calls) expect(c.runs).toHaveLength(50);
    // One interval apart (the first gathers the monitors that start together).
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(195);
    expect(calls[2]!.at - calls[1]!.at).toBeGreaterThanOrEqual(195);
    expect(took).toBeLessThan(1500);
    // Every monitor got its own run's answer from each batch.
    seen.forEach((rounds, i) => expect(rounds.map((p) => p.taskLogTail[0])).toEqual([`run-${i} at 1`, `run-${i} at 2`, `run-${i} at 3`]));
  });

  it('gives a monitor that starts late its first answer within one interval, from the same batches', async () => {
    const { host, calls } = fakeHost();
    const probes = new HostProbes(host);
    const early = subscribe(probes, 'early', 300);
    await early.next();
    await new Promise((r) => setTimeout(r, 50));
    const late = subscribe(probes, 'late', 300);
    const t0 = Date.now();
    const [a, b] = await Promise.all([early.next(), late.next()]);
    expect(Date.now() - t0).toBeLessThan(300 + 100);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.runs.sort()).toEqual(['early', 'late']);
    expect(a.taskLogTail[0]).toBe('early at 2');
    expect(b.taskLogTail[0]).toBe('late at 2');
  });

  it('keeps the newest answer for a monitor that was busy (syncing) when its batch came', async () => {
    const { host, calls } = fakeHost();
    const probes = new HostProbes(host);
    const m = subscribe(probes, 'busy', 100);
    await m.next();
    await new Promise((r) => setTimeout(r, 350)); // three batches go by
    const t0 = Date.now();
    const p = await m.next();
    expect(Date.now() - t0).toBeLessThan(20);
    expect(p.taskLogTail[0]).toBe(`busy at ${calls.length}`);
  });

  it('fails every subscriber of a host that does not answer, in the same batch', async () => {
    const { host, state, calls } = fakeHost();
    const probes = new HostProbes(host);
    const monitors = Array.from({ length: 5 }, (_, i) => subscribe(probes, `run-${i}`, 100, 777));
    await Promise.all(monitors.map((m) => m.next()));
    state.down = true;
    const errors = await Promise.all(monitors.map((m) => m.next().then(() => undefined, (e: Error) => e.message)));
    expect(errors).toEqual(Array(5).fill('connect ETIMEDOUT'));
    expect(calls).toHaveLength(2);
    expect(calls[1]!.timeoutMs).toBe(777);
    expect(probes.counts).toEqual({ batches: 2, failed: 1 });
    state.down = false;
    expect((await monitors[0]!.next()).state).toBe('running');
  });

  it('rejects a waiting monitor when its activity is cancelled, and stops probing when the last one closes', async () => {
    const { host, calls } = fakeHost();
    const probes = new HostProbes(host);
    const m = subscribe(probes, 'one', 100);
    await m.next();
    const abort = new AbortController();
    const waiting = m.next(abort.signal);
    abort.abort(new Error('cancelled'));
    await expect(waiting).rejects.toThrow('cancelled');
    m.close();
    const n = calls.length;
    await new Promise((r) => setTimeout(r, 350));
    expect(calls.length).toBeLessThanOrEqual(n + 1);
    expect(probes.size).toBe(0);
  });

  it('probes a run watched by two attempts once, and the shortest interval of its subscribers sets the pace', async () => {
    const { host, calls } = fakeHost();
    const probes = new HostProbes(host);
    const slow = subscribe(probes, 'same', 1000);
    const fast = subscribe(probes, 'same', 100);
    await Promise.all([slow.next(), fast.next()]);
    await fast.next();
    expect(calls).toHaveLength(2);
    expect(calls[0]!.runs).toEqual(['same']);
    expect(calls[1]!.at - calls[0]!.at).toBeLessThan(500);
  });
});
