/**
 * The evaluation request (YAML or JSON, camelCase). Node-free. Example:
 *
 *   checkpoint: runs/lm/artifacts/checkpoints/step-300   # or `model:`; a trainer checkpoint folder
 *   environments:
 *     - { name: shakespeare, datasetPath: data/text/shakespeare-heldout.txt }
 *     - { name: austen, datasetPath: data/text/austen-emma.txt }
 *
 * Paths resolve against the request file's folder. What an environment's dataset is depends on the
 * checkpoint's kind (its meta.json): a UTF-8 text for a char-lm (scored by perplexity and
 * next-character accuracy), a CSV table with the training table's columns for an mlp (MSE, MAE).
 * `checkpoint` and `model` are two names for one field; parsing returns it as `checkpoint`.
 */
import { z } from 'zod';
import { CHECKPOINT_OR_MODEL, refineEvaluationRequest, requiredString, runOptionsShape, slugName, strictFields } from '../common-schema';

export const EVALUATION_LOG = 'evaluation.log';
export const EVALUATION_SCORES = 'scores.json';

const CHECKPOINT_HINT = 'the path of a checkpoint folder written by a training job (step-N, holding model.pt and COMPLETE), relative to the request file';
/** What an environment's datasetPath holds. */
export const ENVIRONMENT_DATA_HINT =
  'a .txt text to score a char-lm checkpoint on, or a .csv table with the training columns to score an mlp checkpoint on, relative to the request file';
const ENVIRONMENTS_MESSAGE = 'environments must list at least one environment: add items like {name: shakespeare, datasetPath: data/text/shakespeare-heldout.txt}';

export const environmentSchema = strictFields(
  {
    /** Names the score; unique within the request. */
    name: slugName('name'),
    /** The text or table this environment scores, copied into inputs/. */
    datasetPath: requiredString('datasetPath', ENVIRONMENT_DATA_HINT),
  },
  'an environment',
);
export type Environment = z.infer<typeof environmentSchema>;

export const evaluationRequestSchema = strictFields(
  {
    checkpoint: requiredString('checkpoint', CHECKPOINT_HINT).optional(),
    /** Another name for `checkpoint`. */
    model: requiredString('model', CHECKPOINT_HINT).optional(),
    environments: z
      .array(environmentSchema, { error: (iss) => (iss.input === undefined ? ENVIRONMENTS_MESSAGE : 'environments must be a list of {name, datasetPath}') })
      .min(1, ENVIRONMENTS_MESSAGE),
    ...runOptionsShape,
  },
  'an evaluation request',
)
  .superRefine((req, ctx) => refineEvaluationRequest(req, ctx, CHECKPOINT_HINT), { when: (payload) => typeof payload.value === 'object' && payload.value !== null })
  .meta(CHECKPOINT_OR_MODEL)
  .transform(({ model, checkpoint, ...rest }) => ({ ...rest, checkpoint: (checkpoint ?? model) as string }));
export type EvaluationRequest = z.infer<typeof evaluationRequestSchema>;
