/**
 * The activities of a run, one proxy per retry class. A call overrides only its timeout and summary:
 * executeWithOptions deep-merges over the proxy's options, so a retry policy is never mixed across classes.
 */
import { ActivityCancellationType, proxyActivities, workflowInfo, type ActivityInterfaceFor, type ActivityOptions, type RetryPolicy } from '@temporalio/workflow';
import type { OrbitActivities } from '../activities';
import { NON_RETRYABLE_ERRORS } from '../common/errors';
import type { FleetActivities } from '../common/fleet-activities';
import { monitorQueueOf } from '../common/task-queues';

const BACKOFF: RetryPolicy = { initialInterval: '1s', backoffCoefficient: 2, nonRetryableErrorTypes: NON_RETRYABLE_ERRORS };

type Activities = ActivityInterfaceFor<OrbitActivities & FleetActivities>;

export interface RunActivities {
  /** stage, launch, stageResume, cancelRun, reportLocal: idempotent work that a few retries fix. */
  control: Activities;
  /** collect: two quick attempts; the workflow retries it durably with its own backoff and deadline. */
  collect: Activities;
  /** monitor: unlimited attempts, so a crash-looping worker never ends a run whose job still runs. On the run's own task queue (runs from before MONITOR_QUEUE). */
  monitor: Activities;
  /** The same, on the monitors' task queue (../common/task-queues.ts): their slots are not the transfers'. */
  monitorOwnQueue: Activities;
  /** probeOnce: one attempt; the workflow's recovery loop decides when to ask again. */
  probe: Activities;
}

export function runActivities(heartbeatTimeoutMs: number): RunActivities {
  const base: ActivityOptions = {
    startToCloseTimeout: '1h',
    heartbeatTimeout: heartbeatTimeoutMs,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  };
  return {
    control: proxyActivities<OrbitActivities & FleetActivities>({ ...base, retry: { ...BACKOFF, maximumInterval: '30s', maximumAttempts: 10 } }),
    collect: proxyActivities<OrbitActivities & FleetActivities>({ ...base, retry: { ...BACKOFF, maximumInterval: '30s', maximumAttempts: 2 } }),
    monitor: proxyActivities<OrbitActivities & FleetActivities>({ ...base, retry: { ...BACKOFF, maximumInterval: '10s' } }),
    monitorOwnQueue: proxyActivities<OrbitActivities & FleetActivities>({ ...base, taskQueue: monitorQueueOf(workflowInfo().taskQueue), retry: { ...BACKOFF, maximumInterval: '10s' } }),
    probe: proxyActivities<OrbitActivities & FleetActivities>({ ...base, retry: { ...BACKOFF, maximumAttempts: 1 } }),
  };
}
