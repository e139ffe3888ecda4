/**
 * The run report: one static HTML file, `<bundle>/runtime/report.html`, that opens offline. It shows
 * the phase timeline (runtime/runtime.log), a chart per metric of the progress series job.json
 * declares (`progress`, e.g. loss by step from the longest artifacts/** /logging.jsonl),
 * GPU memory and utilization over time (artifacts/nvml-audit.jsonl), the provenance table
 * (artifacts/runtime-precheck.log) and the diagnosis. Charts are drawn by uPlot, whose minified
 * script and stylesheet are inlined. runtime/ is outside the bundle digest and the artifact
 * manifest, so writing the report changes neither.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ARTIFACTS_DIR, GPU_AUDIT_LOG, JOB_FILE, PRECHECK_LOG, REPORT_FILE, RUNTIME_LOG } from '../common/layout';
import {
  declaredProgress,
  diagnoseBundle,
  findSeries,
  LAYER_QUESTIONS,
  parseGpuAudit,
  parsePrecheckLog,
  parseRuntimeLog,
  readText,
  type Diagnosis,
  type GpuAudit,
  type PrecheckEntry,
  type RunEnding,
  type RuntimeEvent,
} from '../diagnose';

/** One declared metric as charted: its steps, its values (NaN/inf as null, drawn as gaps). */
export interface ChartedMetric {
  key: string;
  label: string;
  /** The chart's element id, e.g. "chart-loss". */
  id: string;
  steps: number[];
  values: (number | null)[];
  nonFinite: number;
}

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

const esc = (s: unknown) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** JSON safe inside a <script> element. */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');

function uplotAssets(): { js: string; css: string } {
  const js = readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8').replace(/<\/script/gi, '<\\/script');
  const css = readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8').replace(/<\/style/gi, '<\\/style');
  return { js, css };
}

