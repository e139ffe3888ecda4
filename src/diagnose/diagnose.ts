/**
 * Diagnosis of a run from its bundle alone. The log surfaces form a decision tree, walked in order:
 *
 *   1. runtime   runtime/runtime.log             did the wrapper stage and probe on the host, and did the host hold up:
 *                runtime/collection.json          its disk not full (ENOSPC, `manifest FAILED`, disk_free_mb near 0),
 *                the run's ending (Temporal)      the host answering to the end (not lost, not recovering)?
 *   2. precheck  artifacts/runtime-precheck.log  did the dependencies resolve (versions, paths, declared provenance)?
 *   3. task      the task log + exit code         did the process crash, and with what?
 *   4. progress  job.json `progress` series        did its metrics make progress, stall, or go NaN/inf?
 *                (e.g. artifacts/** /logging.jsonl, key loss: the training plugin's declaration)
 *   5. gpu       artifacts/nvml-audit.jsonl       did GPU memory climb to the limit just before the exit? (../health/gpu-memory.ts)
 *
 * The verdict is the first layer that failed, except that a process killed by a signal (with no
 * traceback of its own) or stopped by Orbit defers to a later failed layer that explains it. A cancelled run
 * (./cancel.ts) is not healthy and not a failure: its verdict is `cancelled`.
 * Reads files only; changes nothing.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ARTIFACTS_DIR, EXIT_CODE_FILE, JOB_FILE, LAST_RUN_FILE, PRECHECK_LOG, RUNTIME_LOG } from '../common/layout';
import { COLLECTION_REPORT, EXIT, STOP_REASON } from '../common/protocol';
import {
  numberedLines,
  declaredProgress,
  declaredProvenance,
  parseCollectionReport,
  parsePrecheckLog,
  parseRuntimeLog,
  lastTraceback,
  readText,
  runtimeExitCode,
  type CollectionReport,
  type PrecheckEntry,
  type RuntimeEvent,
} from './sources';
import type { Diagnosis, Evidence, LayerFinding, RunEnding } from './findings';
import { afterCancel, cancelFinding } from './cancel';
import { dedupeEvidence } from './findings';
import { progressLayer } from './progress';
import { gpuLayer } from './gpu-layer';
import { diskFullFinding } from './disk';
import type { ProgressSpec, ProvenanceCheck } from '../bundle/schema';
import { ev, runtimeEv } from './evidence';

export * from './findings';

export { GPU_LIMIT_FRACTION } from './gpu-layer';
export { formatDiagnosis } from './format';

export { DISK_FULL_FRACTION, DISK_FULL_MB } from './disk';

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
  /** Where the exit code was read: runtime/exit_code, runtime/last_run.json, or runtime.log's exit line (the wrapper could not write the others). */
  exitCodeFrom?: 'exit_code' | 'last_run' | 'runtime.log';
  /** How the run ended as Temporal records it, when the caller knows. */
  run?: RunEnding;
  collection?: CollectionReport;
}

/**
 * Diagnoses the bundle in `bundleDir` (a collected run, or one run by hand with scripts/orbit/run.sh).
 * `run` is how the run ended as Temporal records it, when the caller knows (a cancelled run is told apart by it).
 */
