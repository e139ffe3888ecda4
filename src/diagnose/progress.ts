/**
 * The progress layer of the diagnosis: reads the series a bundle declares in job.json (`progress`)
 * and judges each declared metric the same way, whatever the task: a NaN or infinite value fails it,
 * and a metric with a goal ('min' or 'max') whose trend did not beat its noise stalled (the stall rule of
 * src/health/rules.ts, the one the live monitor runs).
 */
import { join } from 'node:path';
import type { HealthSpec, ProgressSpec } from '../bundle/schema';
import { ARTIFACTS_DIR, JOB_FILE } from '../common/layout';
import { declaredHealth } from '../health/facts';
import { judgeStall, STALL_DEFAULTS } from '../health/rules';
import type { LayerFinding } from './findings';
import { findSeries, type MetricPoint, type MetricSeries } from './sources';
import { ev } from './evidence';


/** Layer 4: the progress series job.json declares (`spec`), judged for NaN/inf and, for metrics with a goal, a stall. */
export async function progressLayer(dir: string, spec: ProgressSpec | undefined, health?: HealthSpec): Promise<LayerFinding> {
  const base = { layer: 'progress' as const };
  const rules = health ?? (await declaredHealth(dir));
  if (!spec) return { ...base, status: 'skipped', summary: `${JOB_FILE} declares no progress series`, evidence: [] };
  const found = await findSeries(join(dir, ARTIFACTS_DIR), spec);
  if (!found) return { ...base, status: 'skipped', summary: `no ${spec.file} under ${ARTIFACTS_DIR}/`, evidence: [] };
  const rel = `${ARTIFACTS_DIR}/${found.rel}`;
  const series = found.series.filter((m) => m.points.length);
  if (!series.length) return { ...base, status: 'skipped', summary: `${rel} has no ${spec.metrics.map((m) => m.label ?? m.key).join('/')} values`, evidence: [] };
  const pointEv = (p: MetricPoint) => ev(rel, { line: p.line, text: p.raw });
  for (const m of series) {
    const { points } = m;
    const bad = points.findIndex((p) => !Number.isFinite(p.value));
    if (bad < 0) continue;
    const p = points[bad]!;
    const prev = points[bad - 1];
    const what = Number.isNaN(p.value) ? 'NaN' : p.value > 0 ? 'inf' : '-inf';
    return {
      ...base,
      status: 'failed',
      kind: what === 'NaN' ? 'nan' : 'inf',
      summary: `${m.label} became ${what} at ${spec.step} ${p.step}${prev ? ` (it was ${fmt(prev.value)} at ${spec.step} ${prev.step})` : ''}; ${points.length - bad} of ${points.length} points are not finite`,
      evidence: [...(prev ? [pointEv(prev)] : []), pointEv(p)],
    };
  }
  // The stall rule of src/health/rules.ts, as the live monitor runs it: with the bundle's own settings for the metric when it declares them.
  const warnings: string[] = [];
  for (const m of series) {
    if (!m.goal) continue;
    const declared = rules?.rules.find((r) => r.rule === 'stalled' && r.metric === m.key);
    const stall = judgeStall(m, declared?.rule === 'stalled' ? declared : STALL_DEFAULTS);
    if (stall?.level === 'unhealthy') return { ...base, status: 'failed', kind: 'stalled', summary: stall.summary, evidence: [pointEv(stallStart(m, stall.trend.fromStep)), pointEv(stall.last)] };
    if (stall) warnings.push(`warning: ${stall.summary}`);
  }
  const head = series[0]!.points;
  const first = head[0]!;
  const last = head.at(-1)!;
  const moves = series.map((m) => `${m.label} ${fmt(m.points[0]!.value)} -> ${fmt(m.points.at(-1)!.value)}`).join(', ');
  return {
    ...base,
    status: 'ok',
    summary: [`${moves} over ${head.length} points (${spec.step} ${first.step} to ${last.step})`, ...warnings].join('; '),
    evidence: [pointEv(first), pointEv(last)],
  };
}

/** The first point at or after `step`: where the stall rule's window starts. */
function stallStart(m: MetricSeries, step: number): MetricPoint {
  return m.points.find((p) => p.step >= step) ?? m.points[0]!;
}

export function fmt(n: number): string {
  return Number.isFinite(n) ? Number(n.toPrecision(4)).toString() : String(n);
}
