/** The report's HTML pieces: escaping, the inlined uPlot assets, and one section per part of the page. */
import { readFileSync } from 'node:fs';
import { ARTIFACTS_DIR, JOB_FILE, PRECHECK_LOG, RUNTIME_LOG } from '../common/layout';
import { LAYER_QUESTIONS, type Diagnosis, type PrecheckEntry, type RuntimeEvent } from '../diagnose';
import type { gpuTimeline, NonFiniteRun, ReportData } from './charts';

export const esc = (s: unknown) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** JSON safe inside a <script> element. */
export const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');

export function uplotAssets(): { js: string; css: string } {
  const js = readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8').replace(/<\/script/gi, '<\\/script');
  const css = readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8').replace(/<\/style/gi, '<\\/style');
  return { js, css };
}

/** Seconds from the first to each event, with the phases that matter most marked. */
export function timelineHtml(events: RuntimeEvent[]): string {
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

export function provenanceHtml(entries: PrecheckEntry[]): string {
  if (!entries.length) return `<p class="none">no ${PRECHECK_LOG}</p>`;
  const rows = entries
    .map(
      (e) =>
        `<tr class="st-${esc(e.status)}"><td>${esc(e.status)}</td><td>${esc(e.what)}</td><td>${esc(e.version ?? '')}</td><td class="mono">${esc(e.path ?? '')}</td><td class="mono">${esc(e.message)}</td></tr>`,
    )
    .join('');
  return `<table id="provenance"><thead><tr><th>status</th><th>check</th><th>version</th><th>path</th><th>line</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** Non-finite runs labelled on a chart (each point is marked); the caption names the same ones. */
export const MAX_MARK_LABELS = 6;

export function progressHtml(p: ReportData['progress']): string {
  if (!p) return `<p class="none">${JOB_FILE} declares no progress series</p>`;
  if (!p.metrics.length) return `<p class="none">no ${esc(p.wanted)} with a declared metric under ${ARTIFACTS_DIR}/</p>`;
  return p.metrics
    .map((m) => {
      const shown = m.marks.slice(0, MAX_MARK_LABELS).map((r) => esc(r.label));
      if (m.marks.length > shown.length) shown.push(`${m.marks.length - shown.length} more runs, marked but not labelled`);
      const nonFinite = m.nonFinite
        ? `, <b class="bad">${m.nonFinite} not finite, drawn as gaps and marked ${nonFiniteWhere(m.marks)}: ${shown.join('; ')}</b>`
        : '';
      const scale = m.scale.note ? `<br><span class="scale-note">${esc(m.scale.note)}</span>` : '';
      return `<p class="caption" id="${esc(m.id)}-caption">${esc(p.file)}: ${m.steps.length} points of <code>${esc(m.key)}</code>${nonFinite}${scale}</p><div class="chart" id="${esc(m.id)}"></div>`;
    })
    .join('');
}

function nonFiniteWhere(runs: readonly NonFiniteRun[]): string {
  const low = runs.some((r) => r.kind === '-inf');
  const high = runs.some((r) => r.kind !== '-inf');
  return [...(high ? ['▲ at the top edge'] : []), ...(low ? ['▼ at the bottom edge (-inf)'] : [])].join(', ');
}

/** The marks under the GPU charts' heading; `t0` (seconds) is the phase timeline's first event, as its offsets. */
export function marksHtml(marks: ReturnType<typeof gpuTimeline>['marks'], t0: number): string {
  if (!marks.length) return `<p class="caption none">no exit, stop or kill in ${RUNTIME_LOG} to mark</p>`;
  const items = marks.map(
    (m) =>
      `<span class="mark-${m.kind}">${esc(m.label)}</span> at ${esc(m.time)} (${m.x >= t0 ? '+' : ''}${(m.x - t0).toFixed(2)}s, ${RUNTIME_LOG}:${m.line})${m.drawn ? '' : ', outside the audit\'s time range: not drawn'}`,
  );
  return `<p class="caption" id="gpu-marks">vertical lines, from ${RUNTIME_LOG}: ${items.join('; ')}</p>`;
}

const evidencePre = (list: { file: string; line?: number; text: string }[]) =>
  `<pre>${list.map((e) => `${esc(e.file)}${e.line ? `:${e.line}` : ''}\n    ${esc(e.text)}`).join('\n')}</pre>`;

export function diagnosisHtml(d: Diagnosis): string {
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

/** What the page's script draws, as the `report-data` JSON element holds it. */
