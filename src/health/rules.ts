/**
 * The health rules, evaluated on facts read from a bundle's synced files: the same functions judge a
 * run live (the monitor, after each sync) and after the fact (`orbit diagnose`), so the two agree.
 * Pure: no I/O, no clock of its own (`facts.nowMs`). docs/health.md says what each rule means.
 */
import type { HealthRule, HealthSpec } from '../bundle/schema';
import { sortFindings, worstLevel, type HealthFinding, type HealthReport } from '../common/health';
import type { GpuSample, MetricPoint, MetricSeries } from '../diagnose/sources';
import { judgeGpuMemory } from './gpu-memory';

export interface HealthFacts {
  /** The time the rules judge at: now while the job runs, its exit after the fact. */
  nowMs: number;
  /** When output last grew (a new task-log byte or progress record); the job's start before any. Unknown: no-output is not judged. */
  lastOutputMs?: number;
  /** The last line of the task log, shown as no-output's evidence. */
  lastOutputLine?: { file: string; text: string };
  /** The progress series (job.json `progress`) as found under artifacts/, `file` relative to the bundle. */
  progress?: { file: string; series: MetricSeries[] };
  /** artifacts/nvml-audit.jsonl's samples, and the GPUs the run holds (all it shows when unknown). */
  gpu?: { samples: GpuSample[]; gpus?: number[] };
  /** Free space of the host's filesystem under the run folder, from the last probe. */
  disk?: { freeMb: number; totalMb?: number };
}

export const GPU_AUDIT_FILE = 'artifacts/nvml-audit.jsonl';

/** The rule's id in findings, status and the OrbitHealth search attribute: its name, with the metric for metric rules. */
export function ruleId(rule: HealthRule): string {
  return 'metric' in rule ? `${rule.rule}:${rule.metric}` : rule.rule;
}

/** Evaluates every rule of `spec` on `facts`: the worst level, and each rule that is not ok. */
export function evaluateHealth(spec: HealthSpec | undefined, facts: HealthFacts): HealthReport {
  const rules = spec?.rules ?? [];
  const findings = rules.flatMap((r) => {
    const f = judge(r, facts);
    return f ? [{ ...f, rule: ruleId(r), onUnhealthy: r.onUnhealthy }] : [];
  });
  return { state: worstLevel(findings.map((f) => f.level)), at: new Date(facts.nowMs).toISOString(), findings: sortFindings(findings), rules: rules.length };
}

type Judged = Omit<HealthFinding, 'rule' | 'onUnhealthy'> | undefined;

function judge(rule: HealthRule, facts: HealthFacts): Judged {
  switch (rule.rule) {
    case 'no-output':
      return noOutput(rule.minutes, facts);
    case 'not-finite':
      return notFinite(rule.metric, facts);
    case 'stalled':
      return stalledRule(rule, facts);
    case 'gpu-idle':
      return gpuIdle(rule.belowPct, rule.minutes, facts);
    case 'gpu-memory':
      return gpuMemory(rule.limitFraction, facts);
    case 'disk':
      return disk(rule.minFreeMb, facts);
  }
}

const minutesText = (ms: number) => `${(ms / 60_000).toFixed(ms < 600_000 ? 1 : 0)} min`;

function noOutput(minutes: number, facts: HealthFacts): Judged {
  if (facts.lastOutputMs === undefined) return undefined;
  const quiet = facts.nowMs - facts.lastOutputMs;
  const limit = minutes * 60_000;
  if (quiet < limit / 2) return undefined;
  return {
    level: quiet >= limit ? 'unhealthy' : 'warning',
    summary: `no new task-log line or progress record for ${minutesText(quiet)} (the rule allows ${minutes} min)`,
    ...(facts.lastOutputLine ? { evidence: { file: facts.lastOutputLine.file, text: facts.lastOutputLine.text } } : {}),
  };
}

function metricOf(facts: HealthFacts, key: string): MetricSeries | undefined {
  return facts.progress?.series.find((s) => s.key === key);
}

const pointEvidence = (facts: HealthFacts, p: MetricPoint) => ({ file: facts.progress!.file, line: p.line, text: p.raw });

