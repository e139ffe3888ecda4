/**
 * The bundle contract: schemas of `job.json`, `artifacts/manifest.json` and `runtime/last_run.json`.
 * Node-free, so workflow code may import the types. The core knows no task vocabulary: a job kind
 * and a task type are opaque slugs that plugins choose.
 */
import { z } from 'zod';

export const JOB_SCHEMA_VERSION = 'orbit.job.v1';
export const MANIFEST_SCHEMA_VERSION = 'orbit.manifest.v1';
export const LAST_RUN_SCHEMA_VERSION = 'orbit.last_run.v1';

/** A slug: a job id, job kind or task type (1-63 chars of a-z, 0-9, '.', '_', '-', starting with a letter or digit). */
export const SLUG_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

const slug = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .regex(SLUG_PATTERN, `${what} must be 1-63 chars of a-z, 0-9, '.', '_', '-', starting with a letter or digit`);

/** A relative POSIX path that stays inside its folder: no absolute path, no `..`, no empty part. */
export const relativePathSchema = z
  .string()
  .min(1, 'path must not be empty')
  .max(4096, 'path is longer than 4096 characters')
  .refine((p) => isSafeRelativePath(p), {
    message: "path must be relative, use '/', and contain no '..', '.', empty part, backslash or NUL",
  });

export function isSafeRelativePath(p: string): boolean {
  if (p.length === 0 || p.startsWith('/') || p.includes('\\') || p.includes('\0')) return false;
  return p.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)');

export const resourcesSchema = z
  .object({
    gpus: z.number().int('gpus must be a whole number').min(0, 'gpus must be 0 or more').default(0),
    gpuType: z.string().min(1).optional(),
    cpus: z.number().int('cpus must be a whole number').min(1, 'cpus must be at least 1').default(1),
    memoryGb: z.number().positive('memoryGb must be more than 0').default(1),
  })
  .strict();
export type Resources = z.infer<typeof resourcesSchema>;

export const timeoutsSchema = z
  .object({
    /** Longest the entrypoint may run before Orbit stops it. */
    runSeconds: z.number().int().positive('runSeconds must be more than 0').default(24 * 3600),
    /** Longest staging may take. */
    stageSeconds: z.number().int().positive().default(30 * 60),
    /** Longest one collection attempt may take. */
    collectSeconds: z.number().int().positive().default(60 * 60),
    /** Grace between TERM and KILL when a run is cancelled or times out. */
    killGraceSeconds: z.number().int().min(0).default(10),
  })
  .strict();
export type Timeouts = z.infer<typeof timeoutsSchema>;

export const syncSchema = z
  .object({
    /** How often new and grown files under artifacts/ and runtime/ are copied back while the job runs. */
    intervalSeconds: z.number().int().positive('sync.intervalSeconds must be more than 0').default(30),
    /**
     * Folders under artifacts/ whose sub-folders are written as units (one per saved state): a
     * sub-folder is copied back only once it holds the marker file, so a half-written one never is.
     */
    atomicDirs: z
      .array(z.object({ parent: relativePathSchema, marker: z.string().regex(/^[A-Za-z0-9._-]+$/, 'marker must be a plain file name') }).strict())
      .default([]),
  })
  .strict();
export type SyncSpec = z.infer<typeof syncSchema>;

/** A Python module name: dotted identifiers, e.g. `torch` or `my_pkg.sub`. */
const pythonModuleName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/, 'must be a Python module name such as numpy or my_pkg.sub');

/** A bundle path under inputs/ or scripts/: frozen with the bundle, so a check can rely on it. */
const frozenPath = (what: string) =>
  relativePathSchema.refine((p) => p.startsWith('inputs/') || p.startsWith('scripts/'), { message: `${what} must be a path under inputs/ or scripts/ of the bundle` });

export const precheckModuleSchema = z
  .object({
    /** Imported by the precheck with the job's environment (PYTHONPATH included). */
    name: pythonModuleName,
    /** Lowest acceptable version, compared numerically part by part (e.g. "2.1" accepts 2.1.0 and 2.10). */
    minVersion: z.string().regex(/^\d+(\.\d+)*$/, 'minVersion must be dotted numbers such as 2.1 or 0.13.1').optional(),
    /**
     * @deprecated Read only from bundles built before `precheck.provenance` existed: the bundle path
     * of a staged copy's manifest. Parsing maps it to a `tree-manifest` provenance check (see below).
     */
    fork: frozenPath('fork').optional(),
  })
  .strict();
export type PrecheckModule = Omit<z.infer<typeof precheckModuleSchema>, 'fork'>;

