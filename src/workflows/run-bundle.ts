/**
 * runBundle: the one generic workflow. stage -> launch -> monitor -> collect, for any bundle on any
 * host. It knows bundles, hosts and phases, never what a task is. Deterministic: activities are
 * imported as types only, time comes from the workflow sandbox.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  isCancellation,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  log,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { OrbitActivities } from '../activities';
import { NON_RETRYABLE_ERRORS } from '../activities/errors';
import type { CollectSummary, LaunchResult, Probe, StageResult } from '../activities/types';
import { SA_PHASE } from './search-attributes';

export type Phase = 'pending' | 'staging' | 'launching' | 'running' | 'collecting' | 'succeeded' | 'failed' | 'cancelled' | 'timed-out';

export interface RunBundleInput {
  /** Unique id of this run; also the run's folder name on the host. */
  runId: string;
  /** Absolute path of the frozen bundle on the worker's machine. */
  bundleDir: string;
  /** The bundle's digest when the client froze it. */
  digest: string;
  /** Host name in the worker's registry. */
  host: string;
  /** The task log under artifacts/ (from job.json), tailed while monitoring. */
  logFile: string;
  timeouts: { stageSeconds: number; runSeconds: number; collectSeconds: number; killGraceSeconds: number };
  pollIntervalMs?: number;
  /** How often the monitor returns to the workflow with progress. */
  progressEveryMs?: number;
  heartbeatTimeoutMs?: number;
}

export interface RunStatus {
  runId: string;
  host: string;
  phase: Phase;
  phases: { phase: Phase; at: string }[];
  stage?: StageResult;
  launch?: LaunchResult;
  probe?: Probe;
  collect?: CollectSummary;
  exitCode: number | null;
  error?: string;
}

export interface RunResult {
  runId: string;
  status: 'succeeded' | 'failed' | 'timed-out';
  exitCode: number | null;
  host: string;
  bundleDir: string;
  digest: string;
  collect: CollectSummary;
  phases: RunStatus['phases'];
  reasons: string[];
}

export const statusQuery = defineQuery<RunStatus>('status');

export async function runBundle(input: RunBundleInput): Promise<RunResult> {
  const heartbeatTimeout = input.heartbeatTimeoutMs ?? 30_000;
  const pollIntervalMs = input.pollIntervalMs ?? 2_000;
  const progressEveryMs = input.progressEveryMs ?? 60_000;
  const base: ActivityOptions = {
    heartbeatTimeout,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 10, nonRetryableErrorTypes: NON_RETRYABLE_ERRORS },
  };
  const acts = proxyActivities<OrbitActivities>({ ...base, startToCloseTimeout: '1h' });
  const call = <K extends keyof OrbitActivities>(name: K, options: Partial<ActivityOptions>, ...args: Parameters<OrbitActivities[K]>) =>
    (acts[name] as unknown as { executeWithOptions: (o: ActivityOptions, a: unknown[]) => Promise<Awaited<ReturnType<OrbitActivities[K]>>> }).executeWithOptions(
      { ...base, ...options },
      args,
    );

  const status: RunStatus = { runId: input.runId, host: input.host, phase: 'pending', phases: [], exitCode: null };
  setHandler(statusQuery, () => status);
  const setPhase = (phase: Phase) => {
    status.phase = phase;
    status.phases.push({ phase, at: new Date().toISOString() });
    upsertSearchAttributes([{ key: SA_PHASE, value: phase }]);
    log.info(`run ${input.runId}: ${phase}`, { host: input.host });
  };
  const ref = { runId: input.runId, host: input.host };
  const collect = async () => {
    setPhase('collecting');
    status.collect = await call('collect', { startToCloseTimeout: `${input.timeouts.collectSeconds}s`, summary: `collect from ${input.host}` }, {
      ...ref,
      bundleDir: input.bundleDir,
    });
    return status.collect;
  };

  let timedOut = false;
  try {
    setPhase('staging');
    status.stage = await call('stage', { startToCloseTimeout: `${input.timeouts.stageSeconds}s`, summary: `stage on ${input.host}` }, {
      ...ref,
      bundleDir: input.bundleDir,
      digest: input.digest,
    });
    setPhase('launching');
    status.launch = await call('launch', { startToCloseTimeout: '2m', summary: `launch on ${input.host}` }, { ...ref, bundleDir: input.bundleDir });
    setPhase('running');
    const deadlineMs = Date.now() + input.timeouts.runSeconds * 1000;
    for (;;) {
      const m = await call(
        'monitor',
        { startToCloseTimeout: progressEveryMs + 5 * 60_000, summary: `monitor on ${input.host}` },
        { ...ref, logFile: input.logFile, pollIntervalMs, deadlineMs, killGraceSeconds: input.timeouts.killGraceSeconds, chunkMs: progressEveryMs },
      );
      status.probe = m.probe;
      if (m.finished) {
        timedOut = m.timedOut;
        status.exitCode = m.probe.exitCode;
        break;
      }
    }
    await collect();
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(async () => {
        await call('cancelRun', { startToCloseTimeout: '5m', summary: `stop on ${input.host}` }, { ...ref, killGraceSeconds: input.timeouts.killGraceSeconds });
        await collect().catch((e: unknown) => log.warn('collection after cancel failed', { error: String(e) }));
        setPhase('cancelled');
      });
      throw err;
    }
    status.error = err instanceof Error ? err.message : String(err);
    setPhase('failed');
    throw err;
  }

  const c = status.collect!;
  const reasons: string[] = [];
  if (timedOut) reasons.push(`stopped after its run timeout of ${input.timeouts.runSeconds}s`);
  if (status.probe?.state === 'vanished') reasons.push('the process disappeared without writing an exit code');
  else if (status.exitCode !== 0) reasons.push(`entrypoint exited with code ${status.exitCode}`);
  if (!c.manifestPresent) reasons.push('artifacts/manifest.json is missing');
  else if (!c.verified) reasons.push(`artifacts failed verification (${c.totals.missing} missing, ${c.totals.mismatched} mismatched, ${c.totals.refused} refused)`);
  if (c.missingOutputs.length) reasons.push(`expected outputs missing: ${c.missingOutputs.join(', ')}`);
  const result: RunResult = {
    runId: input.runId,
    status: reasons.length === 0 ? 'succeeded' : timedOut ? 'timed-out' : 'failed',
    exitCode: status.exitCode,
    host: input.host,
    bundleDir: input.bundleDir,
    digest: input.digest,
    collect: c,
    phases: status.phases,
    reasons,
  };
  if (result.status === 'succeeded') {
    setPhase('succeeded');
    return result;
  }
  status.error = reasons.join('; ');
  setPhase(result.status);
  throw ApplicationFailure.create({
    message: `run ${input.runId} ${result.status}: ${status.error}`,
    type: result.status === 'timed-out' ? 'RunTimedOut' : 'RunFailed',
    nonRetryable: true,
    details: [result],
  });
}
