/**
 * The sweep file (YAML or JSON): a base request for some task, a matrix of per-axis overrides, and a
 * schedule. Node-free. Example (see examples/sweep.yaml):
 *
 *   name: nightly-scores              # schedule id and folder name; default: the file name
 *   host: local                       # where every cell runs
 *   maxConcurrent: 2                  # cells of one firing running at once
 *   base: { task: evaluation, environments: [...], timeoutSeconds: 300 }
 *   matrix:
 *     checkpoint:                     # an axis: `field` + named `values` ...
 *       field: checkpoint
 *       values: { step-100: ckpt/step-100, step-300: ckpt/step-300 }
 *     env:                            # ... or a list of named overrides merged into the base
 *       - { name: holdout-a, set: { environments: [{ name: holdout-a, datasetPath: data/holdout-a.csv }] } }
 *   schedule:
 *     cron: "0 3 * * *"               # or interval: 6h (offset: 30m)
 *     timezone: Europe/Paris          # IANA name; default UTC
 *     overlap: skip                   # skip | buffer-one | buffer-all | cancel-other | terminate-other | allow-all
 *     catchupWindow: 1h               # how late a missed firing may still start
 */
import { z } from 'zod';
import { strictFields } from '../plugins/common-schema';
import { cronProblem } from './cron';
import { parseDuration } from './duration';

export const SWEEP_NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;
export const SWEEP_NAME_RULE = "1-40 chars of a-z, 0-9 and '-', starting with a letter or digit";

/** Overlap policies by their sweep-file names; the values are the Temporal SDK's. */
export const OVERLAP_POLICIES = {
  skip: 'SKIP',
  'buffer-one': 'BUFFER_ONE',
  'buffer-all': 'BUFFER_ALL',
  'cancel-other': 'CANCEL_OTHER',
  'terminate-other': 'TERMINATE_OTHER',
  'allow-all': 'ALLOW_ALL',
} as const;
export type OverlapName = keyof typeof OVERLAP_POLICIES;
export const OVERLAP_NAMES = Object.keys(OVERLAP_POLICIES) as OverlapName[];

/** `skip`, `SKIP`, `buffer_one`, `BUFFER_ONE` ... -> the sweep-file name, or undefined. */
export function overlapName(text: string): OverlapName | undefined {
  const n = text.trim().toLowerCase().replace(/_/g, '-');
  return (OVERLAP_NAMES as string[]).includes(n) ? (n as OverlapName) : undefined;
}

/** A duration string (`30s`, `5m`, `1h30m`, `2d`) parsed to milliseconds, at least `minMs`. */
function duration(field: string, minMs = 0) {
  return z.unknown().transform((v, ctx) => {
    if (typeof v !== 'string') {
      ctx.addIssue({ code: 'custom', message: `${field} must be a duration with a unit, such as 30s, 5m, 1h30m or 2d${typeof v === 'number' ? ` (got the bare number ${v})` : ''}` });
      return z.NEVER;
    }
    const r = parseDuration(v);
    if (!r.ok) {
      ctx.addIssue({ code: 'custom', message: `${field} ${r.message}` });
      return z.NEVER;
    }
    if (r.ms < minMs) {
      ctx.addIssue({ code: 'custom', message: `${field} must be at least ${minMs / 1000}s (got ${v})` });
      return z.NEVER;
    }
    return r.ms;
  });
}

export function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const cronSchema = z
  .union([z.string(), z.array(z.string()).min(1)], { error: 'schedule.cron must be a cron string such as "0 3 * * *", or a list of them' })
  .transform((v) => (Array.isArray(v) ? v : [v]))
  .superRefine((list, ctx) => {
    list.forEach((expr, i) => {
      const problem = cronProblem(expr);
      if (problem) ctx.addIssue({ code: 'custom', message: `schedule.cron ${problem}`, path: list.length > 1 ? [i] : [] });
    });
  });

