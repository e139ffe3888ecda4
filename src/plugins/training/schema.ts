/**
 * The training request (YAML or JSON, camelCase). Node-free. Examples:
 *
 *   datasetPath: data/text/shakespeare-train.txt   # required; relative to the request file
 *   outputDir: checkpoints                         # required; under artifacts/
 *   model: { kind: char-lm, contextLength: 64, layers: 3, heads: 4, embedDim: 96 }
 *   steps: 300
 *
 *   datasetPath: data/regression.csv
 *   outputDir: checkpoints
 *   model: { kind: mlp, hiddenSize: 32, layers: 2 }
 *
 * Two kinds of model, `model.kind`: `char-lm`, a character-level causal transformer language model
 * trained on a UTF-8 text; `mlp`, an MLP regressor fitted to a CSV table (a header row naming every
 * column, then numbers; the last column is the target). Without `kind`, the dataset's extension
 * decides: `.txt` is a char-lm's, `.csv` an mlp's. steps, batchSize, learningRate, checkpointEvery
 * and seed are shared; batchSize and learningRate default by kind.
 * `task` and `jobId` belong to the request file, not to this schema: the CLI strips them.
 */
import { z } from 'zod';
import {
  artifactPath,
  positiveNumber,
  requiredString,
  runOptionsShape,
  strictFields,
  wholeNumber,
} from '../common-schema';

/** Artifacts the trainer writes itself; outputDir must not take their names. */
export const TRAINING_LOG = 'training.log';
export const TRAINING_METRICS = 'metrics.json';
/** The per-step series each checkpoint folder holds (JSON lines: step, loss, ...), declared as the job's progress. */
export const TRAINING_SERIES = 'logging.jsonl';

export const MODEL_KINDS = ['char-lm', 'mlp'] as const;
export type ModelKind = (typeof MODEL_KINDS)[number];

const DATASET_HINT =
  'a .txt file (UTF-8 text: a char-lm language model) or a .csv file (a header row, numbers in every cell, the target last: an mlp regressor), relative to the request file';

/** batchSize and learningRate when the request does not set them. */
export const KIND_DEFAULTS: Record<ModelKind, { batchSize: number; learningRate: number }> = {
  'char-lm': { batchSize: 32, learningRate: 0.005 },
  mlp: { batchSize: 64, learningRate: 0.01 },
};

/** The MLP regressor: `layers` hidden layers of `hiddenSize` tanh units. Its `kind` may be left out. */
export const mlpModelSchema = strictFields(
  {
    kind: z.literal('mlp').optional(),
    /** Units per hidden layer. */
    hiddenSize: wholeNumber('model.hiddenSize', 1, 4096).default(32),
    /** Hidden layers (tanh). */
    layers: wholeNumber('model.layers', 1, 16).default(2),
  },
  'an mlp model',
);

/** The character-level causal transformer LM (scripts/charlm.py). */
export const charLmModelSchema = strictFields(
  {
    kind: z.literal('char-lm'),
    /** Characters the model sees at once (its attention window, and the length of a training window). */
    contextLength: wholeNumber('model.contextLength', 8, 1024).default(64),
    /** Transformer blocks. */
    layers: wholeNumber('model.layers', 1, 12).default(3),
    /** Attention heads per block; embedDim must be a multiple of it. */
    heads: wholeNumber('model.heads', 1, 16).default(4),
    /** Width of the embeddings and of every block. */
    embedDim: wholeNumber('model.embedDim', 8, 1024).default(96),
    /** Dropout after the embeddings, the attention and each block's layers (0: none). */
    dropout: z
      .number({ error: 'model.dropout must be a number from 0 to 0.5' })
      .min(0, 'model.dropout must be at least 0')
      .max(0.5, 'model.dropout must be at most 0.5')
      .default(0),
  },
  'a char-lm model',
).superRefine((m, ctx) => {
  if (Number.isInteger(m.embedDim) && Number.isInteger(m.heads) && m.heads > 0 && m.embedDim % m.heads !== 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['embedDim'],
      message: `model.embedDim (${m.embedDim}) must be a multiple of model.heads (${m.heads}): each head takes embedDim / heads dimensions, e.g. embedDim ${Math.max(m.heads, Math.round(m.embedDim / m.heads) * m.heads)}`,
    });
  }
});

const MODEL_HINT = 'e.g. {kind: char-lm, contextLength: 64, layers: 3, heads: 4, embedDim: 96} or {kind: mlp, hiddenSize: 32, layers: 2}';

export const modelSchema = z.discriminatedUnion('kind', [charLmModelSchema, mlpModelSchema], {
  error: (iss) => {
    if (iss.code === 'invalid_union') return `model.kind must be one of ${MODEL_KINDS.join(', ')}: char-lm trains a language model on a .txt text, mlp fits a regressor to a .csv table`;
    if (iss.code === 'invalid_type') return `model must be a mapping of fields, ${MODEL_HINT}`;
    return undefined;
  },
});

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const extension = (p: unknown) => (typeof p === 'string' ? /\.([^./\\]+)$/.exec(p.trim().toLowerCase())?.[1] : undefined);

