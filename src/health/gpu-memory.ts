/**
 * Did a GPU run out of memory? A pure judgement over memory samples (the GPU audit's, or a live
 * check's), shared by the diagnosis (src/diagnose, layer gpu) and a live health check. Node-free.
 *
 * A GPU counts as out of memory only when all three hold:
 *   - at the limit: its memory reached `limitFraction` of the total within the final window;
 *   - climbing: within that window it rose by at least `climbFraction` of the total to that peak
 *     (memory held flat near the limit is an allocator's cache, not an allocation that failed);
 *   - near the end: its last sample at the limit is at most `nearEndMs` before the exit.
 * A kill that comes long after the last sample, or after a flat plateau, is not called out of memory.
 */

/** One memory reading of one GPU. `ms`: milliseconds since the epoch (NaN when its time did not parse). */
export interface GpuMemorySample {
  ms: number;
  gpu: number;
  memUsedMib: number | null;
  memTotalMib: number | null;
}

export interface GpuMemoryOptions {
  /** Share of the total at or above which memory is at the limit (default 0.95). */
  limitFraction?: number;
  /** Least rise, as a share of the total, within the final window that counts as a climb (default 0.1). */
  climbFraction?: number;
  /** Longest time from the last at-limit sample to the exit for the exit to be "at" the limit (default 10 s). */
  nearEndMs?: number;
  /** The final window: samples at most this long before a GPU's last sample (default 60 s). Samples without a time: the last tenth, at least 5. */
  windowMs?: number;
}

export const GPU_MEMORY_DEFAULTS: Required<GpuMemoryOptions> = { limitFraction: 0.95, climbFraction: 0.1, nearEndMs: 10_000, windowMs: 60_000 };

/** What the samples of one GPU say. The sample fields are the caller's own objects (with whatever else they carry). */
export interface GpuMemoryVerdict<S extends GpuMemorySample = GpuMemorySample> {
  gpu: number;
  /** Samples of this GPU with a memory reading. */
  samples: number;
  /** The final window's peak is at or above the limit. */
  atLimit: boolean;
  /** Within the final window memory rose by at least climbFraction to that peak. */
  climbing: boolean;
  /** The last at-limit sample is within nearEndMs of the end (false when not at the limit). */
  nearEnd: boolean;
  /** atLimit && climbing && nearEnd. */
  outOfMemory: boolean;
  /** Time of this GPU's last sample with a reading (NaN when it has no time). */
  lastSampleMs: number;
  /** From the last at-limit sample to the end, in ms; undefined when not at the limit or a time is unknown. */
  gapMs?: number;
  /** The lowest sample of the final window before its peak (where a climb starts). */
  low?: S;
  /** The final window's highest sample (the first of equals). */
  peak?: S;
  /** The last at-limit sample. */
  lastAtLimit?: S;
  /** The last sample with a reading. */
  last?: S;
  /** The highest sample of the whole series. */
  maxSample?: S;
  /** One line: why this GPU is, or is not, out of memory. */
  reason: string;
}

const share = (s: GpuMemorySample) => s.memUsedMib! / s.memTotalMib!;
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const secs = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;

/**
 * Judges every GPU in `samples` (any order; grouped by `gpu`, sorted by time within a GPU).
 * `exitMs`: when the process ended; undefined when unknown (then the end is the last sample of all
 * GPUs). A live check passes the present time. Verdicts are sorted by GPU; a GPU without a single
 * memory reading gets none.
 */
export function judgeGpuMemory<S extends GpuMemorySample>(samples: readonly S[], exitMs: number | undefined, options: GpuMemoryOptions = {}): GpuMemoryVerdict<S>[] {
  const o = { ...GPU_MEMORY_DEFAULTS, ...definedOnly(options) };
  const valid = samples.filter((s) => Number.isFinite(s.gpu) && typeof s.memUsedMib === 'number' && Number.isFinite(s.memUsedMib) && typeof s.memTotalMib === 'number' && s.memTotalMib > 0);
  const exitKnown = typeof exitMs === 'number' && Number.isFinite(exitMs);
  const endMs = exitKnown ? exitMs : valid.reduce((a, s) => (Number.isFinite(s.ms) && !(s.ms <= a) ? s.ms : a), NaN);
  const byGpu = new Map<number, S[]>();
  for (const s of valid) byGpu.set(s.gpu, [...(byGpu.get(s.gpu) ?? []), s]);
  return [...byGpu]
    .sort((a, b) => a[0] - b[0])
    .map(([gpu, list]) => judgeOne(gpu, stableByTime(list), endMs, exitKnown, o));
}