/** Seconds from the first to each event, with the phases that matter most marked. */
function timelineHtml(events: RuntimeEvent[]): string {
  if (!events.length) return `<p class="none">no ${RUNTIME_LOG}: the wrapper never ran, or runtime/ was not collected</p>`;
  const t0 = events.find((e) => Number.isFinite(e.ms))?.ms ?? 0;
  const total = Math.max(1, (events.at(-1)?.ms ?? t0) - t0);
  const key = new Set(['staged', 'probe', 'precheck', 'audit', 'start', 'exit', 'manifest', 'done']);
  const segments = events
    .filter((e) => key.has(e.phase))
    .map((e, i, all) => {
      const next = all[i + 1];
      const left = ((e.ms - t0) / total) * 100;
      const width = next ? Math.max(0.5, ((next.ms - e.ms) / total) * 100) : 0.5;
      return `<div class="seg ph-${esc(e.phase)}" style="left:${left.toFixed(2)}%;width:${width.toFixed(2)}%" title="${esc(e.phase)} at ${esc(e.time)}"><span>${esc(e.phase)}</span></div>`;
    })
    .join('');
  const rows = events
    .map((e) => `<tr class="${key.has(e.phase) ? 'key' : ''}"><td>${esc(e.time)}</td><td class="num">+${((e.ms - t0) / 1000).toFixed(2)}s</td><td>${esc(e.phase)}</td><td class="mono">${esc(e.text)}</td></tr>`)
    .join('');
  return `<div class="timeline" id="timeline">${segments}</div>
<table><thead><tr><th>time (UTC)</th><th>offset</th><th>phase</th><th>line</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function provenanceHtml(entries: PrecheckEntry[]): string {
  if (!entries.length) return `<p class="none">no ${PRECHECK_LOG}</p>`;
  const rows = entries
    .map(
      (e) =>
        `<tr class="st-${esc(e.status)}"><td>${esc(e.status)}</td><td>${esc(e.what)}</td><td>${esc(e.version ?? '')}</td><td class="mono">${esc(e.path ?? '')}</td><td class="mono">${esc(e.message)}</td></tr>`,
    )
    .join('');
  return `<table id="provenance"><thead><tr><th>status</th><th>check</th><th>version</th><th>path</th><th>line</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function progressHtml(p: ReportData['progress']): string {
  if (!p) return `<p class="none">${JOB_FILE} declares no progress series</p>`;
  if (!p.metrics.length) return `<p class="none">no ${esc(p.wanted)} with a declared metric under ${ARTIFACTS_DIR}/</p>`;
  return p.metrics
    .map(
      (m) =>
        `<p>${esc(p.file)}: ${m.steps.length} points of <code>${esc(m.key)}</code>${m.nonFinite ? `, <b class="bad">${m.nonFinite} not finite (NaN/inf), drawn as gaps</b>` : ''}</p><div class="chart" id="${esc(m.id)}"></div>`,
    )
    .join('');
}

const evidencePre = (list: { file: string; line?: number; text: string }[]) =>
  `<pre>${list.map((e) => `${esc(e.file)}${e.line ? `:${e.line}` : ''}\n    ${esc(e.text)}`).join('\n')}</pre>`;

function diagnosisHtml(d: Diagnosis): string {
  const failed = d.verdict ? `failed at <b>${esc(d.verdict.layer)}</b> (${esc(LAYER_QUESTIONS[d.verdict.layer])}): ${esc(d.verdict.summary)}` : '';
  const head = d.healthy
    ? `<p class="verdict ok">healthy: every layer passed (exit code ${esc(d.exitCode ?? 'none')})</p>`
    : d.cancelled
      ? `<p class="verdict cancelled" id="cancelled"><b>cancelled</b>: ${esc(d.cancelled.summary)}${d.cancelled.runStatus ? `<br>run status: ${esc(d.cancelled.runStatus)}` : ''}</p>` +
        (failed ? `<p class="verdict bad">also ${failed}</p>` : '') +
        (d.cancelled.evidence.length ? `<h3>evidence of the cancel</h3>${evidencePre(d.cancelled.evidence)}` : '')
      : `<p class="verdict bad">${failed}</p>`;
  const rows = d.layers
    .map((l) => `<tr class="st-${esc(l.status)}"><td>${esc(l.layer)}</td><td>${esc(l.status)}</td><td>${esc(l.summary)}</td></tr>`)
    .join('');
  const evidence = d.verdict?.evidence.length ? `<h3>evidence</h3>${evidencePre(d.verdict.evidence)}` : '';
  return `${head}<table id="layers"><thead><tr><th>layer</th><th>status</th><th>finding</th></tr></thead><tbody>${rows}</tbody></table>${evidence}`;
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
  const chartData = {
    series: (data.progress?.metrics ?? []).map((m) => ({ id: m.id, label: m.label, step: data.progress!.step, x: m.steps, y: m.values })),
    gpus: [...byGpu].sort((a, b) => a[0] - b[0]).map(([gpu, g]) => ({ gpu, ...g })),
  };
  const progressNote = progressHtml(data.progress);
  const gpuNote = byGpu.size
    ? `<p>${esc(GPU_AUDIT_LOG)}: ${data.gpu.samples.length} samples from ${byGpu.size} GPU(s)</p><div class="chart" id="chart-gpu-mem"></div><div class="chart" id="chart-gpu-util"></div>`
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
  function width(el) { return Math.max(320, Math.min(960, el.clientWidth || 960)); }
  function plot(id, title, xTime, xLabel, yLabel, series, columns) {
    var el = document.getElementById(id);
    if (!el) return;
    var opts = {
      title: title, width: width(el), height: 260,
      scales: { x: { time: xTime } },
      axes: [{ label: xLabel }, { label: yLabel }],
      series: [{ label: xLabel }].concat(series),
    };
    new uPlot(opts, columns, el);
  }
  data.series.forEach(function (s, i) {
    plot(s.id, s.label + ' by ' + s.step, false, s.step, s.label,
      [{ label: s.label, stroke: colors[i % colors.length], width: 2, spanGaps: false }], [s.x, s.y]);
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
    plot('chart-gpu-mem', 'GPU memory (MiB)', true, 'time', 'MiB', mem, memCols);
    plot('chart-gpu-util', 'GPU utilization (%)', true, 'time', '%', util, utilCols);
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
