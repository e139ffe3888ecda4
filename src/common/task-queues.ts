/**
 * The task queues of one Orbit deployment. Workflows and the short activities (stage, launch,
 * collect, probes, stops, the fleet's) use the queue the run was started on; monitors, which hold
 * a slot for a job's whole duration, use a queue of their own beside it, so the two budgets are
 * separate (`orbit worker --monitor-slots`, `--transfer-slots`) and long jobs never starve a stage
 * or a collection of slots, nor the other way round. Node-free: the workflow derives the name.
 */
export const MONITOR_QUEUE_SUFFIX = '.monitors';

/** The queue the monitors of runs started on `taskQueue` are scheduled on. */
export function monitorQueueOf(taskQueue: string): string {
  return `${taskQueue}${MONITOR_QUEUE_SUFFIX}`;
}

/**
 * The two budgets' defaults, sized for a 2-core machine. A transfer (stage, collect) keeps a core
 * busy with hashing, tar and the cipher, and a launch waits a few seconds for the job to show its
 * pid: 32 at once keep both cores and the hosts' sshd busy. A monitor mostly waits for its host's
 * batched probe (a fraction of a MiB and a few ms of CPU per poll each, docs/benchmarks.md figure 4),
 * so 2000 fit in a worker of 1 GiB.
 */
export const DEFAULT_TRANSFER_SLOTS = 32;
export const DEFAULT_MONITOR_SLOTS = 2000;
