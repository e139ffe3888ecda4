/**
 * Readers of the bundle's log surfaces, each a pure parser over file text, plus the file lookups the
 * diagnosis and the report share. Everything read came from a rented host: parsed as untrusted text,
 * never thrown on.
 */
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { precheckSchema, progressSchema, type ProgressSpec, type ProvenanceCheck } from '../bundle/schema';

/** The longest file a reader loads; the tail is kept (the end of a log is what explains a failure). */
const MAX_READ_BYTES = 16 * 1024 * 1024;

/** A file's text, or undefined when it is missing or not a plain file. Files over 16 MiB keep their last 16 MiB. */
export async function readText(path: string): Promise<string | undefined> {
  try {
    const st = await lstat(path);
    if (!st.isFile()) return undefined;
    const buf = await readFile(path);
    return (buf.length > MAX_READ_BYTES ? buf.subarray(buf.length - MAX_READ_BYTES) : buf).toString('utf8');
  } catch {
    return undefined;
  }
}

/** Lines of a text, numbered from 1, without the trailing empty line. */
export function numberedLines(text: string): { line: number; text: string }[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.map((t, i) => ({ line: i + 1, text: t.replace(/\r$/, '') }));
}

/** Relative paths (under `root`) of plain files named `name`, sorted; symbolic links are not followed. */
export async function findFiles(root: string, name: string, maxDepth = 12): Promise<string[]> {
  const out: string[] = [];
  async function visit(dir: string, rel: string, depth: number): Promise<void> {
    if (depth > maxDepth) return;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await visit(join(dir, e.name), r, depth + 1);
      else if (e.isFile() && e.name === name) out.push(r);
    }
  }
  await visit(root, '', 0);
  return out.sort();
}

// --- runtime/runtime.log ---------------------------------------------------------------------------

export interface RuntimeEvent {
  line: number;
  /** ISO timestamp as written. */
  time: string;
  /** Milliseconds since the epoch, NaN when the stamp does not parse. */
  ms: number;
  /** First word after the stamp: staged, probe, precheck, audit, start, exec, exit, manifest, done, stop, cancel, ... */
  phase: string;
  /** Everything after the stamp. */
  text: string;
  /** key=value fields of the line (values may be "quoted"). */
  fields: Record<string, string>;
}

const STAMPED = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z) (\S+)(.*)$/;

