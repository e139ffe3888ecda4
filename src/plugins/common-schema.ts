/**
 * Zod building blocks shared by the task plugins' request schemas. Node-free. Every message names
 * its field and says what is expected, so a problem reads well as `path: message`.
 */
import { z } from 'zod';
import { isSafeRelativePath, ON_UNHEALTHY, requestHealthRuleSchema, type RequestHealthRule } from '../bundle/schema';

const quote = (keys: readonly PropertyKey[]) => keys.map((k) => `"${String(k)}"`).join(', ');

/**
 * A strict object: unknown keys are reported with the list of known ones. `what` names the object in
 * messages (e.g. "a training request", "model").
 */
export function strictFields<Shape extends z.ZodRawShape>(shape: Shape, what: string) {
  const known = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code === 'unrecognized_keys') {
        const many = iss.keys.length > 1;
        return `unknown field${many ? 's' : ''} ${quote(iss.keys)} in ${what}; known fields: ${known}`;
      }
      if (iss.code === 'invalid_type') return `${what} must be a mapping of fields (key: value), with fields ${known}`;
      return undefined;
    },
  });
}

/** A required, non-empty string; `hint` says what to put there. */
export function requiredString(field: string, hint: string) {
  const missing = `${field} is required: ${hint}`;
  return z
    .string({ error: (iss) => (iss.input === undefined ? missing : `${field} must be a string: ${hint}`) })
    .trim()
    .min(1, missing);
}

/** A whole number in [min, max]. */
export function wholeNumber(field: string, min: number, max: number) {
  return z
    .number({ error: (iss) => `${field} ${iss.input === undefined ? 'is required' : 'must be a number'}: a whole number from ${min} to ${max}` })
    .int(`${field} must be a whole number (from ${min} to ${max})`)
    .min(min, `${field} must be at least ${min}`)
    .max(max, `${field} must be at most ${max}`);
}

/** A finite number greater than 0 and at most `max`. */
export function positiveNumber(field: string, max: number) {
  return z
    .number({ error: `${field} must be a number greater than 0` })
    .positive(`${field} must be greater than 0`)
    .max(max, `${field} must be at most ${max}`);
}

/**
 * A path under the bundle's `artifacts/` folder where the job writes. `reserved` are artifact names
 * the task writes itself and that this path must not replace.
 */
export function artifactPath(field: string, hint: string, reserved: readonly string[] = []) {
  // An empty path is reported once, as missing, by requiredString.
  return requiredString(field, hint)
    .refine((p) => p === '' || isSafeRelativePath(p), {
      message: `${field} must be a relative path under artifacts/ (${hint}), without a leading '/', '..', '.', empty parts or backslashes`,
    })
    .refine((p) => !reserved.includes(p) && p !== 'manifest.json', {
      message: `${field} must not be ${['manifest.json', ...reserved].join(' or ')}: the job writes those files itself; pick another name`,
    });
}

/** A name a file or score can be keyed by. */
export function slugName(field: string) {
  return requiredString(field, "a short name such as holdout-a").regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/,
    `${field} must be 1-63 characters of A-Z, a-z, 0-9, '.', '_' or '-', starting with a letter or digit`,
  );
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const envName = z
  .string()
  .regex(ENV_NAME, 'env names must be valid environment variable names ([A-Za-z_][A-Za-z0-9_]*)')
  .refine((n) => !n.startsWith('ORBIT_'), { message: 'env names starting with ORBIT_ are reserved for Orbit; rename the variable' });

/** Optional overrides of the task's default resources. */
export const resourceOverridesSchema = strictFields(
  {
    gpus: wholeNumber('resources.gpus', 0, 64).optional(),
    gpuType: requiredString('resources.gpuType', 'a GPU model name such as A100').optional(),
    cpus: wholeNumber('resources.cpus', 1, 1024).optional(),
    memoryGb: positiveNumber('resources.memoryGb', 65536).optional(),
  },
  'resources',
);
export type ResourceOverrides = z.infer<typeof resourceOverridesSchema>;

const PYTHON_MODULE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const VERSION = /^\d+(\.\d+)*$/;