export async function diagnoseBundle(bundleDir: string, run?: RunEnding): Promise<Diagnosis> {
  const dir = resolve(bundleDir);
  const runtimeText = await readText(join(dir, RUNTIME_LOG));
  const job = await readJob(dir);
  const runtimeEvents = runtimeText === undefined ? [] : parseRuntimeLog(runtimeText);
  const exit = await exitCodeOf(dir, runtimeEvents);
  const collectionText = await readText(join(dir, COLLECTION_REPORT));
  const collection = collectionText === undefined ? undefined : parseCollectionReport(collectionText);
  const ctx: Context = {
    dir,
    logFile: taskLogFile(job),
    progress: declaredProgress(job),
    provenance: declaredProvenance(job),
    runtime: runtimeEvents,
    ...(runtimeText !== undefined ? { runtimeText } : {}),
    exitCode: exit.code,
    ...(exit.from ? { exitCodeFrom: exit.from } : {}),
    ...(run ? { run } : {}),
    ...(collection ? { collection } : {}),
  };
  const runtime = await runtimeLayer(ctx);
  const precheck = await precheckLayer(ctx);
  const task = await taskLayer(ctx, precheck);
  const progress = await progressLayer(ctx.dir, ctx.progress);
  const gpu = await gpuLayer(ctx);
  const cancelled = await cancelFinding(dir, ctx.runtime, ctx.exitCode, run);
  const found = [runtime, precheck, task, progress, gpu].map((l) => ({ ...l, evidence: dedupeEvidence(l.evidence) }));
  const layers = cancelled ? found.map((l) => afterCancel(l, ctx.runtime)) : found;
  const failed = layers.filter((l) => l.status === 'failed');
  let verdict = failed[0];
  // A kill, a missing exit code or an Orbit stop (a health rule stops the job) is explained by a later failed layer, when one is.
  if (verdict?.layer === 'task' && (verdict.kind === 'signal' || verdict.kind === 'no-exit-code' || verdict.kind === 'stopped')) verdict = failed.find((l) => l.layer === 'progress' || l.layer === 'gpu') ?? verdict;
  return {
    bundleDir: dir,
    healthy: failed.length === 0 && !cancelled && run?.health?.state !== 'unhealthy',
    ...(run?.health ? { liveHealth: run.health } : {}),
    ...(cancelled ? { cancelled: { ...cancelled, evidence: dedupeEvidence(cancelled.evidence) } } : {}),
    ...(verdict ? { verdict } : {}),
    exitCode: ctx.exitCode,
    layers,
  };
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

/**
 * The exit code: runtime/exit_code, else runtime/last_run.json, else the wrapper's `exit code=N` line
 * in runtime.log (logged before either file is written: it survives a disk too full for them).
 */
async function exitCodeOf(dir: string, runtime: RuntimeEvent[]): Promise<{ code: number | null; from?: Context['exitCodeFrom'] }> {
  const text = (await readText(join(dir, EXIT_CODE_FILE)))?.trim();
  if (text && /^-?\d{1,6}$/.test(text)) return { code: Number(text), from: 'exit_code' };
  try {
    const last = JSON.parse((await readText(join(dir, LAST_RUN_FILE))) ?? '') as { exitCode?: unknown };
    if (typeof last.exitCode === 'number' && Number.isInteger(last.exitCode)) return { code: last.exitCode, from: 'last_run' };
  } catch {
    // no last_run.json either
  }
  const logged = runtimeExitCode(runtime);
  return logged === null ? { code: null } : { code: logged, from: 'runtime.log' };
}


/**
 * Layer 1: the wrapper staged and probed, and the host held up. A host that was lost (or is not
 * answering) explains everything after it; a full disk explains the failures of the task and of the
 * wrapper's own writes; both go before what the wrapper's lines say.
 */
async function runtimeLayer(ctx: Context): Promise<LayerFinding> {
  const disk = await diskFullFinding(ctx);
  return (await hostFinding(ctx, disk)) ?? disk ?? wrapperFinding(ctx);
}

function wrapperFinding(ctx: Context): LayerFinding {
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
    summary: `staged and probed on ${f['host'] ?? '?'}: python3 ${f['python_version'] ?? '?'}, ${f['gpus'] ?? '?'} GPU(s), ${f['disk_free_mb'] ?? '?'} MB free${f['disk_total_mb'] ? ` of ${f['disk_total_mb']} MB` : ''}`,
    evidence: [runtimeEv(staged), runtimeEv(probe)],
  };
}

/**
 * The host was lost (the run ended `lost`: it did not come back before the collection deadline, per
 * the run's ending or, without one, runtime/collection.json), or is not answering now (the run is
 * `recovering`, or its host unreachable): what the workflow knows of the host, and what of the job was synced.
 */
