/**
 * The bundle contract: schemas of `job.json`, `artifacts/manifest.json` and `runtime/last_run.json`.
 * Node-free, so workflow code may import the types. The core knows no task vocabulary: a job kind
 * and a task type are opaque slugs that plugins choose.
 */
import { z } from 'zod';

export const JOB_SCHEMA_VERSION = 'orbit.job.v1';
export const MANIFEST_SCHEMA_VERSION = 'orbit.manifest.v1';
export const LAST_RUN_SCHEMA_VERSION = 'orbit.last_run.v1';

const slug = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, `${what} must be 1-63 chars of a-z, 0-9, '.', '_', '-', starting with a letter or digit`);

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

export const precheckModuleSchema = z
  .object({
    /** Imported by the precheck with the job's environment (PYTHONPATH included). */
    name: pythonModuleName,
    /** Lowest acceptable version, compared numerically part by part (e.g. "2.1" accepts 2.1.0 and 2.10). */
    minVersion: z.string().regex(/^\d+(\.\d+)*$/, 'minVersion must be dotted numbers such as 2.1 or 0.13.1').optional(),
    /**
     * Bundle path of a staged fork's FORK_MANIFEST.json ({repository, commit, files: {relpath: sha256}},
     * paths relative to the manifest's folder). The module must be imported from that folder and every
     * listed file must match; anything else fails the precheck.
     */
    fork: relativePathSchema
      .refine((p) => p.startsWith('inputs/') || p.startsWith('scripts/'), { message: 'fork must be a path under inputs/ or scripts/ of the bundle' })
      .optional(),
  })
  .strict();
export type PrecheckModule = z.infer<typeof precheckModuleSchema>;

/** What scripts/orbit/run.sh checks before it starts the entrypoint; a failure stops the run with exit code 86. */
export const precheckSchema = z
  .object({
    python: z
      .object({
        /** Program that runs the precheck and imports the modules; should be the one the entrypoint uses. */
        interpreter: z.string().min(1).default('python3'),
        /** Modules the job cannot run without. With none, a missing interpreter is logged, not fatal. */
        modules: z.array(precheckModuleSchema).default([]),
      })
      .strict()
      .default({ interpreter: 'python3', modules: [] }),
  })
  .strict();
export type Precheck = z.infer<typeof precheckSchema>;

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