export const scheduleSchema = strictFields(
  {
    /** Cron strings (5-7 fields, or @daily etc.), interpreted in `timezone`. */
    cron: cronSchema.optional(),
    /** Fire every this long (at least 1s), e.g. 6h. */
    interval: duration('schedule.interval', 1000).optional(),
    /** With `interval`: shift the firings by this much, e.g. interval 1d + offset 3h = 03:00 UTC daily. */
    offset: duration('schedule.offset').optional(),
    timezone: z
      .string({ error: 'schedule.timezone must be an IANA time zone name such as UTC or Europe/Paris' })
      .default('UTC')
      .refine(validTimeZone, { message: 'schedule.timezone is not a known IANA time zone name; write one such as UTC, Europe/Paris or America/New_York' }),
    /** What a firing does while the previous one still runs. */
    overlap: z
      .string({ error: `schedule.overlap must be one of ${OVERLAP_NAMES.join(', ')}` })
      .default('skip')
      .transform((s, ctx) => {
        const name = overlapName(s);
        if (!name) {
          ctx.addIssue({ code: 'custom', message: `schedule.overlap "${s}" is not one of ${OVERLAP_NAMES.join(', ')}` });
          return z.NEVER;
        }
        return name;
      }),
    /** A firing missed (server down) is still taken when at most this late. */
    catchupWindow: duration('schedule.catchupWindow', 10_000).default(3_600_000),
    /** Pause the schedule when a firing fails (a cell did not succeed). */
    pauseOnFailure: z.boolean({ error: 'schedule.pauseOnFailure must be true or false' }).default(false),
    /** Create the schedule paused. */
    paused: z.boolean({ error: 'schedule.paused must be true or false' }).default(false),
    /** Delay each firing by a random amount up to this. */
    jitter: duration('schedule.jitter').optional(),
  },
  'schedule',
).superRefine((s, ctx) => {
  if (s.cron === undefined && s.interval === undefined) {
    ctx.addIssue({ code: 'custom', path: ['cron'], message: 'schedule needs cron (e.g. cron: "0 3 * * *") or interval (e.g. interval: 6h)' });
  }
  if (s.cron !== undefined && s.interval !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['interval'], message: 'give schedule.cron or schedule.interval, not both' });
  }
  if (s.offset !== undefined && s.interval === undefined) {
    ctx.addIssue({ code: 'custom', path: ['offset'], message: 'schedule.offset only applies to schedule.interval' });
  }
  if (s.offset !== undefined && s.interval !== undefined && s.offset >= s.interval) {
    ctx.addIssue({ code: 'custom', path: ['offset'], message: 'schedule.offset must be shorter than schedule.interval' });
  }
});
export type SweepSchedule = z.infer<typeof scheduleSchema>;

const MATRIX_HINT = 'a mapping of axes, e.g. {checkpoint: {field: checkpoint, values: {step-100: ckpt/step-100}}}';

export const sweepFileSchema = strictFields(
  {
    name: z.string({ error: `name must be a string: ${SWEEP_NAME_RULE}` }).regex(SWEEP_NAME, `name must be ${SWEEP_NAME_RULE}`).optional(),
    description: z.string({ error: 'description must be a string' }).optional(),
    /** Where cells run: "auto" (default: the fleet places each cell when capacity frees), or a host name every cell is pinned to. */
    host: z.string({ error: 'host must be "auto" or a host name such as local' }).min(1, 'host must not be empty').default('auto'),
    /** Cells of one firing running at once. */
    maxConcurrent: z
      .number({ error: 'maxConcurrent must be a whole number from 1 to 100' })
      .int('maxConcurrent must be a whole number')
      .min(1, 'maxConcurrent must be at least 1')
      .max(100, 'maxConcurrent must be at most 100')
      .default(4),
    /** How often each cell's run is probed. */
    pollInterval: duration('pollInterval', 100).default(2000),
    /** The request every cell starts from: `task: <type>` and the task's fields. */
    base: z.record(z.string(), z.unknown(), { error: 'base is required: the request every cell starts from, a mapping with task: <type> and the task\'s fields' }),
    /** Axes of per-cell overrides; cells are every combination of one value per axis. */
    matrix: z.record(z.string(), z.unknown(), { error: `matrix is required: ${MATRIX_HINT}` }),
    schedule: scheduleSchema,
  },
  'a sweep file',
);
export type SweepFile = z.infer<typeof sweepFileSchema>;
export { MATRIX_HINT };
