/**
 * What the report's charts decide, computed outside the page so it is tested without a browser: a
 * metric's y axis (progressScale: log when its positive values span more than two decades and none
 * is <= 0), its non-finite points (nonFiniteMarks), and the marks of the process's end on the GPU
 * charts (runMarks, gpuTimeline: the exit, a stop, a cancel, a KILL, from runtime/runtime.log).
 */
import type { Diagnosis, GpuAudit, PrecheckEntry, RuntimeEvent } from '../diagnose';

/** How a non-finite value is named: the JSON-lines file's "nan", inf, -inf. */
export type NonFiniteKind = 'NaN' | 'inf' | '-inf';

/** One declared metric as charted: its steps, its values (NaN/inf as null, drawn as gaps, and marked: `marks`). */
export interface ChartedMetric {
  key: string;
  label: string;
  /** The chart's element id, e.g. "chart-loss". */
  id: string;
  steps: number[];
  values: (number | null)[];
  nonFinite: number;
  /** The non-finite points, in runs of one kind over consecutive points: each a marker per point, one label per run. */
  marks: NonFiniteRun[];
  scale: YScale;
}

/** Consecutive points of one non-finite kind. */
export interface NonFiniteRun {
  kind: NonFiniteKind;
  /** The steps of its points. */
  steps: number[];
  /** "NaN at step 40", "inf at steps 41-60 (20 points)". */
  label: string;
}

/** A progress chart's y axis. */
export interface YScale {
  kind: 'log' | 'linear';
  /** log only: the axis range, whole decades, and the labelled ticks in it (every decade, or every 2nd, 3rd... so at most 9). */
  min?: number;
  max?: number;
  ticks?: number[];
  labels?: string[];
  /** Said under the chart when it matters: why log, or why not although the values span decades. */
  note?: string;
}

/** A moment of the process's end, from runtime/runtime.log, drawn as a vertical line on the GPU charts. */
export interface RunMark {
  /** exit: the entrypoint exited 0; failed: it exited non-zero; kill: it died of a signal, or Orbit sent KILL; stop: a TERM was asked for (cancel, timeout, stop). */
  kind: 'exit' | 'failed' | 'kill' | 'stop';
  /** "exit 0", "killed (SIGKILL) 137", "terminated (SIGTERM) 143", "stop requested", "cancel requested (TERM)", "KILL after the grace". */
  label: string;
  time: string;
  ms: number;
  /** Its runtime.log line. */
  line: number;
}


export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? 'inf' : '-inf';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(3).replace(/\.?0+e/, 'e').replace('e+', 'e');
  return String(Number(v.toPrecision(4)));
}

/** A decade's tick label: 0.1, 1, 10, 100, 1000, else 1e4, 1e-2. */
export const decadeLabel = (e: number): string => (e >= -1 && e <= 3 ? String(Number(`1e${e}`)) : `1e${e}`);

/** More than this many decades between the smallest and the largest positive value makes a log axis. */
export const LOG_SCALE_DECADES = 2;

/**
 * A metric's y axis. Log when its finite values are all > 0 and span more than LOG_SCALE_DECADES
 * (a loss that diverges, 1 -> 1e12, or one that falls by orders of magnitude), whatever its goal;
 * linear otherwise. A metric that spans decades but has a value <= 0 stays linear, and the note says why.
 */
export function progressScale(values: readonly number[]): YScale {
  let lo = Infinity;
  let hi = -Infinity;
  let nonPositive = 0;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v <= 0) nonPositive++;
    else {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  if (!(hi / lo > 10 ** LOG_SCALE_DECADES)) return { kind: 'linear' };
  const decades = Math.log10(hi / lo);
  const span = `the positive values span ${formatNumber(lo)} to ${formatNumber(hi)} (${decades.toFixed(decades < 10 ? 1 : 0)} decades)`;
  if (nonPositive) {
    return { kind: 'linear', note: `linear y axis, not log: ${span}, but ${nonPositive} ${nonPositive === 1 ? 'value is' : 'values are'} <= 0, which a log axis cannot show` };
  }
  const e0 = Math.floor(Math.log10(lo) + 1e-9);
  const e1 = Math.ceil(Math.log10(hi) - 1e-9);
  const stride = Math.ceil((e1 - e0) / 8);
  const a = Math.floor(e0 / stride) * stride;
  const b = Math.ceil(e1 / stride) * stride;
  const exps: number[] = [];
  for (let e = a; e <= b; e += stride) exps.push(e);
  return {
    kind: 'log',
    min: Number(`1e${a}`),
    max: Number(`1e${b}`),
    ticks: exps.map((e) => Number(`1e${e}`)),
    labels: exps.map(decadeLabel),
    note: `log y axis: ${span}`,
  };
}

const kindOf = (v: number): NonFiniteKind => (Number.isNaN(v) ? 'NaN' : v > 0 ? 'inf' : '-inf');