/**
 * A staged tree checked against its manifest before the entrypoint starts. The manifest is JSON:
 * `{repository?, commit?, files}`, `files` either `{relpath: digest}` or `[{path, sha256 | oid}]`,
 * paths relative to `root`. Every listed file must be there with its digest; with `module`, that
 * module must be imported (with the job's environment) from a listed file inside `root`.
 * Example, a patched copy of a library staged under inputs/:
 *   {kind: "tree-manifest", label: "fork mylib", noun: "fork", manifest: "inputs/fork/FORK_MANIFEST.json", module: "mylib"}
 */
export const treeManifestCheckSchema = z
  .object({
    kind: z.literal('tree-manifest'),
    /** The check's name in artifacts/runtime-precheck.log and the report; no ':' (the log line splits there). */
    label: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 ._@+/-]{0,79}$/, 'label must be 1-80 chars of A-Z, a-z, 0-9, space, ".", "_", "@", "+", "/", "-"'),
    /** What the tree is, in messages ("the staged <noun> repo@commit") and the diagnosis kind ("<noun>-mismatch"). */
    noun: z.string().regex(/^[a-z][a-z0-9 -]{0,31}$/, 'noun must be 1-32 chars of a-z, 0-9, space and "-", starting with a letter').default('tree'),
    /** Bundle path of the manifest. */
    manifest: frozenPath('manifest'),
    /** Bundle folder the listed paths are relative to; default: the manifest's folder. */
    root: frozenPath('root').optional(),
    /** A file's digest: `sha256` of its bytes, or `git-blob`, git's blob id (sha1 of "blob <size>\0" + bytes). */
    digest: z.enum(['sha256', 'git-blob']).default('sha256'),
    /** A Python module that must come from the tree. */
    module: pythonModuleName.optional(),
    /** false: a difference is logged as a warning and the run goes on (for a task that enforces it itself). */
    required: z.boolean().default(true),
  })
  .strict();

/** One declared provenance check; `kind` picks what precheck.py does with it. */
export const provenanceCheckSchema = z.discriminatedUnion('kind', [treeManifestCheckSchema]);
export type ProvenanceCheck = z.infer<typeof provenanceCheckSchema>;
export type ProvenanceCheckInput = z.input<typeof provenanceCheckSchema>;

/** What scripts/orbit/run.sh checks before it starts the entrypoint; a failure stops the run with exit code 86. */
export const precheckSchema = z
  .object({
    python: z
      .object({
        /** Program that runs the precheck and imports the modules; should be the one the entrypoint uses. */
        interpreter: z.string().min(1).default('python3'),
        /** Modules the job cannot run without. With no modules and no provenance checks, a missing interpreter is logged, not fatal. */
        modules: z.array(precheckModuleSchema).default([]),
      })
      .strict()
      .default({ interpreter: 'python3', modules: [] }),
    /** Provenance checks the plugin declares (a plugin fills them in; the core knows no task's trees). */
    provenance: z.array(provenanceCheckSchema).default([]),
  })
  .strict()
  .transform(({ python, provenance }) => {
    // Bundles built before `provenance` named a module's staged copy in `modules[].fork`: same check, old log label.
    const legacy = python.modules.flatMap((m): ProvenanceCheck[] =>
      m.fork ? [{ kind: 'tree-manifest', label: `fork ${m.name}`, noun: 'fork', manifest: m.fork, module: m.name, digest: 'sha256', required: true }] : [],
    );
    const modules: PrecheckModule[] = python.modules.map((m) => ({ name: m.name, ...(m.minVersion !== undefined ? { minVersion: m.minVersion } : {}) }));
    return { python: { interpreter: python.interpreter, modules }, provenance: [...legacy, ...provenance] };
  });
export type Precheck = z.infer<typeof precheckSchema>;

export const progressMetricSchema = z
  .object({
    /** The record's key holding the value, e.g. "loss" or "reward". */
    key: z.string().min(1).max(128),
    /** Name in the report and the diagnosis; default: the key. */
    label: z.string().min(1).max(128).optional(),
    /** Which way is progress. With a goal the stall rule judges the metric; without, it is charted and checked for NaN/inf only. */
    goal: z.enum(['min', 'max']).optional(),
  })
  .strict();
export type ProgressMetric = z.infer<typeof progressMetricSchema>;

/**
 * The bundle's progress series: what the diagnosis judges (NaN/inf, stall) and the report charts.
 * Optional: a bundle without one gets no progress rules and no chart. Example, as a plugin declares it:
 *   {file: "logging.jsonl", format: "jsonl", step: "step", metrics: [{key: "loss", goal: "min"}]}
 */
