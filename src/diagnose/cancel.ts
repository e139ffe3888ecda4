/**
 * A cancelled run in the diagnosis. It is neither healthy nor a failure of a layer: its verdict is
 * `cancelled`, with the evidence of where the cancel came from — the run's status when the caller
 * knows it (Temporal), and the runtime/ files the collection after the cancel brought back:
 * runtime/runtime.log (`cancel requested: TERM ... why=cancelled`, the KILL after the grace, the
 * wrapper's `stop requested` and `exit ... stopping=1`) and runtime/collection.json.
 * The layers the stop itself cut short (a task ended by TERM, a wrapper stopped before its probe)
 * are then marked as such instead of failed.
 */
import { join } from 'node:path';
import { COLLECTION_REPORT, STOP_REASON } from '../common/protocol';
import { RUNTIME_LOG } from '../common/layout';
import type { CancelFinding, Evidence, LayerFinding, RunEnding } from './findings';
import { readText, type RuntimeEvent } from './sources';
import { runtimeEv } from './evidence';

/** Failures the stop explains, by layer: what a cancel leaves behind in a run that was otherwise fine. */
const CUT_SHORT: Record<string, readonly string[]> = {
  runtime: ['never-ran', 'not-staged', 'no-probe'],
  task: ['stopped', 'signal', 'no-exit-code'],
};


/** What runtime/collection.json says of the last collection, in one evidence line; undefined without one. */
async function collectionEvidence(dir: string): Promise<{ ev: Evidence; said: string } | undefined> {
  const text = await readText(join(dir, COLLECTION_REPORT));
  if (text === undefined) return undefined;
  let report: Record<string, unknown>;
  try {
    report = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const num = (k: string) => (typeof report[k] === 'number' ? (report[k] as number) : undefined);
  const files = num('filesFetched');
  const bytes = num('bytesFetched');
  const at = typeof report['collectedAt'] === 'string' ? report['collectedAt'] : '?';
  const fields = [`collectedAt=${at}`, ...(files !== undefined ? [`filesFetched=${files}`] : []), ...(bytes !== undefined ? [`bytesFetched=${bytes}`] : []), ...(report['partial'] ? ['partial=true'] : [])];
  const said = files !== undefined ? `the collection after it fetched ${files} file${files === 1 ? '' : 's'} (${bytes ?? '?'} bytes)` : 'the collection after it wrote its report';
  return { ev: { file: COLLECTION_REPORT, text: fields.join(' ') }, said };
}

/**
 * The cancel finding, or undefined when the run was not cancelled. With `run` (its status from
 * Temporal) that status decides; without it, a `why=cancelled` line in runtime.log does.
 */
export async function cancelFinding(dir: string, runtime: RuntimeEvent[], exitCode: number | null, run?: RunEnding): Promise<CancelFinding | undefined> {
  const cancels = runtime.filter((e) => e.phase === 'cancel');
  const byCancel = cancels.filter((e) => e.fields['why'] === STOP_REASON.cancelled);
  if (run ? run.status !== 'cancelled' : !byCancel.length) return undefined;
  // A run cancelled while Orbit stopped it for another reason too shows only the cancel's own lines when it has them.
  const stops = byCancel.length ? byCancel : cancels.filter((e) => e.fields['why'] === undefined);
  const kill = runtime.filter((e) => e.phase === 'grace');
  const forwarded = runtime.filter((e) => e.phase === 'stop');
  const exit = runtime.find((e) => e.phase === 'exit');
  const started = runtime.some((e) => e.phase === 'start');
  let how: string;
  if (stops.length) {
    how = `the job was stopped with TERM at ${stops[0]!.time}${kill.length ? ', then KILL after the grace' : ''}${exitCode !== null ? ` (exit ${exitCode})` : ''}`;
  } else if (!runtime.length) how = 'the run was cancelled before anything ran on a host (no runtime.log was collected)';
  else if (!started) how = 'the run was cancelled before its entrypoint started';
  else if (exit && exit.fields['stopping'] !== '1') how = `the job had ended by itself (exit ${exit.fields['code'] ?? exitCode ?? '?'}) before the cancel`;
  else how = 'the job was stopped';
  const collected = await collectionEvidence(dir);
  const source = run ? '' : `; ${RUNTIME_LOG} records the cancel (why=${STOP_REASON.cancelled})`;
  return {
    summary: `${how}${collected ? `; ${collected.said}` : ''}${source}`,
    evidence: [...stops, ...kill, ...forwarded, ...(exit ? [exit] : [])].sort((a, b) => a.line - b.line).map(runtimeEv).concat(collected ? [collected.ev] : []),
    ...(run ? { runStatus: `cancelled${run.detail ? ` (${run.detail})` : ''}` } : {}),
  };
}

/** The layer as the cancel left it: a failure the stop explains is marked as cut short, not failed. */
export function afterCancel(l: LayerFinding, runtime: RuntimeEvent[]): LayerFinding {
  if (l.status !== 'failed') return l;
  const interruptedPrecheck = l.layer === 'precheck' && runtime.some((e) => e.phase === 'precheck' && /interrupted/.test(e.text));
  if (!interruptedPrecheck && !(CUT_SHORT[l.layer] ?? []).includes(l.kind ?? '')) return l;
  return { ...l, status: 'skipped', kind: 'cancelled', summary: `cut short by the cancel: ${l.summary}` };
}
