/**
 * A task's user-code form beside its built-in one: `withUserCode(new TrainingPlugin(), TRAINING_CODE)`
 * is the training task, whose requests either configure the built-in trainer or name a `workdir` and
 * a `run` command (docs/job-contract.md). The request's fields pick the form (isCodeRequest); the
 * bundle's metadata `mode: code` picks the summary.
 */
import { z } from 'zod';
import { parseWith, type Bundle, type Problem } from '../../bundle';
import type { RunOutcome, TaskPlugin, TaskSubmission, TaskSummary } from '../types';
import { buildEvaluationCodeBundle, summarizeEvaluationCode, validateEvaluationCode } from './evaluation';
import { evaluationCodeRequestSchema, isCodeRequest, trainingCodeRequestSchema } from './schema';
import { buildTrainingCodeBundle, summarizeTrainingCode, validateTrainingCode } from './training';

/** What a task does with a request of its user-code form. */
export interface CodeForm<S extends z.ZodType> {
  schema: S;
  description: string;
  validate(request: z.infer<S>, baseDir: string): Promise<Problem[]>;
  buildBundle(plugin: Pick<TaskPlugin, 'taskType' | 'jobKind'>, bundleDir: string, submission: TaskSubmission<z.infer<S>>): Promise<Bundle>;
  summarize(bundle: Bundle, outcome: RunOutcome): Promise<TaskSummary>;
}

export const TRAINING_CODE: CodeForm<typeof trainingCodeRequestSchema> = {
  schema: trainingCodeRequestSchema,
  description: 'or your own code: workdir + setup + run, datasets, outputDir',
  validate: validateTrainingCode,
  buildBundle: buildTrainingCodeBundle,
  summarize: summarizeTrainingCode,
};

export const EVALUATION_CODE: CodeForm<typeof evaluationCodeRequestSchema> = {
  schema: evaluationCodeRequestSchema,
  description: 'or your own code: workdir + setup + run, a checkpoint, environments',
  validate: validateEvaluationCode,
  buildBundle: buildEvaluationCodeBundle,
  summarize: summarizeEvaluationCode,
};

/** A request as parsed by the code form carries its `run`; the built-in forms have no such field. */
function isCode(request: unknown): boolean {
  return typeof request === 'object' && request !== null && 'run' in request && 'workdir' in request;
}

/** The built-in plugin with its user-code form: each call goes to the form the request (or bundle) is of. */
export function withUserCode<B extends z.ZodType, C extends z.ZodType>(builtIn: TaskPlugin<B>, code: CodeForm<C>): TaskPlugin {
  // For the JSON Schema (orbit schema, schemas/): either form. Parsing picks one, for messages about that form's fields.
  const schema: z.ZodType = z.union([builtIn.requestSchema, code.schema]);
  return {
    taskType: builtIn.taskType,
    jobKind: builtIn.jobKind,
    description: `${builtIn.description}; ${code.description}`,
    requestSchema: schema,
    parse(raw: unknown): ReturnType<TaskPlugin['parse']> {
      return isCodeRequest(raw) ? parseWith(code.schema, raw) : builtIn.parse(raw);
    },
    validate(request, baseDir) {
      return isCode(request) ? code.validate(request as z.infer<C>, baseDir) : builtIn.validate(request as z.infer<B>, baseDir);
    },
    buildBundle(bundleDir, submission) {
      return isCode(submission.request)
        ? code.buildBundle(builtIn, bundleDir, submission as TaskSubmission<z.infer<C>>)
        : builtIn.buildBundle(bundleDir, submission as TaskSubmission<z.infer<B>>);
    },
    describeBundle(bundle) {
      const staged = bundle.spec.metadata['staged'];
      return bundle.spec.metadata['mode'] === 'code' && typeof staged === 'string' ? [staged] : (builtIn.describeBundle?.(bundle) ?? []);
    },
    summarizeResult(bundle, outcome) {
      return bundle.spec.metadata['mode'] === 'code' ? code.summarize(bundle, outcome) : builtIn.summarizeResult(bundle, outcome);
    },
  };
}