/** A Python module name (dotted identifiers), as the precheck imports it. */
function pythonModule(field: string, maxLength = 200) {
  return z
    .string({ error: (iss) => `${field} ${iss.input === undefined ? 'is required' : 'must be a string'}: a Python module name such as numpy or my_pkg.sub` })
    .regex(PYTHON_MODULE, `${field} must be a Python module name such as numpy or my_pkg.sub (dotted identifiers, no version)`)
    .max(maxLength, `${field} must be at most ${maxLength} characters`);
}

/** A module the job cannot run without: `numpy` or `{name: numpy, minVersion: "1.20"}`. */
export const requestModuleSchema = z.union(
  [
    pythonModule('precheck.modules entries').transform((name): { name: string; minVersion?: string } => ({ name })),
    strictFields(
      {
        name: pythonModule('precheck.modules[].name'),
        minVersion: z
          .string({ error: 'precheck.modules[].minVersion must be a string of dotted numbers; quote it in YAML, e.g. "1.20"' })
          .regex(VERSION, 'precheck.modules[].minVersion must be dotted numbers such as "2.1" or "0.13.1"; quote it in YAML')
          .optional(),
      },
      'a precheck module',
    ),
  ],
  {
    error: (iss) => {
      if (typeof iss.input === 'string') return 'precheck.modules entries must be Python module names such as numpy or my_pkg.sub (dotted identifiers, no version: give one as {name, minVersion})';
      // A mapping with a field of the wrong type: that field's own message (it names the field).
      const own = iss.code === 'invalid_union' && typeof iss.input === 'object' && iss.input !== null ? iss.errors[1]?.[0]?.message : undefined;
      return own ?? 'precheck.modules entries must be a module name such as numpy, or {name: numpy, minVersion: "1.20"}';
    },
  },
);
export type RequestModule = z.infer<typeof requestModuleSchema>;

/** The file at the top of a staged fork's folder that lists its files with their sha256. */
export const FORK_MANIFEST = 'FORK_MANIFEST.json';

/** A staged fork: a folder (an import root, holding FORK_MANIFEST.json) whose copy `module` must be imported from. */
export const requestForkSchema = strictFields(
  {
    /** The fork's folder, relative to the request file: it goes on the job's PYTHONPATH, so `module` is a folder or file at its top. */
    path: requiredString('precheck.forks[].path', `the folder of a staged fork, holding ${FORK_MANIFEST}, relative to the request file`),
    /** The module that must come from the fork (e.g. mylib for the folder's mylib/__init__.py). */
    module: pythonModule('precheck.forks[].module', 64),
  },
  'a precheck fork',
);
export type RequestFork = z.infer<typeof requestForkSchema>;

/** Dependencies a request adds to the ones its task declares; checked on the host before the entrypoint starts. */
export const requestPrecheckSchema = strictFields(
  {
    /** Modules the job needs besides the task's own; a module the task declares too takes the request's minVersion. */
    modules: z
      .array(requestModuleSchema, { error: 'precheck.modules must be a list of module names or {name, minVersion}' })
      .refine((ms) => new Set(ms.map((m) => m.name)).size === ms.length, { message: 'precheck.modules lists a module twice; list each module once' })
      .default([]),
    /** Staged forks: copied into the bundle, verified file by file on the host, their module imported from them. */
    forks: z
      .array(requestForkSchema, { error: `precheck.forks must be a list of {path, module}: folders holding ${FORK_MANIFEST}` })
      .refine((fs) => new Set(fs.map((f) => f.module)).size === fs.length, { message: 'precheck.forks names a module twice; stage each module from one fork' })
      .default([]),
  },
  'precheck',
);
export type RequestPrecheck = z.infer<typeof requestPrecheckSchema>;

