/**
 * runBundle: the one generic workflow. stage -> launch -> monitor -> collect, for any bundle on any
 * host, carried by Temporal's history through dead workers, a restarted server and vanished hosts.
 * It knows bundles, hosts and phases, never what a task is. Deterministic: activities are imported
 * as types only; time and timers come from the workflow sandbox.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  defineSignal,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { OrbitActivities } from '../activities';
import { NON_RETRYABLE_ERRORS } from '../activities/errors';
import type { CollectSummary, HostState, LaunchResult, Probe, StageResult } from '../activities/types';
import { SA_HOST, SA_HOST_STATE, SA_PHASE } from './search-attributes';

export type Phase =
  | 'pending'
  | 'staging'
  | 'launching'
  | 'running'
  | 'recovering'
  | 'collecting'
  | 'succeeded'
  | 'failed'
  | 'cancelled'
  | 'timed-out'
  | 'lost';

export type OnHostLost = 'fail' | 'wait' | 'relaunch';

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
  /** How often the monitor returns to the workflow with progress (each return adds a few history events; default 30 min). */
  progressEveryMs?: number;
  heartbeatTimeoutMs?: number;
  /** Copy new files back this often while the job runs (job.json sync.intervalSeconds). 0 disables. */
  syncIntervalMs?: number;
  probeTimeoutMs?: number;
  /** A host that does not answer for this long is lost (default 10 min). */
  hostLostAfterMs?: number;
  /** After loss or a failed collection, keep trying to collect for this long (default 6 h). */
  collectDeadlineMs?: number;
  /** First and longest wait between collection attempts (default 10 s, 10 min). */
  collectRetryMs?: { initial: number; max: number };
  /**
   * What to do with a lost host. wait (default): keep trying it until collectDeadlineMs, and go on
   * monitoring if the job still runs there; fail: stop the job when the host answers, collect, fail;
   * relaunch: start again on the next of relaunchHosts, from the newest synced unit folder.
   */
  onHostLost?: OnHostLost;
  maxRelaunches?: number;
  /** Hosts to relaunch on, in order of preference. */
  relaunchHosts?: string[];
}

export interface RunStatus {
  runId: string;
  host: string;
  phase: Phase;
  hostState: HostState;
  phases: { phase: Phase; at: string; host?: string }[];
  stage?: StageResult;
  launch?: LaunchResult;
  probe?: Probe;
  collect?: CollectSummary;
  synced: { files: number; bytes: number };
  relaunches: { from: string; to: string; resumeFrom: string | null; at: string }[];
  collectAttempts: number;
  exitCode: number | null;
  error?: string;
}

export type RunOutcomeStatus = 'succeeded' | 'failed' | 'timed-out' | 'lost';

export interface RunResult {
  runId: string;
  status: RunOutcomeStatus;
  exitCode: number | null;
  host: string;
  bundleDir: string;
  digest: string;
  collect: CollectSummary;
  phases: RunStatus['phases'];
  relaunches: RunStatus['relaunches'];
  reasons: string[];
}

export const statusQuery = defineQuery<RunStatus>('status');
/** Try collecting from a lost host now instead of at the next backoff. */
export const retryCollectionSignal = defineSignal('retryCollection');

