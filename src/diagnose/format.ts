/** The diagnosis as printable lines (`orbit diagnose`). */
import { join } from 'node:path';
import { LAYER_QUESTIONS, LAYERS, type Diagnosis, type Evidence } from './findings';

/** The diagnosis as printable lines: the verdict first, then every layer, then the verdict's evidence with file paths. */
export function formatDiagnosis(d: Diagnosis): string {
  const out: string[] = [];
  const evidenceLines = (list: Evidence[]) => list.flatMap((e) => [`  ${join(d.bundleDir, e.file)}${e.line ? `:${e.line}` : ''}`, `      ${e.text.slice(0, 400)}`]);
  if (d.healthy) out.push(`${d.bundleDir}: healthy (exit code ${d.exitCode ?? 'none'})`);
  else if (d.cancelled) {
    out.push(`${d.bundleDir}: CANCELLED (stopped on request: neither healthy nor a failed layer)`, `  ${d.cancelled.summary}`);
    if (d.cancelled.runStatus) out.push(`  run status: ${d.cancelled.runStatus}`);
    if (d.verdict) out.push(`  also FAILED at ${d.verdict.layer} (${LAYER_QUESTIONS[d.verdict.layer]} no): ${d.verdict.summary}`);
  } else if (d.verdict) out.push(`${d.bundleDir}: FAILED at ${d.verdict.layer} (${LAYER_QUESTIONS[d.verdict.layer]} no)`, `  ${d.verdict.summary}`);
  else if (d.liveHealth?.state === 'unhealthy') out.push(`${d.bundleDir}: UNHEALTHY (a health rule, live: ${d.liveHealth.rule ?? '?'})`, `  ${d.liveHealth.summary ?? ''}`);
  const live = d.liveHealth;
  if (live) out.push(`  live health (the workflow's last verdict${live.at ? `, ${live.at}` : ''}): ${live.state}${live.rule ? `: ${live.rule}: ${live.summary ?? ''}` : ''}`);
  out.push('', 'layers:');
  for (const l of d.layers) out.push(`  ${String(LAYERS.indexOf(l.layer) + 1)}. ${l.layer.padEnd(9)} ${(l.status === 'failed' ? 'FAILED' : l.status).padEnd(8)} ${l.summary}`);
  if (d.cancelled?.evidence.length) out.push('', 'evidence (cancel):', ...evidenceLines(d.cancelled.evidence));
  const shown = d.verdict ?? undefined;
  if (shown?.evidence.length) out.push('', `evidence (${shown.layer}):`, ...evidenceLines(shown.evidence));
  const task = d.layers.find((l) => l.layer === 'task');
  // The task's own evidence, less the lines the verdict's evidence shows already.
  const printed = new Set((shown?.evidence ?? []).map((e) => `${e.file}\0${e.line ?? e.text}`));
  const taskRest = (task?.evidence ?? []).filter((e) => !printed.has(`${e.file}\0${e.line ?? e.text}`));
  if (shown && shown.layer !== 'task' && task?.status === 'failed' && taskRest.length) out.push('', 'evidence (task):', ...evidenceLines(taskRest));
  return out.join('\n');
}