/** Fields every task request accepts: how to run it rather than what it does. */
export const runOptionsShape = {
  /** Overrides of the task's default resources (gpus, gpuType, cpus, memoryGb). */
  resources: resourceOverridesSchema.optional(),
  /** Plain environment for the job. Never secrets: name those in `secretEnv`. */
  env: z
    .record(envName, z.string({ error: 'env values must be strings; quote numbers and booleans in YAML, e.g. "1"' }), {
      error: (iss) => {
        if (iss.code === 'invalid_key') return iss.issues[0]?.message ?? 'env names must be valid environment variable names';
        if (iss.code === 'invalid_type') return 'env must be a mapping of NAME: "value"';
        return undefined;
      },
    })
    .default({}),
  /** Names of secrets the worker passes from its own environment; values never enter the bundle. */
  secretEnv: z
    .array(z.string({ error: 'secretEnv entries must be strings' }).regex(ENV_NAME, 'secretEnv entries must be valid environment variable names ([A-Za-z_][A-Za-z0-9_]*)'), {
      error: 'secretEnv must be a list of environment variable names',
    })
    .refine((names) => new Set(names).size === names.length, { message: 'secretEnv lists a name twice; list each secret once' })
    .default([]),
  /** Longest the job may run before Orbit stops it; the core default when absent. */
  timeoutSeconds: wholeNumber('timeoutSeconds', 1, 30 * 24 * 3600).optional(),
  /** How often outputs are copied back while the job runs; the core default (30 s) when absent. */
  syncIntervalSeconds: wholeNumber('syncIntervalSeconds', 1, 24 * 3600).optional(),
  /** Python modules and staged forks the job needs besides the ones its task declares. */
  precheck: requestPrecheckSchema.optional(),
  /** Health rules over the task's own (docs/health.md): a rule replaces the task's of the same name and metric; `onUnhealthy` sets every rule's policy that does not say its own. */
  health: requestHealthSchema().optional(),
};

function requestHealthSchema() {
  return strictFields(
    {
      onUnhealthy: z.enum(ON_UNHEALTHY, { error: `health.onUnhealthy must be one of ${ON_UNHEALTHY.join(', ')}` }).optional(),
      rules: z.array(requestHealthRuleSchema, { error: 'health.rules must be a list of rules, e.g. [{rule: no-output, minutes: 10}]' }).default([]),
    },
    'health',
  );
}

/** A request's `health` field, as parsed. */
export interface RequestHealth {
  onUnhealthy?: (typeof ON_UNHEALTHY)[number];
  rules: RequestHealthRule[];
}

/** The run options of any request, as parsed. */
export interface RunOptions {
  resources?: ResourceOverrides;
  env: Record<string, string>;
  secretEnv: string[];
  timeoutSeconds?: number;
  syncIntervalSeconds?: number;
  precheck?: RequestPrecheck;
  health?: RequestHealth;
}

/**
 * Table format shared by the tasks (read by scripts/tabular.py): CSV, UTF-8, a header row naming
 * every column, then one row per example with a number in every cell; the last column is the target,
 * the others are features. At least two columns and one data row.
 */
export const TABLE_FORMAT =
  'a CSV file with a header row and numbers in every cell (features first, the target last), relative to the request file';

/**
 * The rules an evaluation request states beyond its fields' own (both its forms, built-in and user
 * code): exactly one of `checkpoint` and `model` (two names for one field), and environment names
 * used once. Run also when other fields failed, so one run reports every problem.
 */
export function refineEvaluationRequest(
  req: { checkpoint?: unknown; model?: unknown; environments?: unknown },
  ctx: z.RefinementCtx,
  checkpointHint: string,
): void {
  if (req.checkpoint === undefined && req.model === undefined) {
    ctx.addIssue({ code: 'custom', path: ['checkpoint'], message: `checkpoint is required: ${checkpointHint} (\`model\` is accepted as another name)` });
  }
  if (req.checkpoint !== undefined && req.model !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['model'], message: 'give checkpoint or model, not both: they are two names for the same field' });
  }
  const seen = new Set<string>();
  (Array.isArray(req.environments) ? (req.environments as { name?: unknown }[]) : []).forEach((env, i) => {
    if (typeof env?.name !== 'string') return;
    if (seen.has(env.name)) ctx.addIssue({ code: 'custom', path: ['environments', i, 'name'], message: `name "${env.name}" is used twice; environment names must be unique` });
    seen.add(env.name);
  });
}

/** For editors (JSON Schema): the one rule of refineEvaluationRequest that JSON Schema can say. */
export const CHECKPOINT_OR_MODEL = { oneOf: [{ required: ['checkpoint'] }, { required: ['model'] }] };
