import { describe, expect, it } from 'vitest';
import { HOST_LOST_POLICIES } from '../../src/workflows/host-lost';
import type { RunContext } from '../../src/workflows/run-context';
import { verdictOf, type VerdictFacts } from '../../src/workflows/verdict';
import { summary } from '../helpers/scripted-activities';

const facts = (over: Partial<VerdictFacts> = {}): VerdictFacts => ({
  lost: false,
  timedOut: false,
  exitCode: 0,
  probeState: 'exited',
  collect: summary(),
  host: 'gpu-1',
  runSeconds: 600,
  collectDeadlineMs: 21_600_000,
  earlier: [],
  ...over,
});

describe('verdictOf', () => {
  it('succeeds only with exit 0, a verified manifest and every expected output', () => {
    expect(verdictOf(facts())).toEqual({ status: 'succeeded', reasons: [] });
  });

  it('fails on a non-zero exit, naming the code', () => {
    expect(verdictOf(facts({ exitCode: 7 }))).toEqual({ status: 'failed', reasons: ['entrypoint exited with code 7'] });
  });

  it('says the process vanished instead of giving a missing exit code', () => {
    expect(verdictOf(facts({ exitCode: null, probeState: 'vanished' })).reasons).toEqual(['the process disappeared without writing an exit code']);
  });

  it('is timed-out when stopped at the run timeout, whatever else went wrong', () => {
    const v = verdictOf(facts({ timedOut: true, exitCode: 143 }));
    expect(v.status).toBe('timed-out');
    expect(v.reasons).toEqual(['stopped after its run timeout of 600s', 'entrypoint exited with code 143']);
  });

  it('fails on a missing manifest, failed verification and missing outputs, each said', () => {
    expect(verdictOf(facts({ collect: summary({ manifestPresent: false }) })).reasons).toEqual(['artifacts/manifest.json is missing']);
    const bad = summary({ verified: false, totals: { missing: 2, mismatched: 1, refused: 0 }, missingOutputs: ['model.pt', 'eval.json'] });
    expect(verdictOf(facts({ collect: bad }))).toEqual({
      status: 'failed',
      reasons: ['artifacts failed verification (2 missing, 1 mismatched, 0 refused)', 'expected outputs missing: model.pt, eval.json'],
    });
  });

  it('is lost when the host never came back, keeping earlier reasons first and ignoring the exit code', () => {
    const v = verdictOf(facts({ lost: true, exitCode: null, earlier: ['stopped after loss'], collect: summary({ verifiedCount: 4 }), collectDeadlineMs: 3_600_000 }));
    expect(v).toEqual({ status: 'lost', reasons: ['stopped after loss', 'host gpu-1 was lost and did not come back within 3600s; kept what was synced (4 verified files)'] });
  });

  it('does not change the reasons it was given', () => {
    const earlier = ['x'];
    verdictOf(facts({ earlier, exitCode: 1 }));
    expect(earlier).toEqual(['x']);
  });
});

describe('host-lost policies', () => {
  const ctx = (relaunches: number, targets: string[], maxRelaunches?: number) =>
    ({ status: { relaunches: Array.from({ length: relaunches }) }, relaunchTargets: targets, input: { maxRelaunches } }) as unknown as RunContext;

  it('wait recovers and monitors a job that still runs', () => {
    expect(HOST_LOST_POLICIES.wait.onLost(ctx(0, ['b']))).toBe('recover');
    expect(HOST_LOST_POLICIES.wait.onStillRunning).toBe('monitor');
  });

  it('fail recovers, then stops a job that still runs', () => {
    expect(HOST_LOST_POLICIES.fail.onLost(ctx(0, ['b']))).toBe('recover');
    expect(HOST_LOST_POLICIES.fail.onStillRunning).toBe('stop');
  });

  it('relaunch moves while relaunches and hosts are left, then waits', () => {
    expect(HOST_LOST_POLICIES.relaunch.onLost(ctx(0, ['b']))).toBe('relaunch');
    expect(HOST_LOST_POLICIES.relaunch.onLost(ctx(1, ['c']))).toBe('recover'); // default maxRelaunches 1
    expect(HOST_LOST_POLICIES.relaunch.onLost(ctx(1, ['c'], 2))).toBe('relaunch');
    expect(HOST_LOST_POLICIES.relaunch.onLost(ctx(0, []))).toBe('recover');
    expect(HOST_LOST_POLICIES.relaunch.onStillRunning).toBe('monitor');
  });
});
