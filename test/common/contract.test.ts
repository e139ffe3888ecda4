import { ApplicationFailure } from '@temporalio/common';
import { ChildWorkflowFailure, RetryState } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { RUN_FAILURE_TYPE, runFailure, runResultOf } from '../../src/common/failures';
import { isOutcome, RUN_TUNING_DEFAULTS, tuningOf, type RunBundleInput, type RunResult } from '../../src/common/run';
import { runInputFor, runLabelsFor, runSpecOf } from '../../src/common/run-input';
import { summary } from '../helpers/scripted-activities';

const result = (status: RunResult['status']): RunResult => ({
  runId: 'r1',
  status,
  exitCode: null,
  host: 'h',
  bundleDir: '/b',
  digest: 'd',
  collect: summary(),
  phases: [],
  relaunches: [],
  reasons: ['why'],
});

describe('run failures', () => {
  it('each unsuccessful verdict has its own failure type, read back with its result', () => {
    for (const status of ['failed', 'timed-out', 'lost'] as const) {
      const f = runFailure(result(status), `run r1 ${status}: why`);
      expect(f.type).toBe(RUN_FAILURE_TYPE[status]);
      expect(f.nonRetryable).toBe(true);
      expect(runResultOf(f)).toEqual({ status, result: result(status), message: `run r1 ${status}: why` });
    }
  });

  it('finds the verdict through the failures that wrap it', () => {
    const inner = runFailure(result('lost'), 'lost');
    const child = new ChildWorkflowFailure('default', { workflowId: 'w', runId: 'r' }, 'runBundle', RetryState.NON_RETRYABLE_FAILURE, inner);
    const outer = new Error('workflow failed', { cause: child });
    expect(runResultOf(outer)?.status).toBe('lost');
  });

  it('is undefined for other failures', () => {
    expect(runResultOf(ApplicationFailure.create({ message: 'x', type: 'ValidationError' }))).toBeUndefined();
    expect(runResultOf(new Error('x'))).toBeUndefined();
    expect(runResultOf('x')).toBeUndefined();
  });

  it('refuses to make a failure of a success', () => {
    expect(() => runFailure(result('succeeded'), 'x')).toThrow(/no failure/);
  });
});

describe('run phases', () => {
  it('knows the endings', () => {
    expect(['succeeded', 'failed', 'cancelled', 'timed-out', 'lost'].every(isOutcome)).toBe(true);
    expect(['pending', 'running', 'recovering', 'collecting'].some(isOutcome)).toBe(false);
  });
});

const base: RunBundleInput = { runId: 'r', bundleDir: '/b', digest: 'd', host: 'h', logFile: 'l', timeouts: { stageSeconds: 1, runSeconds: 2, collectSeconds: 3, killGraceSeconds: 4 } };

describe('tuningOf', () => {
  it('fills every default', () => {
    expect(tuningOf(base)).toEqual(RUN_TUNING_DEFAULTS);
  });

  it('takes tuning over the defaults', () => {
    expect(tuningOf({ ...base, tuning: { pollIntervalMs: 7 } }).pollIntervalMs).toBe(7);
  });

  it('reads the top-level fields of inputs recorded before tuning existed', () => {
    const legacy = { ...base, pollIntervalMs: 300, hostLostAfterMs: 2_000 } as RunBundleInput;
    const t = tuningOf(legacy);
    expect([t.pollIntervalMs, t.hostLostAfterMs, t.progressEveryMs]).toEqual([300, 2_000, RUN_TUNING_DEFAULTS.progressEveryMs]);
  });
});

describe('the run input builder', () => {
  const spec = runSpecOf({
    taskType: 'training',
    jobKind: 'train',
    entrypoint: { logFile: 'train.log' },
    resources: { gpus: 1, cpus: 2, memoryGb: 4 },
    timeouts: base.timeouts,
    sync: { intervalSeconds: 12 },
  });

  it('carries the job.json settings, sync interval and resources included, and the priority when set', () => {
    const input = runInputFor({ runId: 'r', bundleDir: '/b', digest: 'd' }, spec, { host: 'gpu-1' });
    expect(input).toEqual({
      runId: 'r',
      bundleDir: '/b',
      digest: 'd',
      host: 'gpu-1',
      logFile: 'train.log',
      timeouts: base.timeouts,
      syncIntervalMs: 12_000,
      resources: { gpus: 1, cpus: 2, memoryGb: 4 },
    });
    expect(runInputFor({ runId: 'r', bundleDir: '/b', digest: 'd' }, spec, { host: 'auto', priority: 5 })).toMatchObject({ host: 'auto', priority: 5 });
  });

  it('keeps relaunch hosts only for the relaunch policy', () => {
    expect(runInputFor(base, spec, { host: 'a', relaunchHosts: ['b'] }).relaunchHosts).toBeUndefined();
    expect(runInputFor(base, spec, { host: 'a', onHostLost: 'relaunch', relaunchHosts: ['b'] }).relaunchHosts).toEqual(['b']);
  });

  it('labels a run for the Web UI and orbit list', () => {
    const input = runInputFor(base, spec, { host: 'gpu-1' });
    const labels = runLabelsFor(input, spec, { name: 'cell-a', sweep: 'nightly', memo: { cell: 'a' }, details: ['axes x=1'] });
    expect(labels.typedSearchAttributes.map((p) => [p.key.name, p.value])).toEqual([
      ['OrbitTaskType', 'training'],
      ['OrbitJobKind', 'train'],
      ['OrbitHost', 'gpu-1'],
      ['OrbitPhase', 'pending'],
      ['OrbitBundleDigest', 'd'],
      ['OrbitSweep', 'nightly'],
    ]);
    expect(labels.memo).toEqual({ taskType: 'training', jobKind: 'train', host: 'gpu-1', bundleDir: '/b', digest: 'd', cell: 'a' });
    expect(labels.staticSummary).toBe('training cell-a on gpu-1');
    expect(labels.staticDetails).toBe('bundle /b\ndigest d\naxes x=1');
  });
});

describe('the fleet workflow, by name', () => {
  it('activities start it by the type name the workflow function has', async () => {
    const { fleet } = await import('../../src/workflows/fleet');
    const { FLEET_WORKFLOW_TYPE } = await import('../../src/common/fleet');
    expect(fleet.name).toBe(FLEET_WORKFLOW_TYPE);
  });
});
