/** The tasks' health rules (docs/health.md): the ones every task can use, and a request's changes to a task's. */
import type { HealthRuleInput, HealthSpecInput } from '../bundle';
import type { RunOptions } from './common-schema';

/**
 * Health rules every task can use (docs/health.md): no output for `noOutputMinutes`, GPUs idle for
 * `gpuIdleMinutes` (only rules: a host without GPUs records none), GPU memory climbing to the limit,
 * and the host's disk nearly full. All warn; a task adds its metric rules.
 */
export function baseHealthRules(noOutputMinutes: number, gpuIdleMinutes?: number): HealthRuleInput[] {
  return [
    { rule: 'no-output', minutes: noOutputMinutes, onUnhealthy: 'warn' },
    ...(gpuIdleMinutes ? [{ rule: 'gpu-idle' as const, belowPct: 5, minutes: gpuIdleMinutes, onUnhealthy: 'warn' as const }, { rule: 'gpu-memory' as const, onUnhealthy: 'warn' as const }] : []),
    { rule: 'disk', minFreeMb: 512, onUnhealthy: 'warn' },
  ];
}

/** The id a rule is known by (its name, with the metric for metric rules): a request's rule replaces the task's of the same id. */
const healthRuleId = (r: { rule: string; metric?: string }) => (r.metric ? `${r.rule}:${r.metric}` : r.rule);

/**
 * The job's health rules: the task's, each replaced by the request's rule of the same id, then the
 * request's new ones; a rule without its own policy takes the request's `onUnhealthy`, else the task's.
 */
export function healthFor(task: HealthRuleInput[] | undefined, run: Pick<RunOptions, 'health'>): HealthSpecInput | undefined {
  const req = run.health;
  if (!task?.length && !req?.rules.length) return undefined;
  const byId = new Map<string, HealthRuleInput>();
  for (const r of task ?? []) byId.set(healthRuleId(r), req?.onUnhealthy ? { ...r, onUnhealthy: req.onUnhealthy } : r);
  for (const r of req?.rules ?? []) byId.set(healthRuleId(r), { ...r, onUnhealthy: r.onUnhealthy ?? req?.onUnhealthy ?? byId.get(healthRuleId(r))?.onUnhealthy ?? 'warn' } as HealthRuleInput);
  return { rules: [...byId.values()] };
}

