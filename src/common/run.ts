/**
 * A run as the workflow, the CLI and the plugins see it: its phases, how it can end, what starts it
 * (RunBundleInput), what a query shows (RunStatus) and what it returns (RunResult). Node-free.
 */
import type { CollectSummary, HostState, LaunchResult, Probe, StageResult } from './activities';
import type { LeaseGrant, LeaseResources } from './fleet';
import type { HealthReport, OnUnhealthy } from './health';

export type { HostState };

/** Phases a run passes through before it ends. */
export const ACTIVE_PHASES = ['pending', 'queued', 'staging', 'launching', 'running', 'recovering', 'collecting'] as const;
/** How a run can end: the last phase, the plugin's RunOutcome status and the CLI's verdict. */
export const OUTCOME_STATUSES = ['succeeded', 'failed', 'cancelled', 'timed-out', 'lost'] as const;

export type ActivePhase = (typeof ACTIVE_PHASES)[number];
export type OutcomeStatus = (typeof OUTCOME_STATUSES)[number];
export type Phase = ActivePhase | OutcomeStatus;

export function isOutcome(phase: string): phase is OutcomeStatus {
  return (OUTCOME_STATUSES as readonly string[]).includes(phase);
}

/**
 * What to do with a lost host. wait (default): keep trying it until the collection deadline, and go
 * on monitoring if the job still runs there; fail: stop the job when the host answers, collect, fail;
 * relaunch: start again on the next of relaunchHosts, from the newest synced unit folder.
 */
export const ON_HOST_LOST = ['wait', 'fail', 'relaunch'] as const;
export type OnHostLost = (typeof ON_HOST_LOST)[number];

/** Timing of monitoring and recovery. Every field has a default (RUN_TUNING_DEFAULTS); tests and sweeps set a few. */
export interface RunTuning {
  /** Between two probes of a running job. */
  pollIntervalMs?: number;
  /** How often the monitor returns to the workflow with progress (each return adds a few history events). */
  progressEveryMs?: number;
  /** Heartbeat timeout of every activity: how soon a dead worker's activity moves to another. */
  heartbeatTimeoutMs?: number;
  /** Longest one probe may take before the host counts as not answering. */
  probeTimeoutMs?: number;
  /** A host that does not answer for this long is lost. */
  hostLostAfterMs?: number;
  /** After loss or a failed collection, keep trying to collect for this long. */
  collectDeadlineMs?: number;
  /** First and longest wait between collection attempts. */
  collectRetryMs?: { initial: number; max: number };
}

export const RUN_TUNING_DEFAULTS: Required<RunTuning> = {
  pollIntervalMs: 5_000,
  // Live progress travels in the monitor's heartbeats; its returns only record it in history.
  progressEveryMs: 30 * 60_000,
  heartbeatTimeoutMs: 30_000,
  probeTimeoutMs: 20_000,
  hostLostAfterMs: 10 * 60_000,
  collectDeadlineMs: 6 * 3600_000,
  collectRetryMs: { initial: 10_000, max: 10 * 60_000 },
};

export interface RunTimeouts {
  stageSeconds: number;
  runSeconds: number;
  collectSeconds: number;
  killGraceSeconds: number;
}

export interface RunBundleInput {
  /** Unique id of this run; also the run's folder name on the host. */
  runId: string;
  /** The store that holds the bundle (its URL, no secret: each worker resolves its own credentials). */
  store?: string;
  /** Runs started before the store: the absolute path of the frozen bundle on the worker's machine. */
  bundleDir?: string;
  /** The bundle's digest when the client froze it: its name in the store. */
  digest: string;
  /** Host name in the worker's registry, or "auto": the fleet places the run when capacity frees. */
  host: string;
  /** What the run leases from the fleet before it launches (job.json resources); absent: 1 cpu and 1 GB. */
  resources?: LeaseResources;
  /** Queue priority: higher first, FIFO within a priority (default 0). */
  priority?: number;
  /** The task log under artifacts/ (from job.json), tailed while monitoring. */
  logFile: string;
  timeouts: RunTimeouts;
  /** Copy new files back this often while the job runs (job.json sync.intervalSeconds). 0 disables; default 30 s. */
  syncIntervalMs?: number;
  onHostLost?: OnHostLost;
  /** Most relaunches of one run (default 1). */
  maxRelaunches?: number;
  /** Hosts to relaunch on, in order of preference. */
  relaunchHosts?: string[];
  /** What an unhealthy verdict does, for every rule (`--on-unhealthy`); absent: each rule's own `onUnhealthy` in job.json. */
  onUnhealthy?: OnUnhealthy;
  tuning?: RunTuning;
}

