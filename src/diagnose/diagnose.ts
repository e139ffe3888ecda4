/**
 * Diagnosis of a run from its bundle alone. The log surfaces form a decision tree, walked in order:
 *
 *   1. runtime   runtime/runtime.log             did the wrapper stage and probe on the host?
 *   2. precheck  artifacts/runtime-precheck.log  did the dependencies resolve (versions, paths, declared provenance)?
 *   3. task      the task log + exit code         did the process crash, and with what?
 *   4. progress  job.json `progress` series        did its metrics make progress, stall, or go NaN/inf?
 *                (e.g. artifacts/** /logging.jsonl, key loss: the training plugin's declaration)
 *   5. gpu       artifacts/nvml-audit.jsonl       did GPU memory climb to the limit before the end?
 *
 * The verdict is the first layer that failed, except that a process killed by a signal, with no
 * traceback of its own, defers to a later failed layer that explains the kill. A cancelled run
 * (./cancel.ts) is not healthy and not a failure: its verdict is `cancelled`.
 * Reads files only; changes nothing.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ARTIFACTS_DIR, EXIT_CODE_FILE, GPU_AUDIT_LOG, JOB_FILE, LAST_RUN_FILE, PRECHECK_LOG, RUNTIME_LOG } from '../common/layout';
import { EXIT, STOP_REASON } from '../common/protocol';
import {
  numberedLines,
  declaredProgress,
  declaredProvenance,
  parseGpuAudit,
  parsePrecheckLog,
  parseRuntimeLog,
  readText,
  type GpuSample,
  type PrecheckEntry,
  type RuntimeEvent,
} from './sources';
import type { Diagnosis, Evidence, LayerFinding, RunEnding } from './findings';
import { afterCancel, cancelFinding } from './cancel';
import { LAYER_QUESTIONS, LAYERS } from './findings';
import { progressLayer } from './progress';
import type { ProgressSpec, ProvenanceCheck } from '../bundle/schema';

export * from './findings';

/** GPU memory at or above this share of the total, near the end, counts as "at the limit". */
export const GPU_LIMIT_FRACTION = 0.95;

const SIGNALS: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 6: 'SIGABRT', 9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 15: 'SIGTERM' };

interface Context {
  dir: string;
  logFile: string;
  /** job.json's `progress`: undefined when the bundle declares no series. */
  progress: ProgressSpec | undefined;
  provenance: ProvenanceCheck[];
  runtime: RuntimeEvent[];
  runtimeText?: string;
  exitCode: number | null;
}

/**
 * Diagnoses the bundle in `bundleDir` (a collected run, or one run by hand with scripts/orbit/run.sh).
 * `run` is how the run ended as Temporal records it, when the caller knows (a cancelled run is told apart by it).
 */
export async function diagnoseBundle(bundleDir: string, run?: RunEnding): Promise<Diagnosis> {
  const dir = resolve(bundleDir);
  const runtimeText = await readText(join(dir, RUNTIME_LOG));
  const job = await readJob(dir);
  const ctx: Context = {
    dir,
    logFile: taskLogFile(job),
    progress: declaredProgress(job),
    provenance: declaredProvenance(job),
    runtime: runtimeText === undefined ? [] : parseRuntimeLog(runtimeText),
    ...(runtimeText !== undefined ? { runtimeText } : {}),
    exitCode: await exitCodeOf(dir),
  };
  const runtime = runtimeLayer(ctx);
  const precheck = await precheckLayer(ctx);
  const task = await taskLayer(ctx, precheck);
  const progress = await progressLayer(ctx.dir, ctx.progress);
  const gpu = await gpuLayer(ctx);
  const cancelled = await cancelFinding(dir, ctx.runtime, ctx.exitCode, run);
  const found = [runtime, precheck, task, progress, gpu];
  const layers = cancelled ? found.map((l) => afterCancel(l, ctx.runtime)) : found;
  const failed = layers.filter((l) => l.status === 'failed');
  let verdict = failed[0];
  if (verdict?.layer === 'task' && (verdict.kind === 'signal' || verdict.kind === 'no-exit-code')) verdict = failed.find((l) => l.layer === 'progress' || l.layer === 'gpu') ?? verdict;
  return { bundleDir: dir, healthy: failed.length === 0 && !cancelled, ...(cancelled ? { cancelled } : {}), ...(verdict ? { verdict } : {}), exitCode: ctx.exitCode, layers };
}