/** The non-finite points of a series, in runs of one kind over consecutive points. */
export function nonFiniteMarks(points: readonly { step: number; value: number }[]): NonFiniteRun[] {
  const runs: { kind: NonFiniteKind; steps: number[] }[] = [];
  let last: { kind: NonFiniteKind; steps: number[] } | undefined;
  for (const p of points) {
    if (Number.isFinite(p.value)) {
      last = undefined;
      continue;
    }
    const kind = kindOf(p.value);
    if (last?.kind === kind) last.steps.push(p.step);
    else runs.push((last = { kind, steps: [p.step] }));
  }
  return runs.map((r) => ({
    ...r,
    label: r.steps.length === 1 ? `${r.kind} at step ${r.steps[0]}` : `${r.kind} at steps ${r.steps[0]}-${r.steps.at(-1)} (${r.steps.length} points)`,
  }));
}

const SIGNALS: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 6: 'SIGABRT', 9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 15: 'SIGTERM' };

/** The label of an `exit code=N` line: "exit 0", "exit 1", "killed (SIGKILL) 137", "terminated (SIGTERM) 143". */
function exitMark(code: string | undefined): Pick<RunMark, 'kind' | 'label'> {
  const n = code !== undefined && /^\d+$/.test(code) ? Number(code) : NaN;
  if (!(n > 128 && n < 160)) return { kind: n === 0 ? 'exit' : 'failed', label: `exit ${code ?? '?'}` };
  const sig = SIGNALS[n - 128] ?? `signal ${n - 128}`;
  return { kind: 'kill', label: `${sig === 'SIGTERM' ? 'terminated' : sig === 'SIGINT' ? 'interrupted' : 'killed'} (${sig}) ${n}` };
}

/**
 * The process's end as runtime/runtime.log tells it (see parseRuntimeLog), in time order: the
 * wrapper's `exit code=N` line (a code 129-159 is a signal: 137 "killed (SIGKILL)", 143
 * "terminated (SIGTERM)"), its `stop requested` line (a TERM reached it), Orbit's `cancel requested:
 * TERM` line (why=cancelled / timed-out), its `grace of Ns over: KILL` line and its `process P
 * vanished without an exit code` line (the time Orbit found it gone, not the time it died).
 */
export function runMarks(events: readonly RuntimeEvent[]): RunMark[] {
  const marks: RunMark[] = [];
  for (const e of events) {
    if (!Number.isFinite(e.ms)) continue;
    let mark: Pick<RunMark, 'kind' | 'label'> | undefined;
    if (e.phase === 'exit') mark = exitMark(e.fields['code']);
    else if (e.phase === 'stop') mark = { kind: 'stop', label: 'stop requested' };
    else if (e.phase === 'cancel') {
      const why = e.fields['why'];
      mark = { kind: 'stop', label: why === 'timed-out' ? 'timed out: TERM' : why === 'cancelled' ? 'cancel requested (TERM)' : 'TERM from Orbit' };
    } else if (e.phase === 'grace' && /KILL/.test(e.text)) mark = { kind: 'kill', label: 'KILL after the grace' };
    else if (e.phase === 'process' && /vanished/.test(e.text)) mark = { kind: 'kill', label: 'found gone, no exit code' };
    if (mark) marks.push({ ...mark, time: e.time, ms: e.ms, line: e.line });
  }
  return marks.sort((a, b) => a.ms - b.ms || a.line - b.line);
}

/**
 * The GPU charts' time range (seconds) and the marks on it: the samples' range, widened to take in
 * the marks that fall within a quarter of it (at least 30 s) outside; a mark further out is listed,
 * not drawn.
 */
export function gpuTimeline(sampleSeconds: readonly number[], marks: readonly RunMark[]): { range: [number, number]; marks: (RunMark & { x: number; drawn: boolean })[] } {
  let lo = Infinity;
  let hi = -Infinity;
  for (const t of sampleSeconds) {
    lo = Math.min(lo, t);
    hi = Math.max(hi, t);
  }
  const slack = Math.max(30, (hi - lo) / 4);
  const placed = marks.map((m) => ({ ...m, x: m.ms / 1000, drawn: m.ms / 1000 >= lo - slack && m.ms / 1000 <= hi + slack }));
  for (const m of placed) {
    if (!m.drawn) continue;
    lo = Math.min(lo, m.x);
    hi = Math.max(hi, m.x);
  }
  if (hi - lo < 1) {
    lo -= 0.5;
    hi += 0.5;
  }
  return { range: [lo, hi], marks: placed };
}

/** Everything the report shows, read from a bundle folder (collectReportData). */
export interface ReportData {
  bundleDir: string;
  title: string;
  job: Record<string, unknown> | undefined;
  runtime: RuntimeEvent[];
  /** job.json's progress series, read: undefined when none is declared; `file` undefined when none was found. */
  progress: { file: string | undefined; step: string; wanted: string; metrics: ChartedMetric[] } | undefined;
  gpu: GpuAudit;
  precheck: PrecheckEntry[];
  diagnosis: Diagnosis;
  generatedAt: string;
}