export async function runBundle(input: RunBundleInput): Promise<RunResult> {
  const pollIntervalMs = input.pollIntervalMs ?? 5_000;
  // Live progress travels in the monitor's heartbeats (orbit status reads them); the monitor returns to the
  // workflow only on a state change, at the end, or every progressEveryMs, so history stays flat for most jobs.
  const progressEveryMs = input.progressEveryMs ?? 30 * 60_000;
  const probeTimeoutMs = input.probeTimeoutMs ?? 20_000;
  const hostLostAfterMs = input.hostLostAfterMs ?? 10 * 60_000;
  const collectDeadlineMs = input.collectDeadlineMs ?? 6 * 3600_000;
  const retry = input.collectRetryMs ?? { initial: 10_000, max: 10 * 60_000 };
  const onHostLost = input.onHostLost ?? 'wait';
  const base: ActivityOptions = {
    heartbeatTimeout: input.heartbeatTimeoutMs ?? 30_000,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 10, nonRetryableErrorTypes: NON_RETRYABLE_ERRORS },
  };
  const acts = proxyActivities<OrbitActivities>({ ...base, startToCloseTimeout: '1h' });
  const call = <K extends keyof OrbitActivities>(name: K, options: Partial<ActivityOptions>, ...args: Parameters<OrbitActivities[K]>) =>
    (acts[name] as unknown as { executeWithOptions: (o: ActivityOptions, a: unknown[]) => Promise<Awaited<ReturnType<OrbitActivities[K]>>> }).executeWithOptions(
      { ...base, ...options, retry: { ...(options.retry ?? base.retry), nonRetryableErrorTypes: NON_RETRYABLE_ERRORS } },
      args,
    );

  const status: RunStatus = {
    runId: input.runId,
    host: input.host,
    phase: 'pending',
    hostState: 'reachable',
    phases: [],
    synced: { files: 0, bytes: 0 },
    relaunches: [],
    collectAttempts: 0,
    exitCode: null,
  };
  let retryNow = false;
  setHandler(statusQuery, () => status);
  setHandler(retryCollectionSignal, () => void (retryNow = true));
  const setPhase = (phase: Phase) => {
    status.phase = phase;
    status.phases.push({ phase, at: new Date().toISOString(), host: status.host });
    upsertSearchAttributes([{ key: SA_PHASE, value: phase }]);
    log.info(`run ${input.runId}: ${phase}`, { host: status.host });
  };
  const setHostState = (state: HostState) => {
    if (state === status.hostState) return;
    status.hostState = state;
    upsertSearchAttributes([{ key: SA_HOST_STATE, value: state }]);
    log.info(`host ${status.host}: ${state}`);
  };
  const ref = () => ({ runId: input.runId, host: status.host });

  const stageAndLaunch = async (env?: Record<string, string>) => {
    setPhase('staging');
    status.stage = await call('stage', { startToCloseTimeout: `${input.timeouts.stageSeconds}s`, summary: `stage on ${status.host}` }, {
      ...ref(),
      bundleDir: input.bundleDir,
      digest: input.digest,
    });
    setPhase('launching');
    status.launch = await call('launch', { startToCloseTimeout: '2m', summary: `launch on ${status.host}` }, { ...ref(), bundleDir: input.bundleDir, env });
    setPhase('running');
  };

  let unreachableSince: number | undefined;
  /** Monitors until the run ends, times out or its host is lost. */
  const monitor = async (deadlineMs: number): Promise<'finished' | 'timed-out' | 'lost'> => {
    for (;;) {
      const m = await call(
        'monitor',
        {
          startToCloseTimeout: progressEveryMs + hostLostAfterMs + 10 * 60_000,
          summary: `monitor on ${status.host}`,
          retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s' }, // unlimited: a dead worker's monitor resumes on another
        },
        {
          ...ref(),
          bundleDir: input.bundleDir,
          logFile: input.logFile,
          pollIntervalMs,
          deadlineMs,
          killGraceSeconds: input.timeouts.killGraceSeconds,
          chunkMs: progressEveryMs,
          syncIntervalMs: input.syncIntervalMs ?? 30_000,
          hostLostAfterMs,
          probeTimeoutMs,
          hostState: status.hostState,
          unreachableSince,
        },
      );
      unreachableSince = m.unreachableSince;
      if (m.probe) status.probe = m.probe;
      status.synced.files += m.synced.files;
      status.synced.bytes += m.synced.bytes;
      setHostState(m.hostState);
      if (m.hostLost) return 'lost';
      if (m.finished) {
        status.exitCode = m.probe?.exitCode ?? null;
        return m.timedOut ? 'timed-out' : 'finished';
      }
    }
  };

  /** Waits with durable timers (or a retryCollection signal) before the next attempt; false once the deadline passed. */
  let backoff = retry.initial;
  let recoveryDeadline: number | undefined;
  const waitBeforeRetry = async (): Promise<boolean> => {
    recoveryDeadline ??= Date.now() + collectDeadlineMs;
    const left = recoveryDeadline - Date.now();
    if (left <= 0) return false;
    retryNow = false;
    await condition(() => retryNow, Math.min(backoff, left));
    backoff = Math.min(backoff * 2, retry.max);
    return true;
  };

  /** Collects, retrying until the host answers or the deadline passes; undefined when it never did. */
  const collect = async (): Promise<CollectSummary | undefined> => {
    setPhase('collecting');
    for (;;) {
      status.collectAttempts++;
      try {
        status.collect = await call(
          'collect',
          { startToCloseTimeout: `${input.timeouts.collectSeconds}s`, summary: `collect from ${status.host}`, retry: { initialInterval: '1s', maximumAttempts: 2 } },
          { ...ref(), bundleDir: input.bundleDir },
        );
        setHostState('reachable');
        recoveryDeadline = undefined;
        backoff = retry.initial;
        return status.collect;
      } catch (err) {
        if (isCancellation(err)) throw err;
        setHostState('unreachable');
        log.warn(`collection from ${status.host} failed; retrying until the deadline`, { error: String(err) });
        if (!(await waitBeforeRetry())) return undefined;
      }
    }
  };

  /** After loss: wait for the host to answer again. 'running' when the job still runs there (wait policy). */
  const recover = async (): Promise<'running' | 'ended' | 'stop' | 'gone'> => {
    setPhase('recovering');
    setHostState('lost');
    for (;;) {
      try {
        const p = await call('probeOnce', { startToCloseTimeout: probeTimeoutMs + 10_000, summary: `probe ${status.host}`, retry: { maximumAttempts: 1 } }, {
          ...ref(),
          logFile: input.logFile,
          probeTimeoutMs,
        });
        status.probe = p;
        setHostState('reachable');
        recoveryDeadline = undefined;
        backoff = retry.initial;
        if (p.state === 'running' || p.state === 'starting') return onHostLost === 'fail' ? 'stop' : 'running';
        status.exitCode = p.exitCode;
        return 'ended';
      } catch (err) {
        if (isCancellation(err)) throw err;
        if (!(await waitBeforeRetry())) return 'gone';
      }
    }
  };

  const relaunchTargets = [...(input.relaunchHosts ?? [])].filter((h) => h !== input.host);
  const canRelaunch = () => onHostLost === 'relaunch' && status.relaunches.length < (input.maxRelaunches ?? 1) && relaunchTargets.length > 0;

  const reasons: string[] = [];
  let timedOut = false;
  let lost = false;
  try {
    await stageAndLaunch();
    const deadlineMs = Date.now() + input.timeouts.runSeconds * 1000;
    for (;;) {
      const outcome = await monitor(deadlineMs);
      if (outcome === 'timed-out') timedOut = true;
      if (outcome !== 'lost') break;
      if (canRelaunch()) {
        const from = status.host;
        const to = relaunchTargets.shift()!;
        status.host = to;
        setHostState('reachable');
        upsertSearchAttributes([{ key: SA_HOST, value: to }]);
        const resume = await call('stageResume', { startToCloseTimeout: `${input.timeouts.stageSeconds}s`, summary: `stage resume state on ${to}` }, {
          ...ref(),
          bundleDir: input.bundleDir,
        });
        status.relaunches.push({ from, to, resumeFrom: resume.localPath, at: new Date().toISOString() });
        await stageAndLaunch(resume.remotePath ? { ORBIT_RESUME_FROM: resume.remotePath } : undefined);
        continue;
      }
      const r = await recover();
      if (r === 'running') {
        setPhase('running');
        continue;
      }
      if (r === 'gone') {
        lost = true;
        break;
      }
      if (r === 'stop') {
        await call('cancelRun', { startToCloseTimeout: '5m', summary: `stop on ${status.host}` }, { ...ref(), killGraceSeconds: input.timeouts.killGraceSeconds });
        reasons.push(`host ${status.host} was lost for more than ${hostLostAfterMs / 1000}s; the job was stopped when it answered again`);
      }
      break;
    }
    if (!lost) {
      const c = await collect();
      if (!c) lost = true;
    }
    if (lost) {
      status.collect = await call('reportLocal', { startToCloseTimeout: '10m', summary: 'report what was kept' }, {
        bundleDir: input.bundleDir,
        host: status.host,
        reason: `host ${status.host} did not answer before the collection deadline`,
      });
    }
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(async () => {
        await call('cancelRun', { startToCloseTimeout: '5m', summary: `stop on ${status.host}` }, { ...ref(), killGraceSeconds: input.timeouts.killGraceSeconds }).catch(
          (e: unknown) => log.warn('stopping after cancel failed', { error: String(e) }),
        );
        await call('collect', { startToCloseTimeout: `${input.timeouts.collectSeconds}s`, summary: `collect from ${status.host}`, retry: { initialInterval: '1s', maximumAttempts: 2 } }, {
          ...ref(),
          bundleDir: input.bundleDir,
        }).catch((e: unknown) => log.warn('collection after cancel failed', { error: String(e) }));
        setPhase('cancelled');
      });
      throw err;
    }
    status.error = err instanceof Error ? err.message : String(err);
    setPhase('failed');
    throw err;
  }

  const c = status.collect!;
  if (lost) reasons.push(`host ${status.host} was lost and did not come back within ${collectDeadlineMs / 1000}s; kept what was synced (${c.verifiedCount} verified files)`);
  else {
    if (timedOut) reasons.push(`stopped after its run timeout of ${input.timeouts.runSeconds}s`);
    if (status.probe?.state === 'vanished') reasons.push('the process disappeared without writing an exit code');
    else if (status.exitCode !== 0) reasons.push(`entrypoint exited with code ${status.exitCode}`);
    if (!c.manifestPresent) reasons.push('artifacts/manifest.json is missing');
    else if (!c.verified) reasons.push(`artifacts failed verification (${c.totals.missing} missing, ${c.totals.mismatched} mismatched, ${c.totals.refused} refused)`);
    if (c.missingOutputs.length) reasons.push(`expected outputs missing: ${c.missingOutputs.join(', ')}`);
  }
  const result: RunResult = {
    runId: input.runId,
    status: lost ? 'lost' : reasons.length === 0 ? 'succeeded' : timedOut ? 'timed-out' : 'failed',
    exitCode: status.exitCode,
    host: status.host,
    bundleDir: input.bundleDir,
    digest: input.digest,
    collect: c,
    phases: status.phases,
    relaunches: status.relaunches,
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
    type: { 'timed-out': 'RunTimedOut', lost: 'RunLost', failed: 'RunFailed' }[result.status],
    nonRetryable: true,
    details: [result],
  });
}