export function parseRuntimeLog(text: string): RuntimeEvent[] {
  const events: RuntimeEvent[] = [];
  for (const { line, text: t } of numberedLines(text)) {
    const m = STAMPED.exec(t);
    if (!m) continue;
    const fields: Record<string, string> = {};
    for (const f of (m[3] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("([^"]*)"|\S*)/g)) fields[f[1]!] = f[3] ?? f[2] ?? '';
    events.push({ line, time: m[1]!, ms: Date.parse(m[1]!), phase: m[2]!, text: `${m[2]}${m[3] ?? ''}`, fields });
  }
  return events;
}

// --- artifacts/runtime-precheck.log ----------------------------------------------------------------

export interface PrecheckEntry {
  line: number;
  status: 'ok' | 'FAIL' | 'info' | 'warn';
  /** e.g. "interpreter", "module torch", a declared provenance label, "cuda", "driver". */
  what: string;
  message: string;
  /** version=... and path=... when the line states them. */
  version?: string;
  path?: string;
}

export interface PrecheckLog {
  entries: PrecheckEntry[];
  /** The closing "precheck: ok|FAIL" line, when the precheck got that far. */
  verdict?: { ok: boolean; line: number; text: string };
}

export function parsePrecheckLog(text: string): PrecheckLog {
  const log: PrecheckLog = { entries: [] };
  for (const { line, text: t } of numberedLines(text)) {
    const m = /^\[(ok|FAIL|info|warn)\] ([^:]+): (.*)$/.exec(t);
    if (m) {
      const message = m[3]!;
      const version = /(?:^| )version=(\S+)/.exec(message)?.[1];
      const path = /(?:^| )path=(.+?)(?= [a-z_]+=|$)/.exec(message)?.[1];
      log.entries.push({ line, status: m[1] as PrecheckEntry['status'], what: m[2]!, message, ...(version ? { version } : {}), ...(path ? { path } : {}) });
      continue;
    }
    const v = /^precheck: (ok|FAIL)/.exec(t);
    if (v) log.verdict = { ok: v[1] === 'ok', line, text: t };
  }
  return log;
}

// --- JSON lines (progress series, nvml-audit.jsonl) ----------------------------------------------------

/**
 * Parses one JSON line as Python's json module writes it: bare NaN, Infinity and -Infinity become
 * the numbers they name. Undefined for a line that is not a JSON object (e.g. cut short by a crash).
 */
export function parseJsonLine(text: string): Record<string, unknown> | undefined {
  const trimmed = text.trim();
  if (!trimmed.startsWith('{')) return undefined;
  const marked = trimmed.replace(/("(?:[^"\\]|\\.)*")|(-?Infinity|NaN)\b/g, (all, str: string | undefined, word: string | undefined) =>
    str !== undefined ? all : `"\\u0000${word}"`,
  );
  try {
    return JSON.parse(marked, (_k, v: unknown) => {
      if (typeof v === 'string' && v.startsWith('\u0000')) return v === '\u0000NaN' ? NaN : v === '\u0000Infinity' ? Infinity : -Infinity;
      return v;
    }) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

// --- the progress series job.json declares (`progress`, e.g. artifacts/**/logging.jsonl) -----------

export interface MetricPoint {
  line: number;
  /** The record's step, or its position (1-based) when it has none. */
  step: number;
  /** NaN and ±Infinity kept as such; a non-numeric value ("nan", null) is NaN. */
  value: number;
  raw: string;
}

/** One declared metric of a series file: its points, in file order (records without the key are left out). */
export interface MetricSeries {
  key: string;
  label: string;
  goal?: 'min' | 'max';
  points: MetricPoint[];
}

/**
 * The declared metrics of a JSON-lines series file, by the declared step key. `at` continues a file
 * read in parts: the lines and records before `text`, advanced past it on return.
 */
export function parseSeries(text: string, spec: Pick<ProgressSpec, 'step' | 'metrics'>, at: { lines: number; records: number } = { lines: 0, records: 0 }): MetricSeries[] {
  const series: MetricSeries[] = spec.metrics.map((m) => ({ key: m.key, label: m.label ?? m.key, ...(m.goal ? { goal: m.goal } : {}), points: [] }));
  let records = at.records;
  const numbered = numberedLines(text);
  at.lines += numbered.length;
  for (const { line: n, text: t } of numbered) {
    const line = n + at.lines - numbered.length;
    const rec = parseJsonLine(t);
    if (!rec) continue;
    records++;
    at.records = records;
    const s = rec[spec.step];
    const step = typeof s === 'number' && Number.isFinite(s) ? s : records;
    for (const m of series) {
      if (!(m.key in rec)) continue;
      const v = rec[m.key];
      const value = typeof v === 'number' ? v : typeof v === 'string' && /^[+-]?(inf(inity)?)$/i.test(v.trim()) ? (v.trim().startsWith('-') ? -Infinity : Infinity) : NaN;
      m.points.push({ line, step, value, raw: t });
    }
  }
  return series;
}

/** The file `progress` names, relative to `artifactsDir`: a bare name is looked for at any depth, the one with the most headline points wins. */
export async function findSeries(artifactsDir: string, spec: ProgressSpec): Promise<{ rel: string; series: MetricSeries[] } | undefined> {
  const files = spec.file.includes('/') ? [spec.file] : await findFiles(artifactsDir, spec.file);
  let best: { rel: string; series: MetricSeries[] } | undefined;
  for (const f of files) {
    const text = await readText(join(artifactsDir, f));
    if (text === undefined) continue;
    const series = parseSeries(text, spec);
    if (!best || series[0]!.points.length >= best.series[0]!.points.length) best = { rel: f, series };
  }
  return best;
}

/** The `progress` declaration of a raw job.json, or undefined when it has none (or an invalid one). */
export function declaredProgress(job: unknown): ProgressSpec | undefined {
  const raw = (job as { progress?: unknown } | undefined)?.progress;
  if (raw === undefined) return undefined;
  const parsed = progressSchema.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}

/** The declared provenance checks of a raw job.json (older shapes mapped); empty when it has none. */
export function declaredProvenance(job: unknown): ProvenanceCheck[] {
  const parsed = precheckSchema.safeParse((job as { precheck?: unknown } | undefined)?.precheck ?? {});
  return parsed.success ? parsed.data.provenance : [];
}

// --- artifacts/nvml-audit.jsonl ---------------------------------------------------------------------

export interface GpuSample {
  line: number;
  time: string;
  ms: number;
  gpu: number;
  name?: string;
  utilPct: number | null;
  memUsedMib: number | null;
  memTotalMib: number | null;
  raw: string;
}

export interface GpuAudit {
  samples: GpuSample[];
  /** The no-gpu record, when the host had none. */
  noGpu?: { line: number; reason: string; raw: string };
}

export function parseGpuAudit(text: string): GpuAudit {
  const audit: GpuAudit = { samples: [] };
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  for (const { line, text: t } of numberedLines(text)) {
    const rec = parseJsonLine(t);
    if (!rec) continue;
    if (rec['gpu'] === null && rec['status'] === 'no-gpu') {
      audit.noGpu = { line, reason: String(rec['reason'] ?? 'no reason given'), raw: t };
      continue;
    }
    const gpu = num(rec['gpu']);
    if (gpu === null) continue;
    const time = String(rec['time'] ?? '');
    audit.samples.push({
      line,
      time,
      ms: Date.parse(time),
      gpu,
      ...(typeof rec['name'] === 'string' ? { name: rec['name'] } : {}),
      utilPct: num(rec['util_pct']),
      memUsedMib: num(rec['mem_used_mib']),
      memTotalMib: num(rec['mem_total_mib']),
      raw: t,
    });
  }
  return audit;
}

// --- runtime/runtime.log: what the wrapper recorded at the exit and of the disk -----------------------

/** The entrypoint's exit code as runtime.log's last `exit code=N stopping=S` line states it; null without one. */
export function runtimeExitCode(events: RuntimeEvent[]): number | null {
  const exit = [...events].reverse().find((e) => e.phase === 'exit' && /^exit code=/.test(e.text));
  const code = exit?.fields['code'];
  return code !== undefined && /^-?\d{1,6}$/.test(code) ? Number(code) : null;
}

/** Free and total space (MB) of the filesystem holding the run folder, as the wrapper's probe or exit line states it. */
export interface DiskReading {
  event: RuntimeEvent;
  freeMb: number;
  totalMb?: number;
}

/** The disk readings of runtime.log (`disk_free_mb=`, `disk_total_mb=` on the probe and exit lines), in file order. */
export function diskReadings(events: RuntimeEvent[]): DiskReading[] {
  const mb = (v: string | undefined) => (v !== undefined && /^\d{1,12}$/.test(v) ? Number(v) : undefined);
  const out: DiskReading[] = [];
  for (const e of events) {
    const freeMb = mb(e.fields['disk_free_mb']);
    if (freeMb === undefined || (e.phase !== 'probe' && e.phase !== 'exit')) continue;
    const totalMb = mb(e.fields['disk_total_mb']);
    out.push({ event: e, freeMb, ...(totalMb !== undefined && totalMb >= freeMb ? { totalMb } : {}) });
  }
  return out;
}

/** Lines that say a write found the disk full (ENOSPC), in any language a run's programs speak it. */
export const DISK_FULL_LINE = /No space left on device|\bENOSPC\b|\[Errno 28\]/;

// --- runtime/collection.json ---------------------------------------------------------------------------

/**
 * runtime/collection.json as the worker writes it (src/activities/collection.ts): after a collection
 * (`filesFetched`, ...), after one that ended early (`partial`, `ended`), or, for a host that never came
 * back, the report of what the local copy holds (`partial`, `reason`, `present`). Read leniently.
 */
export interface CollectionReport {
  collectedAt?: string;
  host?: string;
  partial: boolean;
  /** Why there was no collection (reportLocal): e.g. "host X did not answer before the collection deadline". */
  reason?: string;
  ended?: { class?: string; reason?: string };
  filesFetched?: number;
  bytesFetched?: number;
  /** Files under artifacts/ the local copy holds (reportLocal and ended collections). */
  present?: string[];
  /** Manifest entries verified in the local copy, when the report lists them. */
  verifiedFiles?: number;
}

export function parseCollectionReport(text: string): CollectionReport | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const r = raw as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v.slice(0, 1000) : undefined);
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const ended = r['ended'] && typeof r['ended'] === 'object' ? (r['ended'] as Record<string, unknown>) : undefined;
  const verified = (r['manifest'] as { verifiedFiles?: unknown } | undefined)?.verifiedFiles;
  const out: CollectionReport = { partial: r['partial'] === true };
  const set = <K extends keyof CollectionReport>(k: K, v: CollectionReport[K] | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  set('collectedAt', str(r['collectedAt']));
  set('host', str(r['host']));
  set('reason', str(r['reason']));
  set('ended', ended ? { ...(str(ended['class']) ? { class: str(ended['class'])! } : {}), ...(str(ended['reason']) ? { reason: str(ended['reason'])! } : {}) } : undefined);
  set('filesFetched', num(r['filesFetched']));
  set('bytesFetched', num(r['bytesFetched']));
  set('present', Array.isArray(r['present']) ? r['present'].filter((p): p is string => typeof p === 'string') : undefined);
  set('verifiedFiles', Array.isArray(verified) ? verified.length : undefined);
  return out;
}

/** The last Python traceback in a log: its header, its innermost frame and its exception line. */
export function lastTraceback(lines: { line: number; text: string }[]) {
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
