/**
 * Everything one runBundle execution carries between its steps: the input and its tuning, the status
 * the `status` query shows, the activities, and the recovery clock shared by collection and probing.
 */
import { condition, log, upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import type { BundleAt, HostState, RunRef } from '../common/activities';
import { type JobEnding, type LeaseRecord, type OnHostLost, type Phase, type RunBundleInput, type RunStatus, type RunTuning, tuningOf } from '../common/run';
import { LeaseInbox } from './lease-inbox';
import { healthLine, sameHealth, type HealthFinding, type HealthReport, type OnUnhealthy } from '../common/health';
import { SA_HEALTH, SA_HOST, SA_HOST_STATE, SA_JOB_STATE, SA_PHASE } from '../common/search-attributes';
import { runActivities, type RunActivities } from './proxies';

export class RunContext {
  readonly tuning: Required<RunTuning>;
  readonly onHostLost: OnHostLost;
  readonly acts: RunActivities;
  readonly status: RunStatus;
  /** Why the run did not succeed, gathered as the steps go (the verdict adds its own). */
  readonly reasons: string[] = [];
  /** Hosts left to relaunch on, in order. */
  readonly relaunchTargets: string[];
  timedOut = false;
  /** A launch was asked for: from here on a job may run on the host, and an ending must stop it. */
  launchAttempted = false;
  /** The host never came back before the collection deadline. */
  lost = false;
  /** Epoch ms after which the job is stopped as timed out; set at the first launch, kept across relaunches. */
  runDeadlineMs: number | undefined;
  /** Epoch ms since when the host has not answered (the loss clock runs across monitor calls). */
  unreachableSince: number | undefined;
  /** Set by the retryCollection signal: try again now instead of at the next backoff. */
  retryNow = false;
  /** The run takes its host as a lease from the fleet (runs started before the fleet do not). */
  leased = false;
  /** Grants and refusals from the fleet. */
  readonly inbox = new LeaseInbox();
  /** Every lease taken, in order (shown as status.leases). */
  readonly leaseRecords: LeaseRecord[] = [];
  /** The monitor's health state, handed back to its next call (the rules' clocks run across calls). */
  health: { report?: HealthReport; lastOutputMs?: number } | undefined;
  /** Relaunches an unhealthy verdict caused. */
  healthRelaunches = 0;
  /** Set between an unhealthy verdict with policy relaunch and the relaunch: why. */
  pendingHealthRelaunch: string | undefined;
  private backoffMs: number;
  private recoveryDeadline: number | undefined;

  /** Where the first lease may go: the pinned host, or any (auto). */
  get pinned(): string[] | undefined {
    return this.input.host === 'auto' ? undefined : [this.input.host];
  }

  constructor(readonly input: RunBundleInput) {
    this.tuning = tuningOf(input);
    this.onHostLost = input.onHostLost ?? 'wait';
    this.acts = runActivities(this.tuning.heartbeatTimeoutMs);
    this.backoffMs = this.tuning.collectRetryMs.initial;
    this.relaunchTargets = (input.relaunchHosts ?? []).filter((h) => h !== input.host);
    this.status = {
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
  }

  /** The run and its current host, as every activity input starts. */
  ref(): RunRef {
    return { runId: this.input.runId, host: this.status.host };
  }

  /** Where the activities find the bundle: the store (runs since the store) or the worker's folder (runs before it). */
  bundleAt(): BundleAt {
    const { store, bundleDir, digest } = this.input;
    return store ? { store, digest } : { bundleDir };
  }

  setPhase(phase: Phase): void {
    this.status.phase = phase;
    this.status.phases.push({ phase, at: new Date().toISOString(), host: this.status.host });
    upsertSearchAttributes([{ key: SA_PHASE, value: phase }]);
    log.info(`run ${this.input.runId}: ${phase}`, { host: this.status.host });
  }

  setHostState(state: HostState): void {
    if (state === this.status.hostState) return;
    this.status.hostState = state;
    upsertSearchAttributes([{ key: SA_HOST_STATE, value: state }]);
    log.info(`host ${this.status.host}: ${state}`);
  }

  /** How the run's job ended when the run ended without it (status, result and the OrbitJobState search attribute). */
  recordJob(job: JobEnding): void {
    this.status.job = job;
    upsertSearchAttributes([{ key: SA_JOB_STATE, value: job.state }]);
    log.warn(`run ${this.input.runId}: ${job.detail}`);
  }

  /**
   * Records the health rules' verdict: the status query, the OrbitHealth search attribute (the Web UI
   * lists unhealthy runs by it) and the memo; a change of verdict is logged.
   */
  setHealth(report: HealthReport): void {
    const changed = !sameHealth(this.status.health, report);
    this.status.health = report;
    if (!changed) return;
    upsertSearchAttributes([{ key: SA_HEALTH, value: report.state }]);
    const top = report.findings[0];
    upsertMemo({ health: { state: report.state, ...(top ? { rule: top.rule, summary: top.summary, ...(top.evidence ? { evidence: top.evidence.text } : {}) } : {}), at: report.at } });
    (report.state === 'ok' ? log.info : log.warn)(`run ${this.input.runId}: health ${healthLine(report)}`);
  }

  /** What an unhealthy finding does: the run's own override (`--on-unhealthy`), else the rule's. */
  policyOf(f: HealthFinding): OnUnhealthy {
    return this.input.onUnhealthy ?? f.onUnhealthy;
  }

  moveTo(host: string): void {
    this.status.host = host;
    this.setHostState('reachable');
    upsertSearchAttributes([{ key: SA_HOST, value: host }]);
  }

  /** Waits with a durable timer (or the retryCollection signal) before the next attempt; false once the deadline passed. */
  async waitBeforeRetry(): Promise<boolean> {
    this.recoveryDeadline ??= Date.now() + this.tuning.collectDeadlineMs;
    const left = this.recoveryDeadline - Date.now();
    if (left <= 0) return false;
    this.retryNow = false;
    await condition(() => this.retryNow, Math.min(this.backoffMs, left));
    this.backoffMs = Math.min(this.backoffMs * 2, this.tuning.collectRetryMs.max);
    return true;
  }

  /** The host answered: the recovery clock and the backoff start again at the next trouble. */
  recovered(): void {
    this.setHostState('reachable');
    this.recoveryDeadline = undefined;
    this.backoffMs = this.tuning.collectRetryMs.initial;
  }
}
