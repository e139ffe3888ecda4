/**
 * The user-code form of the training and evaluation requests (YAML or JSON, camelCase), SkyPilot's
 * task shape: a `workdir` copied into the bundle, a `setup` and a `run` command, and the task's own
 * inputs. Node-free. A request with `workdir` or `run` is of this form; see docs/job-contract.md for
 * what the job gets. Example (training):
 *
 *   workdir: .                          # or {path: ., exclude: [data/raw/], maxSizeMb: 500}, or {repository, commit}
 *   setup: pip install -r requirements.txt
 *   run: python3 train.py --steps 200   # bash -c in the copied workdir, or an argv list
 *   datasets: { train: data/train.csv } # name -> file or folder; ORBIT_DATASET_TRAIN
 *   outputDir: out                      # under artifacts/: ORBIT_OUTPUT_DIR
 *   metrics: [loss]                     # keys of ORBIT_METRICS_FILE's records (health, diagnosis, report)
 */
import { z } from 'zod';
import { artifactPath, CHECKPOINT_OR_MODEL, refineEvaluationRequest, requiredString, runOptionsShape, slugName, strictFields } from '../common-schema';
import { commitProblem } from '../upstream/schema';

/** The workdir size over which a request is refused unless it raises `workdir.maxSizeMb`. */
export const DEFAULT_WORKDIR_MAX_MB = 100;
/** Files the runner writes under artifacts/ itself; an outputDir must not be one of them. */
export const WORKLOAD_RECORD = 'workload.json';
export const WORKLOAD_LOG = 'job.log';

const WORKDIR_HINT = 'the folder of your code, relative to the request file (e.g. "."), or {path, exclude, maxSizeMb}, or {repository, commit}';

const copyLimits = {
    /** gitignore-style patterns, relative to the workdir, left out of the bundle besides what .gitignore leaves out. */
    exclude: z
      .array(z.string({ error: 'workdir.exclude entries must be strings: gitignore patterns such as data/raw/ or *.ckpt' }).trim().min(1, 'workdir.exclude entries must not be empty'), {
        error: 'workdir.exclude must be a list of gitignore patterns, e.g. [data/raw/, "*.ckpt"]',
      })
      .default([]),
    maxSizeMb: z
      .number({ error: 'workdir.maxSizeMb must be a number of megabytes' })
      .positive('workdir.maxSizeMb must be more than 0')
      .max(100_000, 'workdir.maxSizeMb must be at most 100000 (100 GB): stage data that large as a dataset, not code')
      .default(DEFAULT_WORKDIR_MAX_MB),
};

const localWorkdirSchema = strictFields(
  {
    path: requiredString('workdir.path', 'the folder of your code, relative to the request file, e.g. "."'),
    ...copyLimits,
  },
  'workdir',
);

const gitWorkdirSchema = strictFields(
  {
    repository: requiredString('workdir.repository', 'a git checkout (relative to the request file) or a git URL'),
    commit: z
      .string({ error: 'workdir.commit is required: the exact 40-character lowercase hex commit to run' })
      .trim()
      .superRefine((v, ctx) => {
        const problem = commitProblem(v);
        if (problem) ctx.addIssue({ code: 'custom', message: `workdir.${problem}` });
      }),
    ...copyLimits,
  },
  'workdir',
);

function jsonForm(schema: z.ZodType): Record<string, unknown> {
  const form = z.toJSONSchema(schema, { io: 'input', target: 'draft-7' }) as Record<string, unknown>;
  delete form.$schema;
  return form;
}

