/**
 * The run report: one static HTML file, `<bundle>/runtime/report.html`, that opens offline. It shows
 * the phase timeline (runtime/runtime.log), a chart per metric of the progress series job.json
 * declares (`progress`, e.g. loss by step from the longest artifacts/** /logging.jsonl),
 * GPU memory and utilization over time (artifacts/nvml-audit.jsonl), the provenance table
 * (artifacts/runtime-precheck.log) and the diagnosis. Charts are drawn by uPlot, whose minified
 * script and stylesheet are inlined. runtime/ is outside the bundle digest and the artifact
 * manifest, so writing the report changes neither.
 *
 * What the charts decide is computed here, not in the page, so it can be tested without a browser:
 * a metric's y axis (progressScale: log when its positive values span more than two decades and none
 * is <= 0), its non-finite points (nonFiniteMarks: a marker at the top edge, or the bottom for -inf,
 * labelled "NaN at step N"), and the marks of the process's end on the GPU charts (runMarks: the
 * exit, a stop, a cancel, a KILL, from runtime/runtime.log).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ARTIFACTS_DIR, GPU_AUDIT_LOG, JOB_FILE, PRECHECK_LOG, REPORT_FILE, RUNTIME_LOG } from '../common/layout';
import {
  declaredProgress,
  diagnoseBundle,
  findSeries,
  parseGpuAudit,
  parsePrecheckLog,
  parseRuntimeLog,
  readText,
  type Diagnosis,
  type RunEnding,
} from '../diagnose';
import { gpuTimeline, nonFiniteMarks, progressScale, runMarks, type ChartedMetric, type NonFiniteKind, type ReportData, type RunMark, type YScale } from './charts';

export * from './charts';
import { esc, scriptJson, uplotAssets, timelineHtml, provenanceHtml, MAX_MARK_LABELS, progressHtml, marksHtml, diagnosisHtml } from './sections';


/** Reads everything the report shows from a bundle folder; `run` is how the run ended, when the caller knows (see diagnoseBundle). */
export async function collectReportData(bundleDir: string, run?: RunEnding): Promise<ReportData> {
  const dir = resolve(bundleDir);
  let job: Record<string, unknown> | undefined;
  try {
    job = JSON.parse(await readFile(join(dir, JOB_FILE), 'utf8')) as Record<string, unknown>;
  } catch {
    job = undefined;
  }
  const spec = declaredProgress(job);
  let progress: ReportData['progress'];
  if (spec) {
    const found = await findSeries(join(dir, ARTIFACTS_DIR), spec);
    const ids = new Set(['chart-gpu-mem', 'chart-gpu-util']);
    const metrics = (found?.series ?? [])
      .filter((m) => m.points.length)
      .map((m, i): ChartedMetric => {
        let id = `chart-${m.key.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || String(i)}`;
        if (ids.has(id)) id = `${id}-${i}`;
        ids.add(id);
        return {
          key: m.key,
          label: m.label,
          id,
          steps: m.points.map((p) => p.step),
          values: m.points.map((p) => (Number.isFinite(p.value) ? p.value : null)),
          nonFinite: m.points.filter((p) => !Number.isFinite(p.value)).length,
          marks: nonFiniteMarks(m.points),
          scale: progressScale(m.points.map((p) => p.value)),
        };
      });
    progress = { file: found ? `${ARTIFACTS_DIR}/${found.rel}` : undefined, step: spec.step, wanted: spec.file, metrics };
  }
  return {
    bundleDir: dir,
    title: typeof job?.['jobId'] === 'string' ? `${job['jobId']} (${String(job['taskType'] ?? '?')})` : dir,
    job,
    runtime: parseRuntimeLog((await readText(join(dir, RUNTIME_LOG))) ?? ''),
    progress,
    gpu: parseGpuAudit((await readText(join(dir, GPU_AUDIT_LOG))) ?? ''),
    precheck: parsePrecheckLog((await readText(join(dir, PRECHECK_LOG))) ?? '').entries,
    diagnosis: await diagnoseBundle(dir, run),
    generatedAt: new Date().toISOString(),
  };
}

// --- what the charts decide ------------------------------------------------------------------------

/** A number as a caption or a tick says it: 4 significant digits, an exponent past 1e4 or below 1e-3 ("1e12", "2.5e-4"). */

