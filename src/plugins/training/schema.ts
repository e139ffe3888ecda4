/**
 * The training request (YAML or JSON, camelCase). Node-free. Example:
 *
 *   datasetPath: data/regression.csv   # required; relative to the request file
 *   outputDir: checkpoints             # required; under artifacts/
 *   model: { hiddenSize: 32, layers: 2 }
 *   steps: 300
 *
 * Dataset format: CSV, UTF-8, a header row naming every column, then one row per example with a
 * number in every cell; the last column is the regression target, the others are features.
 * `task` and `jobId` belong to the request file, not to this schema: the CLI strips them.
 */
import { z } from 'zod';
import {
  artifactPath,
  positiveNumber,
  requiredString,
  runOptionsShape,
  strictFields,
  TABLE_FORMAT,
  wholeNumber,
} from '../common-schema';

/** Artifacts the trainer writes itself; outputDir must not take their names. */
export const TRAINING_LOG = 'training.log';
export const TRAINING_METRICS = 'metrics.json';
/** The per-step series each checkpoint folder holds (JSON lines: step, loss, ...), declared as the job's progress. */
export const TRAINING_SERIES = 'logging.jsonl';

export const modelSchema = strictFields(
  {
    /** Units per hidden layer. */
    hiddenSize: wholeNumber('model.hiddenSize', 1, 4096).default(32),
    /** Hidden layers (tanh). */
    layers: wholeNumber('model.layers', 1, 16).default(2),
  },
  'model',
);

export const trainingRequestSchema = strictFields(
  {
    /** The table to fit, copied into the bundle's inputs/. */
    datasetPath: requiredString('datasetPath', TABLE_FORMAT),
    /** Folder under artifacts/ that receives step-N checkpoints. */
    outputDir: artifactPath('outputDir', 'the folder under artifacts/ for checkpoints, e.g. checkpoints', [TRAINING_LOG, TRAINING_METRICS, TRAINING_SERIES]),
    model: modelSchema.default({ hiddenSize: 32, layers: 2 }),
    /** Optimizer steps in all. */
    steps: wholeNumber('steps', 1, 10_000_000).default(300),
    batchSize: wholeNumber('batchSize', 1, 1_000_000).default(64),
    /** Peak learning rate (Adam, cosine decay to a tenth). */
    learningRate: positiveNumber('learningRate', 1e30).default(0.01),
    /** A checkpoint every this many steps, and one at the last step. */
    checkpointEvery: wholeNumber('checkpointEvery', 1, 10_000_000).default(100),
    seed: wholeNumber('seed', 0, 2 ** 31 - 1).default(0),
    /** Sleep this long after each step (0: none): makes a demo run last long enough to watch, as a real model's steps would. */
    secondsPerStep: z.number({ error: 'secondsPerStep must be a number of seconds' }).min(0, 'secondsPerStep must be at least 0').max(60, 'secondsPerStep must be at most 60').default(0),
    ...runOptionsShape,
  },
  'a training request',
);
export type TrainingRequest = z.infer<typeof trainingRequestSchema>;