function definedOnly(o: GpuMemoryOptions): GpuMemoryOptions {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => typeof v === 'number' && Number.isFinite(v))) as GpuMemoryOptions;
}

/** Sorted by time where times are known; samples without a time keep their place relative to each other. */
function stableByTime<S extends GpuMemorySample>(list: S[]): S[] {
  if (list.some((s) => !Number.isFinite(s.ms))) return list;
  return list.map((s, i) => ({ s, i })).sort((a, b) => a.s.ms - b.s.ms || a.i - b.i).map((x) => x.s);
}

function judgeOne<S extends GpuMemorySample>(gpu: number, list: S[], endMs: number, exitKnown: boolean, o: Required<GpuMemoryOptions>): GpuMemoryVerdict<S> {
  const last = list.at(-1)!;
  const timed = list.every((s) => Number.isFinite(s.ms));
  const window = timed ? list.filter((s) => s.ms >= last.ms - o.windowMs) : list.slice(-Math.max(5, Math.ceil(list.length / 10)));
  const peak = window.reduce((a, s) => (share(s) > share(a) ? s : a));
  const beforePeak = window.slice(0, window.indexOf(peak) + 1);
  const low = beforePeak.reduce((a, s) => (share(s) < share(a) ? s : a));
  const maxSample = list.reduce((a, s) => (share(s) > share(a) ? s : a));
  const atLimit = share(peak) >= o.limitFraction;
  const climbing = share(peak) - share(low) >= o.climbFraction;
  const lastAtLimit = atLimit ? [...window].reverse().find((s) => share(s) >= o.limitFraction) : undefined;
  const gapMs = lastAtLimit && Number.isFinite(lastAtLimit.ms) && Number.isFinite(endMs) ? Math.max(0, endMs - lastAtLimit.ms) : undefined;
  // Without times the at-limit sample must be the last one: the end cannot be measured otherwise.
  const nearEnd = lastAtLimit !== undefined && (gapMs !== undefined ? gapMs <= o.nearEndMs : lastAtLimit === last);
  const outOfMemory = atLimit && climbing && nearEnd;
  const endWord = exitKnown ? 'the exit' : 'the last sample';
  let reason: string;
  if (!atLimit) reason = `GPU ${gpu} stayed below the limit: peak ${pct(share(maxSample))} (limit ${pct(o.limitFraction)})`;
  else if (!climbing) reason = `GPU ${gpu} held ${pct(share(peak))} flat (it rose less than ${pct(o.climbFraction)} in its last ${timed ? secs(o.windowMs) : `${window.length} samples`}): a full cache, not a climb to the limit`;
  else if (!nearEnd)
    reason =
      gapMs !== undefined
        ? `GPU ${gpu} climbed to ${pct(share(peak))}, but its last sample at the limit was ${secs(gapMs)} before ${endWord} (more than ${secs(o.nearEndMs)})`
        : `GPU ${gpu} climbed to ${pct(share(peak))}, but later samples fell below the limit`;
  else reason = `GPU ${gpu} climbed from ${pct(share(low))} to ${pct(share(peak))}${gapMs !== undefined ? `, ${secs(gapMs)} before ${endWord}` : ' at its last sample'}: out of GPU memory`;
  return {
    gpu,
    samples: list.length,
    atLimit,
    climbing,
    nearEnd,
    outOfMemory,
    lastSampleMs: last.ms,
    ...(gapMs !== undefined ? { gapMs } : {}),
    low,
    peak,
    ...(lastAtLimit ? { lastAtLimit } : {}),
    last,
    maxSample,
    reason,
  };
}