export interface ChartData {
  series: { id: string; label: string; step: string; x: number[]; y: (number | null)[]; scale: YScale; marks: { kind: NonFiniteKind; steps: number[]; label: string | null }[] }[];
  /** Per GPU: sample times in epoch seconds, memory used (MiB), utilization (%), total memory. */
  gpus: { gpu: number; t: number[]; mem: (number | null)[]; util: (number | null)[]; total: number | null }[];
  /** The GPU charts' x range (epoch seconds), widened to take in the marks. */
  gpuRange: [number, number];
  /** The vertical lines on the GPU charts, x in epoch seconds. */
  gpuMarks: { x: number; kind: RunMark['kind']; label: string }[];
}

/** The report page for `data`; self-contained (uPlot inlined, no network). */
export function renderReport(data: ReportData, assets = uplotAssets()): string {
  const byGpu = new Map<number, { t: number[]; mem: (number | null)[]; util: (number | null)[]; total: number | null }>();
  for (const s of data.gpu.samples) {
    if (!Number.isFinite(s.ms)) continue;
    const g = byGpu.get(s.gpu) ?? { t: [], mem: [], util: [], total: null };
    g.t.push(s.ms / 1000);
    g.mem.push(s.memUsedMib);
    g.util.push(s.utilPct);
    g.total = s.memTotalMib ?? g.total;
    byGpu.set(s.gpu, g);
  }
  const gpus = [...byGpu].sort((a, b) => a[0] - b[0]).map(([gpu, g]) => ({ gpu, ...g }));
  const timeline = gpuTimeline(gpus[0]?.t ?? [], runMarks(data.runtime));
  const chartData: ChartData = {
    series: (data.progress?.metrics ?? []).map((m) => ({
      id: m.id,
      label: m.label,
      step: data.progress!.step,
      x: m.steps,
      y: m.values,
      scale: m.scale,
      marks: m.marks.map((r, i) => ({ kind: r.kind, steps: r.steps, label: i < MAX_MARK_LABELS ? r.label : null })),
    })),
    gpus,
    gpuRange: timeline.range,
    gpuMarks: timeline.marks.filter((m) => m.drawn).map((m) => ({ x: m.x, kind: m.kind, label: m.label })),
  };
  const progressNote = progressHtml(data.progress);
  const gpuNote = byGpu.size
    ? `<p>${esc(GPU_AUDIT_LOG)}: ${data.gpu.samples.length} samples from ${byGpu.size} GPU(s)</p>${marksHtml(timeline.marks, (data.runtime.find((e) => Number.isFinite(e.ms))?.ms ?? 0) / 1000)}<div class="chart" id="chart-gpu-mem"></div><div class="chart" id="chart-gpu-util"></div>`
    : `<p class="none">${data.gpu.noGpu ? `no GPU on the host: ${esc(data.gpu.noGpu.reason)}` : `no ${esc(GPU_AUDIT_LOG)}`}</p>`;
  const entry = (data.job?.['entrypoint'] as { command?: unknown } | undefined)?.command;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Orbit run report: ${esc(data.title)}</title>
<link rel="icon" href="data:,">
<style>${assets.css}</style>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#1d232a;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde;padding-bottom:4px}h3{font-size:14px}
table{border-collapse:collapse;width:100%;font-size:12.5px}td,th{border-bottom:1px solid #eef;padding:3px 6px;text-align:left;vertical-align:top}
.mono,pre,code{font-family:ui-monospace,Menlo,monospace;font-size:12px}td.mono{word-break:break-all}pre{background:#f6f7f9;padding:8px;overflow-x:auto;white-space:pre-wrap}
.num{text-align:right}.none{color:#777;font-style:italic}.bad{color:#b3261e}.ok{color:#1b7a33}
.verdict{font-size:15px;padding:8px 12px;border-radius:6px}.verdict.ok{background:#e7f5ea}.verdict.bad{background:#fdecea}.verdict.cancelled{background:#eef0f3}
tr.st-FAIL td,tr.st-failed td{background:#fdecea}tr.key td{font-weight:600}
.timeline{position:relative;height:28px;background:#f0f2f5;border-radius:4px;margin:8px 0 12px;overflow:hidden}
.seg{position:absolute;top:0;bottom:0;border-right:1px solid #fff;background:#9fb7d9;font-size:11px;overflow:hidden;white-space:nowrap}
.seg span{padding:0 3px;line-height:28px}.ph-start{background:#7fc29b}.ph-precheck{background:#e6c36a}.ph-exit,.ph-done,.ph-manifest{background:#c9ccd1}
.chart{margin:8px 0 16px;min-height:260px}
.caption{margin:4px 0}.scale-note{color:#555}
.mark-label{position:absolute;white-space:nowrap;font-size:11.5px;font-weight:600;line-height:14px;padding:0 3px;background:rgba(255,255,255,.85);border-radius:3px;pointer-events:none;z-index:5}
.mark-exit{color:#1b7a33}.mark-failed,.mark-kill{color:#b3261e}.mark-stop{color:#c26a00}
</style></head><body>
<h1>Orbit run report: ${esc(data.title)}</h1>
<p class="mono">${esc(data.bundleDir)}${Array.isArray(entry) ? `<br>entrypoint: ${esc(entry.join(' '))}` : ''}<br>generated ${esc(data.generatedAt)}</p>
<h2>Diagnosis</h2>${diagnosisHtml(data.diagnosis)}
<h2>Phase timeline</h2>${timelineHtml(data.runtime)}
<h2>Progress</h2>${progressNote}
<h2>GPU memory and utilization</h2>${gpuNote}
<h2>Provenance</h2>${provenanceHtml(data.precheck)}
<script id="report-data" type="application/json">${scriptJson(chartData)}</script>
<script>${assets.js}</script>
<script>
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];
  var markColors = { exit: '#1b7a33', failed: '#b3261e', kill: '#b3261e', stop: '#c26a00' };
  var bad = '#b3261e';
  var dpr = window.devicePixelRatio || 1;
  function width(el) { return Math.max(320, Math.min(960, el.clientWidth || 960)); }
  // As formatNumber in report.ts: an exponent past 1e4 or below 1e-3, so a tick label fits.
  function fmt(v) {
    if (v == null) return '';
    if (v === 0) return '0';
    var a = Math.abs(v);
    if (a >= 1e4 || a < 1e-3) return v.toExponential(3).replace(/\.?0+e/, 'e').replace('e+', 'e');
    return String(Number(v.toPrecision(4)));
  }
  function axisSize(u, values) {
    var n = 0;
    (values || []).forEach(function (v) { n = Math.max(n, String(v == null ? '' : v).length); });
    return Math.max(50, 16 + 7 * n);
  }
  // Labels in the plot's overlay, each beside its x (or left of it near the right edge), in rows so none overlaps another.
  function placeLabels(u, items) {
    var old = u.over.querySelectorAll('.mark-label');
    for (var k = 0; k < old.length; k++) old[k].remove();
    var rows = { top: [], bottom: [] };
    var W = u.over.clientWidth;
    items.forEach(function (it) {
      var d = document.createElement('div');
      d.className = 'mark-label ' + it.cls;
      d.textContent = it.text;
      d.style.color = it.color;
      d.setAttribute('data-x', String(it.x));
      u.over.appendChild(d);
      var w = d.offsetWidth;
      var left = it.left + 4;
      if (left + w > W) left = Math.max(0, it.clamp ? W - w : it.left - 4 - w);
      var side = it.bottom ? rows.bottom : rows.top;
      var r = 0;
      while ((side[r] || []).some(function (iv) { return left < iv[1] + 6 && left + w > iv[0] - 6; })) r++;
      (side[r] = side[r] || []).push([left, left + w]);
      d.style.left = left + 'px';
      d.style[it.bottom ? 'bottom' : 'top'] = (it.offset + r * 16) + 'px';
    });
  }
  // The vertical lines of the process's end (exit, stop, kill), with their labels.
  function drawRunMarks(marks) {
    return function (u) {
      var ctx = u.ctx, b = u.bbox;
      ctx.save();
      marks.forEach(function (m) {
        var x = Math.round(u.valToPos(m.x, 'x', true));
        ctx.strokeStyle = markColors[m.kind];
        ctx.lineWidth = 2 * dpr;
        ctx.setLineDash(m.kind === 'stop' ? [6 * dpr, 4 * dpr] : []);
        ctx.beginPath();
        ctx.moveTo(x, b.top);
        ctx.lineTo(x, b.top + b.height);
        ctx.stroke();
      });
      ctx.restore();
      placeLabels(u, marks.map(function (m) {
        return { x: m.x, left: u.valToPos(m.x, 'x'), text: m.label, color: markColors[m.kind], cls: 'run-mark mark-' + m.kind, offset: 2 };
      }));
    };
  }
  // A triangle per non-finite point at the top edge (bottom for -inf), a dotted line and a label at the first of each run.
  function drawNonFinite(runs) {
    return function (u) {
      var ctx = u.ctx, b = u.bbox, sz = 5 * dpr, labels = [];
      ctx.save();
      ctx.fillStyle = bad;
      ctx.strokeStyle = bad;
      runs.forEach(function (r) {
        var low = r.kind === '-inf';
        var edge = low ? b.top + b.height : b.top;
        r.steps.forEach(function (st) {
          var x = u.valToPos(st, 'x', true);
          ctx.beginPath();
          ctx.moveTo(x, edge);
          ctx.lineTo(x - sz, edge + (low ? -1.7 : 1.7) * sz);
          ctx.lineTo(x + sz, edge + (low ? -1.7 : 1.7) * sz);
          ctx.closePath();
          ctx.fill();
        });
        if (r.label) {
          var x0 = Math.round(u.valToPos(r.steps[0], 'x', true));
          ctx.lineWidth = 1 * dpr;
          ctx.setLineDash([2 * dpr, 3 * dpr]);
          ctx.beginPath();
          ctx.moveTo(x0, b.top);
          ctx.lineTo(x0, b.top + b.height);
          ctx.stroke();
          labels.push({ x: r.steps[0], left: u.valToPos(r.steps[0], 'x'), text: r.label, color: bad, cls: 'nonfinite-mark', offset: 11, bottom: low, clamp: true });
        }
      });
      ctx.restore();
      placeLabels(u, labels);
    };
  }
  // Every chart by its element id, for a reader (or a test) that wants to ask one something.
  var charts = (window.orbitCharts = {});
  function plot(id, title, xTime, xLabel, yLabel, series, columns, o) {
    var el = document.getElementById(id);
    if (!el) return;
    var sc = o.scale || { kind: 'linear' };
    var yAxis = { label: yLabel, size: axisSize };
    var yScale = {};
    if (sc.kind === 'log') {
      yScale = { distr: 3, log: 10, range: [sc.min, sc.max] };
      yAxis.splits = function () { return sc.ticks; };
      yAxis.filter = function (u, splits) { return splits; };
      yAxis.values = function (u, splits) { return splits.map(function (v) { var i = sc.ticks.indexOf(v); return i < 0 ? '' : sc.labels[i]; }); };
    } else if (o.fmt) {
      yAxis.values = function (u, splits) { return splits.map(fmt); };
    }
    var opts = {
      title: title, width: width(el), height: 260,
      scales: { x: o.xRange ? { time: xTime, range: o.xRange } : { time: xTime }, y: yScale },
      axes: [{ label: xLabel }, yAxis],
      series: [{ label: xLabel }].concat(series),
      hooks: { draw: o.draw ? [o.draw] : [] },
    };
    charts[id] = new uPlot(opts, columns, el);
  }
  data.series.forEach(function (s, i) {
    plot(s.id, s.label + ' by ' + s.step, false, s.step, s.label,
      [{ label: s.label, stroke: colors[i % colors.length], width: 2, spanGaps: false, value: function (u, v) { return fmt(v); } }], [s.x, s.y],
      { scale: s.scale, fmt: true, draw: s.marks.length ? drawNonFinite(s.marks) : null });
  });
  if (data.gpus.length) {
    var t = data.gpus[0].t;
    var mem = [], util = [], memCols = [t], utilCols = [t];
    data.gpus.forEach(function (g, i) {
      var c = colors[i % colors.length];
      var align = function (ys) { return t.map(function (_, k) { return k < ys.length ? ys[k] : null; }); };
      mem.push({ label: 'GPU ' + g.gpu + ' used MiB', stroke: c, width: 2 });
      memCols.push(align(g.mem));
      if (g.total) { mem.push({ label: 'GPU ' + g.gpu + ' total MiB', stroke: c, dash: [6, 4], width: 1 }); memCols.push(t.map(function () { return g.total; })); }
      util.push({ label: 'GPU ' + g.gpu + ' util %', stroke: c, width: 2 });
      utilCols.push(align(g.util));
    });
    var gpuOpts = { xRange: data.gpuRange, draw: data.gpuMarks.length ? drawRunMarks(data.gpuMarks) : null };
    plot('chart-gpu-mem', 'GPU memory (MiB)', true, 'time', 'MiB', mem, memCols, gpuOpts);
    plot('chart-gpu-util', 'GPU utilization (%)', true, 'time', '%', util, utilCols, gpuOpts);
  }
})();
</script>
</body></html>
`;
}

/** Writes `<bundle>/runtime/report.html` and returns its path; `run` as for collectReportData. */
export async function writeReport(bundleDir: string, run?: RunEnding): Promise<{ path: string; diagnosis: Diagnosis }> {
  const data = await collectReportData(bundleDir, run);
  const path = join(data.bundleDir, REPORT_FILE);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(`${path}.tmp`, renderReport(data));
  await rename(`${path}.tmp`, path);
  return { path, diagnosis: data.diagnosis };
}
