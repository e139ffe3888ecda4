/** A sweep as a Temporal Schedule: its spec, policies and the runSweep action every firing takes. */
import type { ScheduleOptions, ScheduleOverlapPolicy, ScheduleSpec } from '@temporalio/client';
import { runSweep } from '../workflows/sweep';
import { SA_HOST, SA_JOB_KIND, SA_PHASE, SA_SWEEP } from '../common/search-attributes';
import { formatDuration } from './duration';
import { OVERLAP_POLICIES, type OverlapName, type SweepSchedule } from './schema';
import { firingInput, type SweepRecord } from './store';

/** Job kind of the fan-out workflows in search attributes (`orbit list --query 'OrbitJobKind = "sweep"'`). */
export const SWEEP_JOB_KIND = 'sweep';

export function overlapPolicy(name: OverlapName): ScheduleOverlapPolicy {
  return OVERLAP_POLICIES[name];
}

export function scheduleSpec(s: SweepSchedule): ScheduleSpec {
  return {
    ...(s.cron ? { cronExpressions: s.cron } : {}),
    ...(s.interval !== undefined ? { intervals: [{ every: s.interval, ...(s.offset !== undefined ? { offset: s.offset } : {}) }] } : {}),
    timezone: s.timezone,
    ...(s.jitter !== undefined ? { jitter: s.jitter } : {}),
  };
}

/** One line: `cron 0 3 * * * (Europe/Paris)` or `every 6h (offset 30m)`. */
export function describeSpec(s: SweepSchedule): string {
  if (s.cron) return `cron ${s.cron.join(' | ')} (${s.timezone})`;
  return `every ${formatDuration(s.interval ?? 0)}${s.offset ? ` (offset ${formatDuration(s.offset)})` : ''}`;
}

export function scheduleOptions(dir: string, record: SweepRecord, taskQueue: string): ScheduleOptions {
  const s = record.schedule;
  const cells = record.cells.length;
  return {
    scheduleId: record.name,
    spec: scheduleSpec(s),
    action: {
      type: 'startWorkflow',
      workflowType: runSweep,
      // The server appends the firing's time: <name>-2026-11-25T03:00:00Z.
      workflowId: record.name,
      taskQueue,
      args: [firingInput(dir, record)],
      typedSearchAttributes: [
        { key: SA_SWEEP, value: record.name },
        { key: SA_JOB_KIND, value: SWEEP_JOB_KIND },
        { key: SA_HOST, value: record.host },
        { key: SA_PHASE, value: 'pending' },
      ],
      memo: { sweep: record.name, sweepDir: dir, cells, axes: record.axes, taskType: record.taskType, source: record.source },
      staticSummary: `sweep ${record.name}: ${cells} ${record.taskType} cell${cells === 1 ? '' : 's'} on ${record.host}`,
      staticDetails: `axes ${record.axes.map((a) => `${a.name} (${a.values.join(', ')})`).join(' x ')}\nfolder ${dir}\nfrom ${record.source}`,
    },
    policies: {
      overlap: overlapPolicy(s.overlap),
      catchupWindow: s.catchupWindow,
      pauseOnFailure: s.pauseOnFailure,
    },
    memo: { orbitSweep: true, sweepDir: dir, cells, taskType: record.taskType, source: record.source },
    typedSearchAttributes: [{ key: SA_SWEEP, value: record.name }],
    state: {
      paused: s.paused,
      note: s.paused ? 'created paused by orbit sweep create' : (record.description ?? `orbit sweep ${record.name}`),
    },
  };
}