/** `workdir`: a folder (a string or {path, exclude, maxSizeMb}) or a git commit ({repository, commit}). */
export const workdirSchema = z
  .unknown()
  .transform((v, ctx): WorkdirSource => {
    const fail = (message: string, path: PropertyKey[] = []) => {
      ctx.addIssue({ code: 'custom', message, path });
      return z.NEVER;
    };
    if (v === undefined) return fail(`workdir is required: ${WORKDIR_HINT}`);
    if (typeof v === 'string') {
      const path = v.trim();
      return path ? { kind: 'local', path, exclude: [], maxSizeMb: DEFAULT_WORKDIR_MAX_MB, given: 'path' } : fail(`workdir must not be empty: ${WORKDIR_HINT}`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(`workdir must be ${WORKDIR_HINT}`);
    const git = 'repository' in v || 'commit' in v;
    const r = (git ? gitWorkdirSchema : localWorkdirSchema).safeParse(v);
    if (!r.success) {
      for (const issue of r.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
      return z.NEVER;
    }
    return git ? { kind: 'git', ...(r.data as z.infer<typeof gitWorkdirSchema>) } : { kind: 'local', ...(r.data as z.infer<typeof localWorkdirSchema>) };
  })
  // For editors (schemas/*.schema.json): the three forms the transform above accepts.
  .meta({ description: WORKDIR_HINT, anyOf: [{ type: 'string', minLength: 1 }, jsonForm(localWorkdirSchema), jsonForm(gitWorkdirSchema)] });
export type WorkdirSource =
  /** `given: 'path'`: the request gave the folder alone (`workdir: .`), so problems of workdir.path are the field's own. */
  | { kind: 'local'; path: string; exclude: string[]; maxSizeMb: number; given?: 'path' }
  | { kind: 'git'; repository: string; commit: string; exclude: string[]; maxSizeMb: number };

/** A command: a shell string (bash -c, in the copied workdir) or an argv list. */
export function commandSchema(field: string) {
  const hint = `a shell command such as "python3 train.py --steps 100", or an argv list such as [python3, train.py]`;
  return z.union(
    [
      z.string().trim().min(1, `${field} must not be empty: ${hint}`),
      z
        .array(z.string({ error: `${field} items must be strings` }).min(1, `${field} items must not be empty`))
        .min(1, `${field} must name a program: ${hint}`),
    ],
    {
      error: (iss) => {
        if (iss.input === undefined) return `${field} is required: ${hint}`;
        // An argv list with a bad item: that item's own message.
        if (iss.code === 'invalid_union' && Array.isArray(iss.input)) return iss.errors[1]?.[0]?.message ?? `${field} must be ${hint}`;
        if (iss.code === 'invalid_union' && typeof iss.input === 'string') return iss.errors[0]?.[0]?.message ?? `${field} must be ${hint}`;
        return `${field} must be ${hint}`;
      },
    },
  );
}
export type Command = string | string[];

/** A progress metric: `loss` or {key: loss, goal: min}. */
const metricSchema = z.union(
  [
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/, 'metrics entries must be record keys such as loss or val.accuracy'),
    strictFields(
      {
        key: z.string({ error: 'metrics[].key is required: the record key, e.g. loss' }).regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/, 'metrics[].key must be a record key such as loss'),
        goal: z.enum(['min', 'max'], { error: 'metrics[].goal must be min or max' }).optional(),
      },
      'a metric',
    ),
  ],
  { error: (iss) => (iss.code === 'invalid_union' && typeof iss.input === 'object' && iss.input !== null ? (iss.errors[1]?.[0]?.message ?? 'bad metric') : 'metrics entries must be record keys such as loss, or {key, goal: min | max}') },
);

function metricsSchema(defaults: { key: string; goal?: 'min' | 'max' }[]) {
  return z
    .array(metricSchema, { error: 'metrics must be a list of record keys, e.g. [loss, accuracy]' })
    .transform((ms) => ms.map((m) => (typeof m === 'string' ? { key: m, ...(/loss|perplexity|error/i.test(m) ? { goal: 'min' as const } : {}) } : m)))
    .refine((ms) => new Set(ms.map((m) => m.key)).size === ms.length, { message: 'metrics lists a key twice; list each once' })
    .default(defaults);
}

/** The environment variable an input named `name` is given under: ORBIT_DATASET_TRAIN_A for train-a. */
export function inputEnvName(prefix: string, name: string): string {
  return `${prefix}${name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;
}

/** Fields of every user-code request. */
const codeShape = {
  workdir: workdirSchema,
  /** Runs before `run` in the copied workdir, on every host the job starts on (e.g. pip install). */
  setup: commandSchema('setup').optional(),
  run: commandSchema('run'),
};

const DATASETS_HINT = 'a mapping of name: path, e.g. {train: data/train.csv}; each file or folder is staged into the bundle';

export const trainingCodeRequestSchema = strictFields(
  {
    ...codeShape,
    /** The training data: name -> file or folder, relative to the request file; staged into inputs/datasets/<name>/. */
    datasets: z
      .record(
        slugName('datasets names'),
        z
          .string({ error: 'datasets values must be paths (strings) of a file or folder, relative to the request file' })
          .trim()
          .min(1, 'datasets values must not be empty: the path of a file or folder, relative to the request file'),
        {
          error: (iss) => {
            if (iss.input === undefined) return `datasets is required: ${DATASETS_HINT}`;
            if (iss.code === 'invalid_key') return `dataset names must be 1-63 characters of A-Z, a-z, 0-9, '.', '_' or '-', starting with a letter or digit`;
            return `datasets must be ${DATASETS_HINT}`;
          },
        },
      )
      .refine((d) => Object.keys(d).length > 0, { message: `datasets must name at least one dataset: ${DATASETS_HINT}` }),
    /** The folder under artifacts/ for results, checkpoints and metrics: ORBIT_OUTPUT_DIR. */
    outputDir: artifactPath('outputDir', 'the folder under artifacts/ for the job\'s results, e.g. out', [WORKLOAD_RECORD, WORKLOAD_LOG]),
    /** Keys of the metrics records the health rules judge and the report charts; the first is the headline. */
    metrics: metricsSchema([{ key: 'loss', goal: 'min' }]),
    ...runOptionsShape,
  },
  'a training request that runs your code',
).superRefine((req, ctx) => noCollidingNames(req.datasets, 'ORBIT_DATASET_', ['datasets'], ctx));
export type TrainingCodeRequest = z.infer<typeof trainingCodeRequestSchema>;

const CHECKPOINT_HINT = 'the path of the checkpoint (a file or folder) your code scores, relative to the request file';
const ENVIRONMENTS_MESSAGE = 'environments must list at least one environment: add items like {name: shakespeare, path: data/shakespeare.txt} (path optional)';

export const codeEnvironmentSchema = strictFields(
  {
    /** Names the scores; unique within the request. ORBIT_ENVIRONMENTS lists them. */
    name: slugName('environments[].name'),
    /** A file or folder the environment reads, staged into inputs/environments/<name>/; ORBIT_ENVIRONMENT_<NAME>. */
    path: requiredString('environments[].path', 'a file or folder, relative to the request file').optional(),
  },
  'an environment',
);

export const evaluationCodeRequestSchema = strictFields(
  {
    ...codeShape,
    checkpoint: requiredString('checkpoint', CHECKPOINT_HINT).optional(),
    /** Another name for `checkpoint`. */
    model: requiredString('model', CHECKPOINT_HINT).optional(),
    environments: z
      .array(codeEnvironmentSchema, { error: (iss) => (iss.input === undefined ? ENVIRONMENTS_MESSAGE : 'environments must be a list of {name, path}') })
      .min(1, ENVIRONMENTS_MESSAGE),
    /** The folder under artifacts/ for results; the job writes its scores to ORBIT_SCORES_FILE inside it. */
    outputDir: artifactPath('outputDir', 'the folder under artifacts/ for the job\'s results, e.g. eval', [WORKLOAD_RECORD, WORKLOAD_LOG]).default('eval'),
    metrics: metricsSchema([]),
    ...runOptionsShape,
  },
  'an evaluation request that runs your code',
)
  .superRefine(
    (req, ctx) => {
      refineEvaluationRequest(req, ctx, CHECKPOINT_HINT);
      const envs = Array.isArray(req.environments) ? req.environments : [];
      noCollidingNames(Object.fromEntries(envs.filter((e) => typeof e?.name === 'string').map((e) => [e.name, e])), 'ORBIT_ENVIRONMENT_', ['environments'], ctx);
    },
    { when: (payload) => typeof payload.value === 'object' && payload.value !== null },
  )
  .meta(CHECKPOINT_OR_MODEL)
  .transform(({ model, checkpoint, ...rest }) => ({ ...rest, checkpoint: (checkpoint ?? model) as string }));
export type EvaluationCodeRequest = z.infer<typeof evaluationCodeRequestSchema>;

/** Two names that give the same environment variable (train-a and train_a) are refused. */
function noCollidingNames(named: Record<string, unknown> | undefined, prefix: string, path: string[], ctx: z.RefinementCtx): void {
  const byVar = new Map<string, string>();
  for (const name of Object.keys(named ?? {})) {
    const v = inputEnvName(prefix, name);
    const other = byVar.get(v);
    if (other !== undefined) ctx.addIssue({ code: 'custom', path, message: `names "${other}" and "${name}" both give ${v}; rename one` });
    byVar.set(v, name);
  }
}

/** True when a raw request is of the user-code form (it names a workdir or a run command). */
export function isCodeRequest(raw: unknown): boolean {
  return typeof raw === 'object' && raw !== null && ('workdir' in raw || 'run' in raw || 'setup' in raw);
}