/** Before `tuning` existed its fields stood at the top of the input; runs started then still carry them so. */
type LegacyTuning = RunTuning;

/** The input's tuning over the defaults (a run started before `tuning` existed has its fields at the top). */
export function tuningOf(input: RunBundleInput): Required<RunTuning> {
  const legacy = input as RunBundleInput & LegacyTuning;
  const pick = <K extends keyof RunTuning>(k: K): Required<RunTuning>[K] => (input.tuning?.[k] ?? legacy[k] ?? RUN_TUNING_DEFAULTS[k]) as Required<RunTuning>[K];
  return {
    pollIntervalMs: pick('pollIntervalMs'),
    progressEveryMs: pick('progressEveryMs'),
    heartbeatTimeoutMs: pick('heartbeatTimeoutMs'),
    probeTimeoutMs: pick('probeTimeoutMs'),
    hostLostAfterMs: pick('hostLostAfterMs'),
    collectDeadlineMs: pick('collectDeadlineMs'),
    collectRetryMs: pick('collectRetryMs'),
  };
}

export interface PhaseEntry {
  phase: Phase;
  at: string;
  host?: string;
}

export interface Relaunch {
  from: string;
  to: string;
  resumeFrom: string | null;
  at: string;
}

/** What the `status` query returns while the run goes on. */
export interface RunStatus {
  runId: string;
  host: string;
  phase: Phase;
  hostState: HostState;
  phases: PhaseEntry[];
  stage?: StageResult;
  launch?: LaunchResult;
  probe?: Probe;
  collect?: CollectSummary;
  synced: { files: number; bytes: number };
  relaunches: Relaunch[];
  collectAttempts: number;
  exitCode: number | null;
  error?: string;
  job?: JobEnding;
  /** While the run waits for a lease: since when, and for what (its position is the fleet's to tell: `orbit status`). */
  queued?: { since: string; requestId: string; resources: LeaseResources; priority: number; hosts?: string[] };
  /** The lease the run holds now. */
  lease?: LeaseGrant;
  /** The health rules' latest verdict (bundles that declare rules). */
  health?: HealthReport;
  /** Every lease the run held, with when it ended and what it cost. */
  leases?: LeaseRecord[];
}

/** A lease a run held: where, which GPUs, how long, and its cost when the host has a pricePerHour. */
export interface LeaseRecord {
  token: number;
  host: string;
  gpus: number[];
  queuedAt: string;
  grantedAt: string;
  releasedAt?: string;
  pricePerHour?: number;
  cost?: number;
}

/** The resources a run asks for when its input names none (runs started before resources travelled with the input). */
export const DEFAULT_LEASE: LeaseResources = { gpus: 0, cpus: 1, memoryGb: 1 };

/** How a run that reached its verdict ended (a cancelled run has no verdict: it ends with a cancellation). */
export type RunVerdictStatus = Exclude<OutcomeStatus, 'cancelled'>;

/** What runBundle returns on success, and carries as the failure's details otherwise (see ./failures.ts). */
export interface RunResult {
  runId: string;
  status: RunVerdictStatus;
  exitCode: number | null;
  host: string;
  store?: string;
  bundleDir?: string;
  digest: string;
  collect: CollectSummary;
  phases: PhaseEntry[];
  relaunches: Relaunch[];
  reasons: string[];
  /** Set when the run ended without its job ending by itself: whether Orbit stopped it, or could not (it may still run). */
  job?: JobEnding;
  /** The leases the run held (absent for runs started before the fleet). */
  leases?: LeaseRecord[];
  /** The sum of its leases' costs, when its hosts have a pricePerHour. */
  cost?: number;
  /** The health rules' last verdict while the job ran. */
  health?: HealthReport;
}

export interface JobEnding {
  state: 'stopped' | 'orphaned';
  detail: string;
}
