/**
 * The progress layer of the diagnosis: reads the series a bundle declares in job.json (`progress`)
 * and judges each declared metric the same way, whatever the task: a NaN or infinite value fails it,
 * and a metric with a goal ('min' or 'max') that barely moved the right way over the run stalled.
 */
import { join } from 'node:path';
import type { ProgressSpec } from '../bundle/schema';
import { ARTIFACTS_DIR, JOB_FILE } from '../common/layout';
import type { Evidence, LayerFinding } from './findings';
import { findSeries, type MetricPoint, type MetricSeries } from './sources';

/** A metric with a goal that improved by less than this share between the first and last tenth of the run stalled. */
export const STALL_IMPROVEMENT = 0.01;
/** Fewest points of a metric before a stall is judged. */
export const STALL_MIN_POINTS = 20;

const ev = (file: string, e: { line: number; text: string }): Evidence => ({ file, line: e.line, text: e.text });

/** Layer 4: the progress series job.json declares (`spec`), judged for NaN/inf and, for metrics with a goal, a stall. */
export async function progressLayer(dir: string, spec: ProgressSpec | undefined): Promise<LayerFinding> {
  const base = { layer: 'progress' as const };
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
      summary: `${m.label} became ${what} at ${spec.step} ${p.step}${prev ? ` (it was ${prev.value} at ${spec.step} ${prev.step})` : ''}; ${points.length - bad} of ${points.length} points are not finite`,
      evidence: [...(prev ? [pointEv(prev)] : []), pointEv(p)],
    };
  }
  for (const m of series) {
    const stall = stalled(m);
    if (stall) return { ...base, status: 'failed', kind: 'stalled', summary: stall, evidence: [pointEv(m.points[0]!), pointEv(m.points.at(-1)!)] };
  }
  const head = series[0]!.points;
  const first = head[0]!;
  const last = head.at(-1)!;
  const moves = series.map((m) => `${m.label} ${fmt(m.points[0]!.value)} -> ${fmt(m.points.at(-1)!.value)}`).join(', ');
  return {
    ...base,
    status: 'ok',
    summary: `${moves} over ${head.length} points (${spec.step} ${first.step} to ${last.step})`,
    evidence: [pointEv(first), pointEv(last)],
  };
}

/** Why a metric with a goal stalled (its first and last tenth less than STALL_IMPROVEMENT apart, the right way), or undefined. */
function stalled(m: MetricSeries): string | undefined {
  const { points, goal } = m;
  if (!goal || points.length < STALL_MIN_POINTS) return undefined;
  const k = Math.max(3, Math.floor(points.length / 10));
  const mean = (xs: MetricPoint[]) => xs.reduce((a, p) => a + p.value, 0) / xs.length;
  const head = mean(points.slice(0, k));
  const end = mean(points.slice(-k));
  const gain = (goal === 'min' ? head - end : end - head) / Math.max(Math.abs(head), 1e-12);
  if (gain >= STALL_IMPROVEMENT) return undefined;
  return `${m.label} stalled: mean of the first ${k} points ${fmt(head)}, of the last ${k} ${fmt(end)} (less than ${STALL_IMPROVEMENT * 100}% better)`;
}

export function fmt(n: number): string {
  return Number.isFinite(n) ? Number(n.toPrecision(4)).toString() : String(n);
}