/** job.json as plain JSON (read leniently: a diagnosis must work on a bundle whose job.json is off); undefined when unreadable. */
async function readJob(dir: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(join(dir, JOB_FILE), 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function taskLogFile(job: unknown): string {
  const f = (job as { entrypoint?: { logFile?: unknown } } | undefined)?.entrypoint?.logFile;
  if (typeof f === 'string' && f && !f.startsWith('/') && !f.split('/').includes('..')) return f;
  return 'task.log';
}

async function exitCodeOf(dir: string): Promise<number | null> {
  const text = (await readText(join(dir, EXIT_CODE_FILE)))?.trim();
  if (text && /^-?\d{1,6}$/.test(text)) return Number(text);
  try {
    const last = JSON.parse((await readText(join(dir, LAST_RUN_FILE))) ?? '') as { exitCode?: unknown };
    if (typeof last.exitCode === 'number') return last.exitCode;
  } catch {
    // no last_run.json either
  }
  return null;
}

const ev = (file: string, e: { line: number; text: string }): Evidence => ({ file, line: e.line, text: e.text });
const runtimeEv = (e: RuntimeEvent): Evidence => ({ file: RUNTIME_LOG, line: e.line, text: `${e.time} ${e.text}` });

function runtimeLayer(ctx: Context): LayerFinding {
  const base = { layer: 'runtime' as const };
  if (ctx.runtimeText === undefined) {
    return { ...base, status: 'failed', kind: 'never-ran', summary: `${RUNTIME_LOG} is missing: the wrapper never ran on a host (not launched, or runtime/ was not collected)`, evidence: [] };
  }
  const staged = ctx.runtime.find((e) => e.phase === 'staged');
  const probe = ctx.runtime.find((e) => e.phase === 'probe');
  const head = ctx.runtime.slice(0, 3).map(runtimeEv);
  if (!staged && ctx.runtime.some((e) => e.phase === 'start')) {
    return { ...base, status: 'skipped', summary: 'written by an older wrapper without staged/probe phases', evidence: head };
  }
  if (!staged) return { ...base, status: 'failed', kind: 'not-staged', summary: 'the wrapper left no "staged" line: it did not get going on the host', evidence: head };
  if (!probe) return { ...base, status: 'failed', kind: 'no-probe', summary: 'the wrapper stopped after staging, before it probed the host', evidence: [runtimeEv(staged), ...ctx.runtime.slice(-2).map(runtimeEv)] };
  const f = probe.fields;
  return {
    ...base,
    status: 'ok',
    summary: `staged and probed on ${f['host'] ?? '?'}: python3 ${f['python_version'] ?? '?'}, ${f['gpus'] ?? '?'} GPU(s), ${f['disk_free_mb'] ?? '?'} MB free`,
    evidence: [runtimeEv(staged), runtimeEv(probe)],
  };
}

async function precheckLayer(ctx: Context): Promise<LayerFinding> {
  const base = { layer: 'precheck' as const };
  const event = ctx.runtime.find((e) => e.phase === 'precheck');
  const text = await readText(join(ctx.dir, PRECHECK_LOG));
  if (text === undefined) {
    if (event && /FAILED/.test(event.text)) return { ...base, status: 'failed', kind: 'no-log', summary: `the precheck failed and left no ${PRECHECK_LOG}`, evidence: [runtimeEv(event)] };
    return { ...base, status: 'skipped', summary: `no ${PRECHECK_LOG} (the wrapper stopped before the precheck, or predates it)`, evidence: event ? [runtimeEv(event)] : [] };
  }
  const log = parsePrecheckLog(text);
  const fails = log.entries.filter((e) => e.status === 'FAIL');
  const failedByWrapper = event !== undefined && /FAILED/.test(event.text);
  if (fails.length || failedByWrapper || log.verdict?.ok === false) {
    const evidence = fails.map((e) => ev(PRECHECK_LOG, { line: e.line, text: `[${e.status}] ${e.what}: ${e.message}` }));
    if (!fails.length) evidence.push(...numberedLines(text).slice(-5).map((l) => ev(PRECHECK_LOG, l)));
    if (event) evidence.push(runtimeEv(event));
    const first = fails[0];
    const check = first && ctx.provenance.find((c) => c.label === first.what);
    const kind = !first
      ? 'crashed'
      : first.what === 'interpreter'
        ? 'missing-interpreter'
        : check
          ? `${check.noun.replace(/ +/g, '-')}-mismatch`
          : /not importable/.test(first.message)
            ? 'missing-module'
            : /older than/.test(first.message)
              ? 'old-version'
              : 'failed-check';
    const what = first ? `${first.what}: ${first.message}` : 'the precheck did not finish';
    return { ...base, status: 'failed', kind, summary: `${fails.length || 1} check(s) failed; first: ${what}`, evidence };
  }
  const labels = new Set(ctx.provenance.map((c) => c.label));
  const modules = log.entries.filter((e) => e.what.startsWith('module ') || labels.has(e.what));
  const passed = modules.filter((m) => m.status === 'ok');
  const warned = modules.filter((m) => m.status === 'warn');
  const interp = log.entries.find((e) => e.what === 'interpreter');
  const name = (m: PrecheckEntry) => (labels.has(m.what) ? m.what : m.what.replace(/^module /, ''));
  const said = [
    ...(passed.length ? [`${passed.length} required module/provenance check(s) passed: ${passed.map((m) => `${name(m)} ${m.version ?? 'ok'}`).join(', ')}`] : []),
    ...(warned.length ? [`${warned.length} warning(s), first: ${warned[0]!.what}: ${warned[0]!.message.slice(0, 300)}`] : []),
  ];
  return {
    ...base,
    status: 'ok',
    summary: said.length ? said.join('; ') : 'no required modules; interpreter recorded',
    evidence: [...(interp ? [ev(PRECHECK_LOG, { line: interp.line, text: `[ok] interpreter: ${interp.message}` })] : []), ...modules.map((m) => ev(PRECHECK_LOG, { line: m.line, text: `[${m.status}] ${m.what}: ${m.message}` }))],
  };
}

async function taskLayer(ctx: Context, precheck: LayerFinding): Promise<LayerFinding> {
  const base = { layer: 'task' as const };
  const logRel = `${ARTIFACTS_DIR}/${ctx.logFile}`;
  const start = ctx.runtime.find((e) => e.phase === 'start');
  const exit = ctx.runtime.find((e) => e.phase === 'exit');
  if (!start && precheck.status === 'failed') {
    return { ...base, status: 'skipped', summary: `not started: the precheck failed (exit code ${ctx.exitCode ?? EXIT.precheckFailed})`, evidence: [] };
  }
  const text = await readText(join(ctx.dir, logRel));
  const lines = text === undefined ? [] : numberedLines(text);
  const tail = lines.filter((l) => l.text.trim()).slice(-5).map((l) => ev(logRel, l));
  const code = ctx.exitCode;
  if (code === null) {
    return {
      ...base,
      status: 'failed',
      kind: 'no-exit-code',
      summary: start ? 'no exit code recorded: the run is still going, or its wrapper was killed before it could record one' : 'the entrypoint never started',
      evidence: [...(start ? [runtimeEv(start)] : []), ...ctx.runtime.slice(-2).map(runtimeEv), ...tail],
    };
  }
  const timing = start && exit && Number.isFinite(start.ms) && Number.isFinite(exit.ms) ? ` after ${((exit.ms - start.ms) / 1000).toFixed(1)}s` : '';
  if (code === 0) return { ...base, status: 'ok', summary: `exited 0${timing}`, evidence: exit ? [runtimeEv(exit)] : [] };

  const exitEv = exit ? [runtimeEv(exit)] : [];
  const traceback = lastTraceback(lines);
  if (traceback) {
    return {
      ...base,
      status: 'failed',
      kind: 'exception',
      summary: `the process raised ${traceback.error.text.trim()} (exit ${code}${timing})`,
      evidence: [ev(logRel, traceback.header), ...(traceback.where ? [ev(logRel, traceback.where)] : []), ev(logRel, traceback.error), ...exitEv],
    };
  }
  // A program that could not start leaves one or two lines, e.g. "python3: can't open file '...': [Errno 2] No such file or directory".
  const shortLog = lines.filter((l) => l.text.trim()).length <= 3;
  const missing = lines.find((l) => /No such file or directory|can't open file|command not found|Permission denied|not found$/.test(l.text));
  if ((missing && (shortLog || code === 127 || code === 126)) || code === 127 || code === 126) {
    const execLine = ctx.runtime.find((e) => e.phase === 'exec');
    return {
      ...base,
      status: 'failed',
      kind: 'entrypoint',
      summary: `the entrypoint could not start: ${missing?.text.trim() ?? (code === 127 ? 'command not found' : 'not executable')} (exit ${code})`,
      evidence: [...(execLine ? [runtimeEv(execLine)] : []), ...(missing ? [ev(logRel, missing)] : tail), ...exitEv],
    };
  }
  const atTimeout = ctx.runtime.some((e) => e.phase === 'cancel' && e.fields['why'] === STOP_REASON.timedOut);
  if (exit?.fields['stopping'] === '1') {
    const why = atTimeout ? "stopped by Orbit at the run's timeout" : 'stopped on request';
    return { ...base, status: 'failed', kind: 'stopped', summary: `${why} (TERM), exit ${code}${timing}`, evidence: [...ctx.runtime.filter((e) => e.phase === 'stop' || e.phase === 'cancel').map(runtimeEv), ...exitEv] };
  }
  if (code > 128 && code < 160) {
    const sig = SIGNALS[code - 128] ?? `signal ${code - 128}`;
    return {
      ...base,
      status: 'failed',
      kind: 'signal',
      summary: atTimeout
        ? `the process was killed by ${sig} (exit ${code}${timing}): stopped by Orbit at the run's timeout`
        : `the process was killed by ${sig} (exit ${code}${timing}) with no traceback: killed from outside${sig === 'SIGKILL' ? ' (out of memory, or a hard stop)' : ''}`,
      evidence: [...tail, ...exitEv],
    };
  }
  return { ...base, status: 'failed', kind: 'exit', summary: `exited with code ${code}${timing}; last lines of ${logRel} follow`, evidence: [...tail, ...exitEv] };
}

/** The last Python traceback in a log: its header, its innermost frame and its exception line. */
function lastTraceback(lines: { line: number; text: string }[]) {
  let header = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (/^Traceback \(most recent call last\):/.test(lines[i]!.text)) {
      header = i;
      break;
    }
  }
  if (header < 0) return undefined;
  let where: { line: number; text: string } | undefined;
  for (let i = header + 1; i < lines.length; i++) {
    const l = lines[i]!;
    if (/^\s+File "/.test(l.text)) where = l;
    else if (/^\S/.test(l.text) && !/^During handling|^The above exception/.test(l.text)) return { header: lines[header]!, where, error: l };
  }
  return { header: lines[header]!, where, error: lines.at(-1)! };
}

async function gpuLayer(ctx: Context): Promise<LayerFinding> {
  const base = { layer: 'gpu' as const };
  const text = await readText(join(ctx.dir, GPU_AUDIT_LOG));
  if (text === undefined) return { ...base, status: 'skipped', summary: `no ${GPU_AUDIT_LOG}`, evidence: [] };
  const audit = parseGpuAudit(text);
  if (!audit.samples.length) {
    if (audit.noGpu) return { ...base, status: 'skipped', summary: `no GPU on the host: ${audit.noGpu.reason}`, evidence: [ev(GPU_AUDIT_LOG, { line: audit.noGpu.line, text: audit.noGpu.raw })] };
    return { ...base, status: 'skipped', summary: `${GPU_AUDIT_LOG} has no samples`, evidence: [] };
  }
  const byGpu = new Map<number, GpuSample[]>();
  for (const s of audit.samples) byGpu.set(s.gpu, [...(byGpu.get(s.gpu) ?? []), s]);
  const succeeded = ctx.exitCode === 0;
  const notes: string[] = [];
  for (const [gpu, samples] of [...byGpu].sort((a, b) => a[0] - b[0])) {
    const withMem = samples.filter((s) => s.memUsedMib !== null && s.memTotalMib);
    if (!withMem.length) continue;
    const share = (s: GpuSample) => s.memUsedMib! / s.memTotalMib!;
    const first = withMem[0]!;
    const peak = withMem.reduce((a, s) => (share(s) > share(a) ? s : a));
    const window = withMem.slice(-Math.max(5, Math.ceil(withMem.length / 10)));
    const endPeak = window.reduce((a, s) => (share(s) > share(a) ? s : a));
    const climbed = share(endPeak) - share(first) >= 0.1;
    const atLimit = share(endPeak) >= GPU_LIMIT_FRACTION;
    const seconds = Number.isFinite(endPeak.ms) && Number.isFinite(first.ms) ? ` within ${((endPeak.ms - first.ms) / 1000).toFixed(0)}s` : '';
    const pct = (s: GpuSample) => `${(share(s) * 100).toFixed(1)}%`;
    if (atLimit && climbed && !succeeded) {
      return {
        ...base,
        status: 'failed',
        kind: 'memory-limit',
        summary: `GPU ${gpu} memory climbed from ${first.memUsedMib} MiB to ${endPeak.memUsedMib} of ${endPeak.memTotalMib} MiB (${pct(endPeak)})${seconds}, just before the end: out of GPU memory`,
        evidence: [ev(GPU_AUDIT_LOG, { line: first.line, text: first.raw }), ev(GPU_AUDIT_LOG, { line: endPeak.line, text: endPeak.raw }), ...(withMem.at(-1) !== endPeak ? [ev(GPU_AUDIT_LOG, { line: withMem.at(-1)!.line, text: withMem.at(-1)!.raw })] : [])],
      };
    }
    const utils = samples.map((s) => s.utilPct).filter((u): u is number => u !== null);
    const util = utils.length ? `, mean utilization ${(utils.reduce((a, b) => a + b, 0) / utils.length).toFixed(0)}%` : '';
    notes.push(`GPU ${gpu} peak ${peak.memUsedMib}/${peak.memTotalMib} MiB (${pct(peak)})${util}`);
  }
  return { ...base, status: 'ok', summary: `${notes.join('; ') || 'no memory readings'} over ${audit.samples.length} samples`, evidence: [] };
}


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
  out.push('', 'layers:');
  for (const l of d.layers) out.push(`  ${String(LAYERS.indexOf(l.layer) + 1)}. ${l.layer.padEnd(9)} ${(l.status === 'failed' ? 'FAILED' : l.status).padEnd(8)} ${l.summary}`);
  if (d.cancelled?.evidence.length) out.push('', 'evidence (cancel):', ...evidenceLines(d.cancelled.evidence));
  const shown = d.verdict ?? undefined;
  if (shown?.evidence.length) out.push('', `evidence (${shown.layer}):`, ...evidenceLines(shown.evidence));
  const task = d.layers.find((l) => l.layer === 'task');
  if (shown && shown.layer !== 'task' && task?.status === 'failed' && task.evidence.length) out.push('', 'evidence (task):', ...evidenceLines(task.evidence));
  return out.join('\n');
}
