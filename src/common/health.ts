/**
 * A run's health as the live monitor and `orbit diagnose` report it (docs/health.md): the worst level
 * of the rules' findings, each finding with its rule, its evidence line and what it does when
 * unhealthy. Node-free: shared by the worker, the workflow, the status query and the CLI.
 */
export const HEALTH_LEVELS = ['ok', 'warning', 'unhealthy'] as const;
export type HealthLevel = (typeof HEALTH_LEVELS)[number];
export type OnUnhealthy = 'warn' | 'stop' | 'relaunch';

export interface HealthFinding {
  /** The rule's id: its name, with the metric for metric rules, e.g. "no-output", "stalled:loss". */
  rule: string;
  level: Exclude<HealthLevel, 'ok'>;
  /** One line: what the rule sees. */
  summary: string;
  /** The line that shows it, e.g. the NaN record, with where it is (relative to the bundle). */
  evidence?: { file?: string; line?: number; text: string };
  /** What an unhealthy verdict of this rule does (job.json, unless the run overrides it). */
  onUnhealthy: OnUnhealthy;
}

export interface HealthReport {
  state: HealthLevel;
  /** When it was evaluated (ISO 8601). */
  at: string;
  /** The rules that are not ok, worst first. */
  findings: HealthFinding[];
  /** How many rules were evaluated. */
  rules: number;
}

const RANK: Record<HealthLevel, number> = { ok: 0, warning: 1, unhealthy: 2 };

export function worstLevel(levels: HealthLevel[]): HealthLevel {
  return levels.reduce<HealthLevel>((a, l) => (RANK[l] > RANK[a] ? l : a), 'ok');
}

export function sortFindings(findings: HealthFinding[]): HealthFinding[] {
  return [...findings].sort((a, b) => RANK[b.level] - RANK[a.level]);
}

/**
 * The same verdict as far as the workflow is concerned: the same state and the same unhealthy rules
 * (what the policies act on). A warning coming or going under an unchanged state, or a summary whose
 * numbers move with the data, is not news: the monitor's heartbeat carries it to `orbit status`.
 */
export function sameHealth(a: HealthReport | undefined, b: HealthReport | undefined): boolean {
  const key = (r: HealthReport | undefined) =>
    r
      ? `${r.state}|${r.findings
          .filter((f) => f.level === 'unhealthy')
          .map((f) => f.rule)
          .join(',')}`
      : '';
  return key(a) === key(b);
}

/** One line for people: `unhealthy: not-finite:loss: loss became NaN at step 12 (artifacts/logging.jsonl:12)`. */
export function healthLine(r: HealthReport): string {
  const top = r.findings[0];
  if (!top) return `ok (${r.rules} rule${r.rules === 1 ? '' : 's'})`;
  const where = top.evidence?.file ? ` (${top.evidence.file}${top.evidence.line ? `:${top.evidence.line}` : ''})` : '';
  const more = r.findings.length > 1 ? `; +${r.findings.length - 1} more` : '';
  return `${r.state}: ${top.rule}: ${top.summary}${where}${more}`;
}