/** A .txt dataset without a model kind trains a char-lm: the kind is filled in before the model is parsed (a .csv one is an mlp, the default). */
function inferModelKind(raw: unknown): unknown {
  if (!isObject(raw) || extension(raw['datasetPath']) !== 'txt') return raw;
  const model = raw['model'];
  if (model === undefined) return { ...raw, model: { kind: 'char-lm' } };
  if (isObject(model) && model['kind'] === undefined) return { ...raw, model: { kind: 'char-lm', ...model } };
  return raw;
}

const requestFields = strictFields(
  {
    /** The text or table to train on, copied into the bundle's inputs/. */
    datasetPath: requiredString('datasetPath', DATASET_HINT),
    /** Folder under artifacts/ that receives step-N checkpoints. */
    outputDir: artifactPath('outputDir', 'the folder under artifacts/ for checkpoints, e.g. checkpoints', [TRAINING_LOG, TRAINING_METRICS, TRAINING_SERIES]),
    /** What to train: {kind: char-lm, ...} or {kind: mlp, ...}; kind defaults from datasetPath's extension. */
    model: modelSchema
      .default({ hiddenSize: 32, layers: 2 })
      .describe('What to train: {kind: char-lm, ...} (a language model on a text) or {kind: mlp, ...} (a regressor on a table). Without kind, a .txt datasetPath trains a char-lm, a .csv one an mlp.'),
    /** Optimizer steps in all. */
    steps: wholeNumber('steps', 1, 10_000_000).default(300),
    /** Examples per step (rows of the table, or windows of contextLength characters); default 32 for a char-lm, 64 for an mlp. */
    batchSize: wholeNumber('batchSize', 1, 1_000_000).optional().describe('Examples per step; default 32 for a char-lm, 64 for an mlp.'),
    /** Peak learning rate (Adam; a char-lm: AdamW with a short warm-up), cosine decay to a tenth; default 0.005 for a char-lm, 0.01 for an mlp. */
    learningRate: positiveNumber('learningRate', 1e30).optional().describe('Peak learning rate, cosine decay to a tenth; default 0.005 for a char-lm, 0.01 for an mlp.'),
    /** A checkpoint every this many steps, and one at the last step. */
    checkpointEvery: wholeNumber('checkpointEvery', 1, 10_000_000).default(100),
    seed: wholeNumber('seed', 0, 2 ** 31 - 1).default(0),
    /** Sleep this long after each step (0: none): makes a demo run last long enough to watch, as a real model's steps would. */
    secondsPerStep: z.number({ error: 'secondsPerStep must be a number of seconds' }).min(0, 'secondsPerStep must be at least 0').max(60, 'secondsPerStep must be at most 60').default(0),
    ...runOptionsShape,
  },
  'a training request',
)
  .superRefine(
    (req, ctx) => {
      const path = typeof req.datasetPath === 'string' ? req.datasetPath.trim() : undefined;
      const kind = isObject(req.model) ? req.model['kind'] : undefined;
      if (!path) return;
      const ext = extension(path);
      if (kind === 'mlp' && ext === 'txt') {
        ctx.addIssue({
          code: 'custom',
          path: ['model', 'kind'],
          message: `model.kind is mlp (a regressor on a CSV table), but datasetPath ${path} is a .txt text: set model.kind to char-lm (or leave it out) to train a language model on it, or give a .csv table`,
        });
      } else if (kind === 'char-lm' && ext === 'csv') {
        ctx.addIssue({
          code: 'custom',
          path: ['model', 'kind'],
          message: `model.kind is char-lm (a language model on a text), but datasetPath ${path} is a .csv table: give a .txt text, or set model.kind to mlp (or leave it out) to fit the table`,
        });
      } else if (kind === undefined && ext !== 'csv' && ext !== 'txt') {
        ctx.addIssue({
          code: 'custom',
          path: ['datasetPath'],
          message: `datasetPath ${path} ends in neither .txt nor .csv, so the model's kind is not known: rename it, or set model.kind (char-lm for a UTF-8 text, mlp for a CSV table)`,
        });
      }
    },
    // Also when other fields failed, so that one run reports every problem; the value may then be partial.
    { when: (payload) => isObject(payload.value) },
  )
  .transform(({ model, batchSize, learningRate, ...rest }) => {
    const kind: ModelKind = model.kind ?? 'mlp';
    return {
      ...rest,
      model: { ...model, kind } as TrainingModel,
      batchSize: batchSize ?? KIND_DEFAULTS[kind].batchSize,
      learningRate: learningRate ?? KIND_DEFAULTS[kind].learningRate,
    };
  });

/** A parsed model: its kind always set. */
export type CharLmModel = z.infer<typeof charLmModelSchema>;
export type MlpModel = Omit<z.infer<typeof mlpModelSchema>, 'kind'> & { kind: 'mlp' };
export type TrainingModel = CharLmModel | MlpModel;

export const trainingRequestSchema = z.preprocess(inferModelKind, requestFields);
export type TrainingRequest = z.infer<typeof trainingRequestSchema>;