function notFinite(key: string, facts: HealthFacts): Judged {
  const m = metricOf(facts, key);
  const bad = m?.points.find((p) => !Number.isFinite(p.value));
  if (!m || !bad) return undefined;
  const what = Number.isNaN(bad.value) ? 'NaN' : bad.value > 0 ? 'inf' : '-inf';
  const before = m.points[m.points.indexOf(bad) - 1];
  return {
    level: 'unhealthy',
    summary: `${m.label} became ${what} at step ${bad.step}${before ? ` (it was ${fmt(before.value)} at step ${before.step})` : ''}`,
    evidence: pointEvidence(facts, bad),
  };
}

/** The least-squares trend of `points` (value against step): how much it moved the right way over them, and that move's standard error. */
export interface Trend {
  points: number;
  fromStep: number;
  toStep: number;
  /** The fitted change from the first to the last step, signed so that positive is progress. */
  improvement: number;
  /** Its standard error, from the residual noise around the line. */
  stdError: number;
  /** improvement / stdError (Infinity for a noiseless improvement). */
  t: number;
  /** The residual standard deviation: the metric's noise. */
  noise: number;
}

export function trend(points: MetricPoint[], goal: 'min' | 'max'): Trend | undefined {
  const n = points.length;
  if (n < 3) return undefined;
  let mx = 0;
  let my = 0;
  for (const p of points) {
    mx += p.step;
    my += p.value;
  }
  mx /= n;
  my /= n;
  let sxx = 0;
  let sxy = 0;
  for (const p of points) {
    sxx += (p.step - mx) ** 2;
    sxy += (p.step - mx) * (p.value - my);
  }
  if (sxx === 0) return undefined;
  const slope = sxy / sxx;
  let sse = 0;
  for (const p of points) sse += (p.value - (my + slope * (p.step - mx))) ** 2;
  const noise = Math.sqrt(sse / (n - 2));
  const span = points[n - 1]!.step - points[0]!.step;
  const sign = goal === 'min' ? -1 : 1;
  const improvement = sign * slope * span;
  const stdError = (noise / Math.sqrt(sxx)) * Math.abs(span);
  const t = stdError > 0 ? improvement / stdError : improvement > 0 ? Infinity : improvement < 0 ? -Infinity : 0;
  return { points: n, fromStep: points[0]!.step, toStep: points[n - 1]!.step, improvement, stdError, t, noise };
}

/** Longest window the stall rule fits a line over (the last half of the points, capped). */
export const STALL_MAX_WINDOW = 10_000;

/** The stall rule's window over the first `n` finite points: the last half of them, at least `minPoints`. */
function stallWindow(points: MetricPoint[], n: number, minPoints: number): MetricPoint[] {
  const size = Math.min(n, Math.max(minPoints, Math.min(STALL_MAX_WINDOW, Math.floor(n / 2))));
  return points.slice(n - size, n);
}

/** The stall rule's settings when a bundle declares none for a metric (the schema's defaults). */
export const STALL_DEFAULTS = { minPoints: 40, patience: 100, tStat: 3 } as const;

export interface StallJudgement {
  level: 'warning' | 'unhealthy';
  trend: Trend;
  summary: string;
  last: MetricPoint;
}

/** The stall rule on one metric's points (finite ones only), or undefined when it is not stalled (or too short to judge). */
export function judgeStall(m: MetricSeries, rule: { minPoints: number; patience: number; tStat: number }): StallJudgement | undefined {
  const goal = m.goal ?? 'min';
  const finite = m.points.filter((p) => Number.isFinite(p.value));
  const n = finite.length;
  if (n < rule.minPoints) return undefined;
  const now = trend(stallWindow(finite, n, rule.minPoints), goal);
  if (!now || now.t >= rule.tStat) return undefined;
  const earlierN = n - rule.patience;
  const before = earlierN >= rule.minPoints ? trend(stallWindow(finite, earlierN, rule.minPoints), goal) : undefined;
  const persisted = before !== undefined && before.t < rule.tStat;
  const what =
    `${m.label} has not improved beyond its noise: over steps ${now.fromStep}-${now.toStep} (${now.points} points) its trend moved ` +
    `${fmt(now.improvement)} the right way, ${Number.isFinite(now.t) ? `${fmt(now.t)} standard errors (noise ${fmt(now.noise)}; the rule wants ${rule.tStat})` : 'without noise'}`;
  return {
    level: persisted ? 'unhealthy' : 'warning',
    trend: now,
    summary: persisted ? `${what}, and so it was ${rule.patience} points earlier` : what,
    last: finite[n - 1]!,
  };
}