async function hostFinding(ctx: Context, disk: LayerFinding | undefined): Promise<LayerFinding | undefined> {
  const { run, collection: c } = ctx;
  // Only the report of a host that never came back (reportLocal) carries a `reason`: a collection's own report has none.
  const reported = c?.partial === true && c.reason !== undefined ? c : undefined;
  const lost = run ? run.status === 'lost' || run.phase === 'lost' : reported !== undefined;
  const waiting = run !== undefined && !lost && run.status === 'running' && (run.phase === 'recovering' || run.hostState === 'lost' || run.hostState === 'unreachable');
  if (!lost && !waiting) return undefined;
  // A report of an earlier loss says nothing of a run that still waits for its host.
  const gaveUp = lost ? reported : undefined;
  const probe = ctx.runtime.find((e) => e.phase === 'probe');
  const host = run?.host ?? c?.host ?? probe?.fields['host'] ?? '?';
  const logRel = `${ARTIFACTS_DIR}/${ctx.logFile}`;
  const text = await readText(join(ctx.dir, logRel));
  const lastLine = text === undefined ? undefined : numberedLines(text).filter((l) => l.text.trim()).at(-1);
  const kept = gaveUp?.present ? ` (${gaveUp.present.length} file${gaveUp.present.length === 1 ? '' : 's'} under ${ARTIFACTS_DIR}/ kept${gaveUp.verifiedFiles !== undefined ? `, ${gaveUp.verifiedFiles} verified` : ''})` : '';
  const output = lastLine ? `${logRel}:${lastLine.line} ${JSON.stringify(lastLine.text.trim().slice(0, 200))}${kept}` : `none: no ${logRel} was synced${kept}`;
  const lastEvent = ctx.runtime.at(-1);
  const evidence: Evidence[] = [
    ...(gaveUp ? [{ file: COLLECTION_REPORT, text: `host=${gaveUp.host ?? '?'} partial=true reason=${JSON.stringify(gaveUp.reason)}${gaveUp.collectedAt ? ` collectedAt=${gaveUp.collectedAt}` : ''}` }] : []),
    ...(lastEvent ? [runtimeEv(lastEvent)] : []),
    ...(lastLine ? [ev(logRel, lastLine)] : []),
    ...(disk?.evidence ?? []),
  ];
  const since = run?.lostAt ? ` (found lost at ${run.lostAt})` : '';
  const also = disk ? `; before that, ${disk.summary}` : '';
  if (lost) {
    const given = gaveUp?.collectedAt ? ` (given up at ${gaveUp.collectedAt})` : '';
    return {
      layer: 'runtime',
      status: 'failed',
      kind: 'host-lost',
      summary: `host ${host} stopped answering${since} and did not come back before the collection deadline${given}; the job's last synced output is ${output}${also}`,
      evidence,
    };
  }
  const state = [`phase ${run?.phase ?? '?'}`, ...(run?.hostState && run.hostState !== 'lost' ? [`host ${run.hostState}`] : [])].join(', ');
  return {
    layer: 'runtime',
    status: 'failed',
    kind: 'host-not-answering',
    summary: `host ${host} is not answering${since}; the run waits for it (${state}); the job's last synced output is ${output}${also}`,
    evidence,
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
    const failed = fails.length || 1;
    return { ...base, status: 'failed', kind, summary: `${failed} check${failed === 1 ? '' : 's'} failed (${kind}); first: ${what}`, evidence };
  }
  const checks = new Map(ctx.provenance.map((c) => [c.label, c]));
  const modules = log.entries.filter((e) => e.what.startsWith('module ') || checks.has(e.what));
  // One dependency per module, however many lines check it (a staged fork has its import line and its
  // tree check); a tree check without a module is a dependency of its own.
  const deps = new Map<string, { name: string; version?: string; tree?: string; entries: PrecheckEntry[] }>();
  for (const m of modules) {
    const check = checks.get(m.what);
    const name = check ? (check.module ?? m.what) : m.what.replace(/^module /, '');
    const key = check && !check.module ? `check ${m.what}` : `module ${name}`;
    const dep = deps.get(key) ?? { name, entries: [] };
    dep.entries.push(m);
    if (!check && m.version) dep.version = m.version;
    if (check && m.status === 'ok') {
      const files = /(?:^| )files=(\d+)/.exec(m.message)?.[1];
      dep.tree = `${check.module ? `staged ${check.noun}, ` : ''}${files ? `${files} file${files === '1' ? '' : 's'} verified` : 'verified'}`;
    }
    deps.set(key, dep);
  }
  const passed = [...deps.values()].filter((d) => d.entries.every((e) => e.status === 'ok'));
  const warned = modules.filter((m) => m.status === 'warn');
  const interp = log.entries.find((e) => e.what === 'interpreter');
  const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
  const said = [
    ...(passed.length
      ? [`${plural(passed.length, 'dependency', 'dependencies')} resolved: ${passed.map((d) => [d.name, d.version, d.tree ? `(${d.tree})` : undefined].filter(Boolean).join(' ')).join(', ')}`]
      : []),
    ...(warned.length ? [`${plural(warned.length, 'warning', 'warnings')}, first: ${warned[0]!.what}: ${warned[0]!.message.slice(0, 300)}`] : []),
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
      summary: !start
        ? 'the entrypoint never started'
        : ctx.run && ctx.run.status !== 'running'
          ? `no exit code recorded, and the run ended ${ctx.run.status}: its wrapper was killed, or its host lost, before it could record one`
          : ctx.run
            ? 'no exit code recorded: the run is still going'
            : 'no exit code recorded: the run is still going, or its wrapper was killed before it could record one',
      evidence: dedupeEvidence([...(start ? [runtimeEv(start)] : []), ...ctx.runtime.slice(-2).map(runtimeEv), ...tail]),
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