export const progressSchema = z
  .object({
    /**
     * The series file under artifacts/. A bare name (no '/') is looked for at any depth and the file
     * with the most points wins (e.g. one copy per checkpoint); a path names exactly one file.
     */
    file: relativePathSchema,
    /** `jsonl`: one JSON object per line; NaN and Infinity as Python's json module writes them. */
    format: z.literal('jsonl').default('jsonl'),
    /** The record's key holding the step; a record without it gets its position (1-based). */
    step: z.string().min(1).max(128).default('step'),
    /** The metrics judged and charted, in order; the first is the headline one. */
    metrics: z
      .array(progressMetricSchema)
      .min(1, 'progress.metrics must name at least one metric')
      .refine((ms) => new Set(ms.map((m) => m.key)).size === ms.length, { message: 'progress.metrics names the same key twice' }),
  })
  .strict();
export type ProgressSpec = z.infer<typeof progressSchema>;
export type ProgressSpecInput = z.input<typeof progressSchema>;

/** What a run does when a health rule finds it unhealthy: warn only, stop it (fail naming the rule), or relaunch it elsewhere from its newest synced checkpoint. */
export const ON_UNHEALTHY = ['warn', 'stop', 'relaunch'] as const;
const onUnhealthy = z.enum(ON_UNHEALTHY, { error: `onUnhealthy must be one of ${ON_UNHEALTHY.join(', ')}` }).default('warn');
const minutes = (what: string) => z.number({ error: `${what} must be a number of minutes` }).positive(`${what} must be above 0`).max(7 * 24 * 60, `${what} must be at most a week`);

/**
 * The health rules (docs/health.md). Each rule reads what the monitor syncs (the task log's growth,
 * the progress series, artifacts/nvml-audit.jsonl, the probe's free disk) and finds the run ok, in
 * warning or unhealthy; `onUnhealthy` says what an unhealthy verdict does. The live monitor and
 * `orbit diagnose` evaluate the same rules (src/health/rules.ts).
 */
function healthRules<P extends z.ZodType>(onUnhealthy: P) {
  return z.discriminatedUnion('rule', [
  /** No new task-log byte or progress record for `minutes` (warning at half of it). */
  z.object({ rule: z.literal('no-output'), minutes: minutes('minutes').default(10), onUnhealthy }).strict(),
  /** A progress metric became NaN or infinite. */
  z.object({ rule: z.literal('not-finite'), metric: z.string().min(1), onUnhealthy }).strict(),
  /**
   * A progress metric with a goal has not improved beyond its noise: the least-squares trend over the
   * last half of its points (at least `minPoints`) is under `tStat` standard errors the right way.
   * Warning when it is so now; unhealthy when it was so `patience` points ago too.
   */
  z
    .object({
      rule: z.literal('stalled'),
      metric: z.string().min(1),
      minPoints: z.number().int().min(5).max(1_000_000).default(40),
      patience: z.number().int().min(1).max(10_000_000).default(100),
      tStat: z.number().positive().max(100).default(3),
      onUnhealthy,
    })
    .strict(),
  /** Utilization below `belowPct` on every GPU of the run for `minutes` (warning at half of it). */
  z.object({ rule: z.literal('gpu-idle'), belowPct: z.number().min(0).max(100).default(5), minutes: minutes('minutes').default(10), onUnhealthy }).strict(),
  /** GPU memory at `limitFraction` of the total and climbing (warning within 5 points of it). */
  z.object({ rule: z.literal('gpu-memory'), limitFraction: z.number().gt(0).max(1).default(0.95), onUnhealthy }).strict(),
  /** The host's disk under the run folder has less than `minFreeMb` free (warning under twice that). */
  z.object({ rule: z.literal('disk'), minFreeMb: z.number().min(0).max(1e9).default(1024), onUnhealthy }).strict(),
  ]);
}
export const healthRuleSchema = healthRules(onUnhealthy);
/** A rule as a request writes it: without `onUnhealthy` it takes the request's `health.onUnhealthy`, else the task's. */
export const requestHealthRuleSchema = healthRules(z.enum(ON_UNHEALTHY, { error: `onUnhealthy must be one of ${ON_UNHEALTHY.join(', ')}` }).optional());
export type RequestHealthRule = z.infer<typeof requestHealthRuleSchema>;
export type HealthRule = z.infer<typeof healthRuleSchema>;
export type HealthRuleInput = z.input<typeof healthRuleSchema>;
export type HealthRuleName = HealthRule['rule'];