function stalledRule(rule: Extract<HealthRule, { rule: 'stalled' }>, facts: HealthFacts): Judged {
  const m = metricOf(facts, rule.metric);
  if (!m) return undefined;
  const s = judgeStall(m, rule);
  return s ? { level: s.level, summary: s.summary, evidence: pointEvidence(facts, s.last) } : undefined;
}

function gpuIdle(belowPct: number, minutes: number, facts: HealthFacts): Judged {
  const samples = facts.gpu?.samples.filter((s) => Number.isFinite(s.ms) && s.utilPct !== null) ?? [];
  if (!samples.length) return undefined;
  const gpus = facts.gpu?.gpus?.length ? facts.gpu.gpus : [...new Set(samples.map((s) => s.gpu))];
  const end = Math.max(...samples.map((s) => s.ms));
  const idleFor = (windowMs: number): boolean =>
    gpus.every((g) => {
      const own = samples.filter((s) => s.gpu === g);
      // The samples must cover the window: one at (or before) its start, none busy within it.
      return own.some((s) => s.ms <= end - windowMs) && own.filter((s) => s.ms >= end - windowMs).every((s) => s.utilPct! < belowPct);
    });
  const limit = minutes * 60_000;
  const level = idleFor(limit) ? 'unhealthy' : idleFor(limit / 2) ? 'warning' : undefined;
  if (!level) return undefined;
  const windowMs = level === 'unhealthy' ? limit : limit / 2;
  const within = samples.filter((s) => gpus.includes(s.gpu) && s.ms >= end - windowMs);
  const peak = within.reduce((a, s) => (s.utilPct! > a.utilPct! ? s : a));
  return {
    level,
    summary: `GPU ${gpus.join(', ')} under ${belowPct}% utilization for ${minutesText(windowMs)} (at most ${peak.utilPct}%; the rule allows ${minutes} min)`,
    evidence: { file: GPU_AUDIT_FILE, line: peak.line, text: peak.raw },
  };
}

/**
 * GPU memory at the limit and climbing: judgeGpuMemory (./gpu-memory.ts, the function the diagnosis's
 * GPU layer uses for out-of-memory at the exit), judged at the newest sample; within 5 points of the
 * limit and climbing is a warning.
 */
function gpuMemory(limitFraction: number, facts: HealthFacts): Judged {
  const samples = facts.gpu?.samples.filter((s) => Number.isFinite(s.ms) && s.memUsedMib !== null && s.memTotalMib) ?? [];
  if (!samples.length) return undefined;
  const gpus = facts.gpu?.gpus?.length ? new Set(facts.gpu.gpus) : undefined;
  const verdicts = judgeGpuMemory(gpus ? samples.filter((s) => gpus.has(s.gpu)) : samples, undefined, { limitFraction });
  const share = (s: GpuSample) => s.memUsedMib! / s.memTotalMib!;
  const near = (v: (typeof verdicts)[number]) => v.climbing && v.peak !== undefined && v.peak === v.last && share(v.peak) >= limitFraction - 0.05;
  const worst = verdicts.find((v) => v.outOfMemory) ?? verdicts.find(near);
  if (!worst?.peak || !worst.low) return undefined;
  const pct = (x: GpuSample) => `${(share(x) * 100).toFixed(1)}%`;
  return {
    level: worst.outOfMemory ? 'unhealthy' : 'warning',
    summary: `GPU ${worst.gpu} memory climbed from ${pct(worst.low)} to ${pct(worst.peak)} of ${worst.peak.memTotalMib} MiB within ${((worst.peak.ms - worst.low.ms) / 1000).toFixed(0)}s (the limit is ${(limitFraction * 100).toFixed(0)}%)`,
    evidence: { file: GPU_AUDIT_FILE, line: worst.peak.line, text: worst.peak.raw },
  };
}

function disk(minFreeMb: number, facts: HealthFacts): Judged {
  const d = facts.disk;
  if (!d || !Number.isFinite(d.freeMb)) return undefined;
  if (d.freeMb >= minFreeMb * 2) return undefined;
  return {
    level: d.freeMb < minFreeMb ? 'unhealthy' : 'warning',
    summary: `the host's disk under the run folder has ${fmt(d.freeMb)} MB free${d.totalMb ? ` of ${fmt(d.totalMb)} MB` : ''} (the rule wants ${minFreeMb} MB)`,
  };
}

export function fmt(n: number): string {
  return Number.isFinite(n) ? Number(n.toPrecision(3)).toString() : String(n);
}
