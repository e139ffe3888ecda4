/**
 * Reads the health rules' facts from a bundle folder: the progress series, the GPU audit and the task
 * log's last line. The live monitor reads them from the files each sync brought; `orbit diagnose`
 * from the collected bundle. Reads only what some rule needs.
 */
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { healthSchema, type HealthSpec, type ProgressSpec } from '../bundle/schema';
import { ARTIFACTS_DIR, GPU_AUDIT_LOG, JOB_FILE } from '../common/layout';
import { findFiles, findSeries, parseGpuAudit, parseSeries, readText, type MetricSeries } from '../diagnose/sources';
import type { HealthFacts } from './rules';

export interface FactSources {
  health?: HealthSpec;
  progress?: ProgressSpec;
  /** The task log under artifacts/ (job.json entrypoint.logFile). */
  logFile: string;
}

const needs = (spec: HealthSpec | undefined, names: string[]) => (spec?.rules ?? []).some((r) => names.includes(r.rule));

/** The facts of the bundle in `dir` that the rules of `src.health` read (without the clock and output times: the caller's). */
export async function readFileFacts(dir: string, src: FactSources, series?: GrowingSeries): Promise<Pick<HealthFacts, 'progress' | 'gpu' | 'lastOutputLine'>> {
  const out: Pick<HealthFacts, 'progress' | 'gpu' | 'lastOutputLine'> = {};
  if (src.progress && needs(src.health, ['not-finite', 'stalled'])) {
    const found = series ? await series.read() : await findSeries(join(dir, ARTIFACTS_DIR), src.progress);
    if (found) out.progress = { file: `${ARTIFACTS_DIR}/${found.rel}`, series: found.series };
  }
  if (needs(src.health, ['gpu-idle', 'gpu-memory'])) {
    const text = await readText(join(dir, GPU_AUDIT_LOG));
    if (text !== undefined) out.gpu = { samples: parseGpuAudit(text).samples };
  }
  if (needs(src.health, ['no-output'])) {
    const rel = `${ARTIFACTS_DIR}/${src.logFile}`;
    const last = await lastLine(join(dir, rel));
    if (last !== undefined) out.lastOutputLine = { file: rel, text: last };
  }
  return out;
}

/** The last non-empty line of a file, reading only its end; undefined when it has none. */
export async function lastLine(path: string, tailBytes = 8192): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
    const { size } = await fh.stat();
    const length = Math.min(size, tailBytes);
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, size - length);
    const lines = buf.toString('utf8').split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim());
    return lines.at(-1)?.slice(0, 400);
  } catch {
    return undefined;
  } finally {
    await fh?.close();
  }
}

/** The health rules job.json declares in `dir` (read leniently, as the diagnosis reads job.json); undefined when none or unreadable. */
export async function declaredHealth(dir: string): Promise<HealthSpec | undefined> {
  try {
    const job = JSON.parse(await readFile(join(dir, JOB_FILE), 'utf8')) as { health?: unknown };
    if (job.health === undefined) return undefined;
    const parsed = healthSchema.safeParse(job.health);
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

interface SeriesFile {
  size: number;
  /** A last line still being written (no newline yet): parsed once it is complete. */
  rest: string;
  at: { lines: number; records: number };
  series: MetricSeries[];
}

/**
 * The progress series read as it grows: each call reads only the bytes appended since the last (a
 * file that shrank is read again from its start), so a live check costs the new records, not the
 * whole series. Picks the file as findSeries does (a bare name: the copy with the most points).
 */
export class GrowingSeries {
  private readonly files = new Map<string, SeriesFile>();

  constructor(
    private readonly artifactsDir: string,
    private readonly spec: ProgressSpec,
  ) {}

  async read(): Promise<{ rel: string; series: MetricSeries[] } | undefined> {
    const rels = this.spec.file.includes('/') ? [this.spec.file] : await findFiles(this.artifactsDir, this.spec.file);
    let best: { rel: string; series: MetricSeries[] } | undefined;
    const points = (s: MetricSeries[]) => s[0]?.points.length ?? 0;
    for (const rel of rels) {
      const file = await this.grow(rel);
      if (file && (!best || points(file.series) > points(best.series))) best = { rel, series: file.series };
    }
    return best;
  }

  private async grow(rel: string): Promise<SeriesFile | undefined> {
    const path = join(this.artifactsDir, rel);
    let fh;
    try {
      fh = await open(path, 'r');
      const { size } = await fh.stat();
      let f = this.files.get(rel);
      if (!f || size < f.size) {
        f = { size: 0, rest: '', at: { lines: 0, records: 0 }, series: parseSeries('', this.spec) };
        this.files.set(rel, f);
      }
      if (size > f.size) {
        const buf = Buffer.alloc(size - f.size);
        const { bytesRead } = await fh.read(buf, 0, buf.length, f.size);
        f.size += bytesRead;
        const text = f.rest + buf.subarray(0, bytesRead).toString('utf8');
        const cut = text.lastIndexOf('\n') + 1;
        f.rest = text.slice(cut);
        const more = parseSeries(text.slice(0, cut), this.spec, f.at);
        more.forEach((m, i) => f!.series[i]!.points.push(...m.points));
      }
      return f;
    } catch {
      return undefined;
    } finally {
      await fh?.close();
    }
  }
}