export const healthSchema = z
  .object({
    rules: z
      .array(healthRuleSchema)
      .default([])
      .refine((rs) => new Set(rs.map((r) => ('metric' in r ? `${r.rule}:${r.metric}` : r.rule))).size === rs.length, { message: 'health.rules lists the same rule twice' }),
  })
  .strict();
export type HealthSpec = z.infer<typeof healthSchema>;
export type HealthSpecInput = z.input<typeof healthSchema>;

export const jobSpecSchema = z
  .object({
    schemaVersion: z.literal(JOB_SCHEMA_VERSION, { error: `schemaVersion must be "${JOB_SCHEMA_VERSION}"` }),
    jobId: slug('jobId'),
    /** Opaque kind chosen by the plugin that built the bundle. */
    jobKind: slug('jobKind'),
    /** The plugin that built the bundle and will summarize its result. */
    taskType: slug('taskType'),
    createdAt: z.iso.datetime({ error: 'createdAt must be an ISO-8601 UTC timestamp' }),
    resources: resourcesSchema,
    /** Plain environment for the entrypoint. Never secrets: those go in `secretEnv` by name. */
    env: z.record(envName, z.string()).default({}),
    /** Names of secrets the worker resolves from its own environment at launch. Values never enter the bundle. */
    secretEnv: z.array(envName).default([]),
    /**
     * The folder under `artifacts/` for the job's results: run.sh exports it as ORBIT_OUTPUT_DIR
     * (docs/job-contract.md). Absent: `artifacts/` itself.
     */
    outputDir: relativePathSchema.optional(),
    /** Files under `inputs/` the job reads (relative to `inputs/`). */
    inputs: z.array(z.object({ path: relativePathSchema, description: z.string().optional() }).strict()).default([]),
    /** Outputs the job must leave under `artifacts/` (relative to `artifacts/`). */
    expectedOutputs: z
      .array(z.object({ path: relativePathSchema, required: z.boolean().default(true) }).strict())
      .default([]),
    entrypoint: z
      .object({
        /** argv run from the bundle root, e.g. ["python3", "scripts/main.py"]. */
        command: z.array(z.string().min(1)).min(1, 'entrypoint.command must name a program'),
        /** The task log under `artifacts/` that receives stdout and stderr. */
        logFile: relativePathSchema
          .regex(/^[A-Za-z0-9._/-]+$/, 'entrypoint.logFile may use only A-Z, a-z, 0-9, ".", "_", "-" and "/"')
          .default('task.log'),
      })
      .strict(),
    timeouts: timeoutsSchema.default(timeoutsSchema.parse({})),
    /** Dependency provenance checked before the entrypoint starts (artifacts/runtime-precheck.log). */
    precheck: precheckSchema.default(precheckSchema.parse({})),
    /** The progress series the diagnosis judges and the report charts; absent in bundles without one (and older ones). */
    progress: progressSchema.optional(),
    /** Health rules the monitor evaluates live and `orbit diagnose` after the fact; absent in older bundles (no rules). */
    health: healthSchema.optional(),
    sync: syncSchema.default(syncSchema.parse({})),
    metadata: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  })
  .strict();
export type JobSpec = z.infer<typeof jobSpecSchema>;
export type JobSpecInput = z.input<typeof jobSpecSchema>;

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'sha256 must be 64 lowercase hex characters');

export const manifestEntrySchema = z
  .object({
    path: relativePathSchema,
    size: z.number().int().min(0),
    sha256: sha256Hex,
  })
  .strict();
export type ManifestEntry = z.infer<typeof manifestEntrySchema>;

/** The manifest's outer shape, its entries unchecked: parseManifest checks each entry on its own. */
export const manifestEnvelopeSchema = z
  .object({
    schemaVersion: z.literal(MANIFEST_SCHEMA_VERSION),
    createdAt: z.string(),
    files: z.array(z.unknown()),
  })
  .strict();

export const manifestSchema = z
  .object({
    schemaVersion: z.literal(MANIFEST_SCHEMA_VERSION),
    createdAt: z.string(),
    files: z.array(manifestEntrySchema),
  })
  .strict()
  .refine((m) => new Set(m.files.map((f) => f.path)).size === m.files.length, {
    message: 'manifest lists the same path twice',
    path: ['files'],
  });
export type Manifest = z.infer<typeof manifestSchema>;

export const lastRunSchema = z
  .object({
    schemaVersion: z.literal(LAST_RUN_SCHEMA_VERSION),
    runId: z.string(),
    hostname: z.string(),
    pid: z.number().int(),
    startedAt: z.string(),
    endedAt: z.string(),
    exitCode: z.number().int(),
  })
  .strict();
export type LastRun = z.infer<typeof lastRunSchema>;
