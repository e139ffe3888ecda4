/**
 * The one builder of a run's workflow input and its labels (search attributes, memo, Web UI summary),
 * used by `orbit submit`, by sweep firings (inside the runSweep workflow) and by the sweep store.
 * Node-free, so workflow code can call it.
 */
import type { SearchAttributePair } from '@temporalio/common';
import type { LeaseResources } from './fleet';
import type { OnUnhealthy } from './health';
import type { OnHostLost, RunBundleInput, RunTimeouts, RunTuning } from './run';
import { SA_BUNDLE_DIGEST, SA_HOST, SA_JOB_KIND, SA_PHASE, SA_SWEEP, SA_TASK_TYPE } from './search-attributes';

/** What running a bundle needs from its job.json: the labels and the run's own settings. */
export interface RunSpec {
  taskType: string;
  jobKind: string;
  /** The task log under artifacts/ (entrypoint.logFile). */
  logFile: string;
  timeouts: RunTimeouts;
  /** sync.intervalSeconds; absent in sweeps created before it was recorded (the workflow's default then). */
  syncIntervalSeconds?: number;
  /** job.json resources: what the run leases; absent in sweeps created before leases (the fleet's default then). */
  resources?: LeaseResources;
  /** Some health rule of job.json relaunches when unhealthy: the run keeps its relaunch hosts. */
  relaunchWhenUnhealthy?: boolean;
}

/** The RunSpec of a bundle's JobSpec. */
export function runSpecOf(spec: {
  taskType: string;
  jobKind: string;
  entrypoint: { logFile: string };
  timeouts: RunTimeouts;
  sync: { intervalSeconds: number };
  resources: LeaseResources;
  health?: { rules: { onUnhealthy: OnUnhealthy }[] };
}): RunSpec {
  const { gpus, gpuType, cpus, memoryGb } = spec.resources;
  return {
    taskType: spec.taskType,
    jobKind: spec.jobKind,
    logFile: spec.entrypoint.logFile,
    timeouts: spec.timeouts,
    syncIntervalSeconds: spec.sync.intervalSeconds,
    resources: { gpus, cpus, memoryGb, ...(gpuType ? { gpuType } : {}) },
    ...(spec.health?.rules.some((r) => r.onUnhealthy === 'relaunch') ? { relaunchWhenUnhealthy: true } : {}),
  };
}

/** Where and how a run goes: its host ("auto": placed by the fleet), its priority and what to do when it is lost. */
export interface RunPlacement {
  host: string;
  priority?: number;
  onHostLost?: OnHostLost;
  maxRelaunches?: number;
  /** Other hosts that fit, for relaunch; kept only when onHostLost or onUnhealthy (the run's or a rule's) is relaunch. */
  relaunchHosts?: string[];
  /** What an unhealthy verdict does, for every rule of the run; absent: each rule's own. */
  onUnhealthy?: OnUnhealthy;
  tuning?: RunTuning;
}

/** `run` names its bundle by store and digest (since the store), or by a worker-side folder (before). */
export function runInputFor(run: { runId: string; store?: string; bundleDir?: string; digest: string }, spec: RunSpec, placement: RunPlacement): RunBundleInput {
  const input: RunBundleInput = {
    runId: run.runId,
    ...(run.store ? { store: run.store } : { bundleDir: run.bundleDir }),
    digest: run.digest,
    host: placement.host,
    logFile: spec.logFile,
    timeouts: spec.timeouts,
  };
  if (spec.syncIntervalSeconds !== undefined) input.syncIntervalMs = spec.syncIntervalSeconds * 1000;
  if (spec.resources) input.resources = spec.resources;
  if (placement.priority) input.priority = placement.priority;
  if (placement.onHostLost) input.onHostLost = placement.onHostLost;
  if (placement.maxRelaunches !== undefined) input.maxRelaunches = placement.maxRelaunches;
  if (placement.onUnhealthy) input.onUnhealthy = placement.onUnhealthy;
  const relaunches = placement.onHostLost === 'relaunch' || placement.onUnhealthy === 'relaunch' || (spec.relaunchWhenUnhealthy && !placement.onUnhealthy);
  if (relaunches && placement.relaunchHosts) input.relaunchHosts = placement.relaunchHosts;
  if (placement.tuning) input.tuning = placement.tuning;
  return input;
}

export interface RunLabels {
  typedSearchAttributes: SearchAttributePair[];
  memo: Record<string, unknown>;
  staticSummary: string;
  staticDetails: string;
}

/**
 * A run's search attributes (as the Web UI and `orbit list` filter them), its memo (`store` and
 * `digest`, or `bundleDir` before the store, are what the CLI reads back) and its Web UI summary. `name` is what the summary calls the run (a job id,
 * a sweep cell); `memo` and `details` add what the caller knows besides.
 */
export function runLabelsFor(
  input: RunBundleInput,
  spec: RunSpec,
  extra: { name: string; sweep?: string; memo?: Record<string, unknown>; details?: string[] },
): RunLabels {
  const typedSearchAttributes: SearchAttributePair[] = [
    { key: SA_TASK_TYPE, value: spec.taskType },
    { key: SA_JOB_KIND, value: spec.jobKind },
    { key: SA_HOST, value: input.host },
    { key: SA_PHASE, value: 'pending' },
    { key: SA_BUNDLE_DIGEST, value: input.digest },
  ];
  if (extra.sweep) typedSearchAttributes.push({ key: SA_SWEEP, value: extra.sweep });
  return {
    typedSearchAttributes,
    memo: {
      taskType: spec.taskType,
      jobKind: spec.jobKind,
      host: input.host,
      ...(input.store ? { store: input.store } : { bundleDir: input.bundleDir }),
      digest: input.digest,
      ...extra.memo,
    },
    staticSummary: `${spec.taskType} ${extra.name} on ${input.host}`,
    staticDetails: [input.store ? `store ${input.store}` : `bundle ${input.bundleDir}`, `digest ${input.digest}`, ...(extra.details ?? [])].join('\n'),
  };
}
