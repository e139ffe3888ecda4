import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Bundle, Problem } from '../../bundle';
import {
  assertNoProblems,
  baseHealthRules,
  checkTable,
  createPythonBundle,
  existingPaths,
  fmt,
  jobSpecFor,
  numberField,
  outcomePrefix,
  pluginFile,
  pythonCommand,
  readJson,
  requestPath,
  runOptionProblems,
  SchemaPlugin,
} from '../common';
import { CHARLM_SCRIPT } from '../training/plugin';
import { checkText, isCsvPath, isTxtPath } from '../training/text';
import type { RunOutcome, TaskPlugin, TaskSubmission, TaskSummary } from '../types';
import { checkCheckpoint, checkpointFiles, type CheckpointKind } from './checkpoint';
import { EVALUATION_LOG, EVALUATION_SCORES, evaluationRequestSchema, type EvaluationRequest } from './schema';

const CHECKPOINT_INPUT = 'checkpoint';
/** What evaluator.py, scripts/tabular.py and scripts/charlm.py import beyond the standard library: torch (torch.load(weights_only=...), as the trainer). */
export const EVALUATION_MODULES = [{ name: 'torch', minVersion: '2.0' }];
/** The metrics a char-lm environment's summary gives, `<metric>.<environment>`. */
export const LM_METRICS = ['perplexity', 'accuracy'] as const;

/**
 * Scores a training checkpoint on one or more "environments": a char-lm on texts (perplexity and
 * next-character accuracy each), an mlp on CSV tables (MSE and MAE). The built-in evaluator is the
 * functions below (validateBuiltinEvaluation, buildBuiltinEvaluationBundle, summarizeBuiltinEvaluation).
 */
export class EvaluationPlugin extends SchemaPlugin<typeof evaluationRequestSchema> implements TaskPlugin<typeof evaluationRequestSchema> {
  readonly taskType = 'evaluation';
  readonly jobKind = 'eval';
  readonly description = 'score a training checkpoint on environments: a language model on texts (perplexity per character), an MLP on CSV tables (MSE)';
  override readonly requestSchema = evaluationRequestSchema;

  validate(request: EvaluationRequest, baseDir: string): Promise<Problem[]> {
    return validateBuiltinEvaluation(request, baseDir);
  }

  buildBundle(bundleDir: string, submission: TaskSubmission<EvaluationRequest>): Promise<Bundle> {
    return buildBuiltinEvaluationBundle(this, bundleDir, submission);
  }

  summarizeResult(bundle: Bundle, outcome: RunOutcome): Promise<TaskSummary> {
    return summarizeBuiltinEvaluation(bundle, outcome);
  }
}

/** The checkpoint's problems and its kind, then each environment's against that kind: a text for a char-lm, a table with its columns for an mlp. */
async function checkRequest(request: EvaluationRequest, baseDir: string): Promise<{ problems: Problem[]; kind?: CheckpointKind }> {
  const problems: Problem[] = [];
  const { problems: checkpointProblems, checkpoint } = await checkCheckpoint(requestPath(baseDir, request.checkpoint), 'checkpoint');
  problems.push(...checkpointProblems);
  for (const [i, env] of request.environments.entries()) {
    const field = `environments[${i}].datasetPath`;
    const abs = requestPath(baseDir, env.datasetPath);
    // A checkpoint that cannot be read says no kind: then the file's extension says what to check it as.
    const kind = checkpoint?.kind ?? (isTxtPath(env.datasetPath) ? 'char-lm' : 'mlp');
    if (kind === 'char-lm') {
      if (isCsvPath(env.datasetPath)) {
        problems.push({ path: field, message: `${env.datasetPath} is a CSV table, but the checkpoint is a char-lm (a language model): give a .txt text to score its perplexity on` });
        continue;
      }
      problems.push(...(await checkText(abs, field, { minChars: 2, why: 'a first character, and one to predict' })).problems);
      continue;
    }
    if (checkpoint?.kind === 'mlp' && isTxtPath(env.datasetPath)) {
      problems.push({
        path: field,
        message: `${env.datasetPath} is a text, but the checkpoint is an mlp (a regressor trained on a table of ${checkpoint.inputs} features): give a .csv table with the same columns`,
      });
      continue;
    }
    const { problems: tableProblems, table } = await checkTable(abs, field);
    problems.push(...tableProblems);
    if (table && checkpoint?.inputs !== undefined && table.columns.length - 1 !== checkpoint.inputs) {
      problems.push({
        path: field,
        message: `has ${table.columns.length - 1} feature columns but the checkpoint was trained on ${checkpoint.inputs}; score it on a table with the same columns`,
      });
    }
  }
  problems.push(...(await runOptionProblems(request, baseDir)));
  return { problems, ...(checkpoint ? { kind: checkpoint.kind } : {}) };
}

export async function validateBuiltinEvaluation(request: EvaluationRequest, baseDir: string): Promise<Problem[]> {
  return (await checkRequest(request, baseDir)).problems;
}

export async function buildBuiltinEvaluationBundle(
  plugin: Pick<TaskPlugin, 'taskType' | 'jobKind'>,
  bundleDir: string,
  submission: TaskSubmission<EvaluationRequest>,
): Promise<Bundle> {
  const { request, baseDir, jobId } = submission;
  const { problems, kind } = await checkRequest(request, baseDir);
  assertNoProblems('evaluation request', problems);
  const checkpointDir = requestPath(baseDir, request.checkpoint);
  const ext = kind === 'char-lm' ? 'txt' : 'csv';
  const environments = request.environments.map((env) => ({ ...env, input: `environments/${env.name}.${ext}` }));
  const spec = jobSpecFor(plugin, jobId, request, {
    defaults: { cpus: 2, memoryGb: 2 },
    command: pythonCommand('evaluator.py'),
    logFile: EVALUATION_LOG,
    modules: EVALUATION_MODULES,
    health: baseHealthRules(30, 15),
    inputs: [
      ...checkpointFiles(checkpointDir).map((f) => ({ path: `${CHECKPOINT_INPUT}/${f}`, description: `copy of ${request.checkpoint}/${f}` })),
      ...environments.map((env) => ({ path: env.input, description: `copy of ${env.datasetPath}` })),
    ],
    expectedOutputs: [
      { path: EVALUATION_SCORES, required: true },
      { path: EVALUATION_LOG, required: true },
    ],
    metadata: { checkpoint: request.checkpoint, environments: request.environments.map((e) => e.name).join(','), checkpointKind: kind ?? 'mlp' },
  });
  const config = {
    checkpoint: `inputs/${CHECKPOINT_INPUT}`,
    environments: environments.map((env) => ({ name: env.name, data: `inputs/${env.input}` })),
    threads: Math.min(2, request.resources?.cpus ?? 2),
  };
  const bundle = await createPythonBundle(bundleDir, spec, { name: 'evaluator.py', source: pluginFile('evaluation', 'evaluator.py') }, config, { run: request, baseDir });
  await bundle.writeScript(CHARLM_SCRIPT.name, await readFile(CHARLM_SCRIPT.source));
  for (const f of checkpointFiles(checkpointDir)) await bundle.copyInput(join(checkpointDir, f), `${CHECKPOINT_INPUT}/${f}`);
  for (const env of environments) await bundle.copyInput(requestPath(baseDir, env.datasetPath), env.input);
  return bundle;
}

/**
 * The scores by environment: a char-lm's `perplexity.<env>` and `accuracy.<env>` (and the mean
 * perplexity), an mlp's `mse.<env>` (and the mean MSE), which `orbit sweep results` shows as columns.
 */
export async function summarizeBuiltinEvaluation(bundle: Bundle, outcome: RunOutcome): Promise<TaskSummary> {
  const scores = await readJson(bundle.path(`artifacts/${EVALUATION_SCORES}`));
  const checkpoint = (scores as { checkpoint?: unknown } | undefined)?.checkpoint;
  const step = numberField(checkpoint, 'step');
  const lm = (checkpoint as { kind?: unknown } | undefined)?.kind === 'char-lm' || (scores === undefined && bundle.spec.metadata['checkpointKind'] === 'char-lm');
  const envs = environmentsOf(scores);
  const metrics: TaskSummary['metrics'] = {};
  let list: string;
  if (lm) {
    metrics['checkpointStep'] = step;
    for (const m of LM_METRICS) for (const e of envs) metrics[`${m}.${e.name}`] = numberField(e.scores, m);
    metrics['meanPerplexity'] = numberField(scores, 'meanPerplexity');
    metrics['environments'] = envs.length;
    list = envs.map((e) => `${e.name} perplexity ${fmt(numberField(e.scores, 'perplexity'))}`).join(', ');
  } else {
    Object.assign(metrics, { environments: envs.length, meanMse: numberField(scores, 'meanMse'), checkpointStep: step });
    for (const e of envs) metrics[`mse.${e.name}`] = numberField(e.scores, 'mse');
    list = envs.map((e) => `${e.name} mse ${fmt(numberField(e.scores, 'mse'))}`).join(', ');
  }
  const headline =
    outcome.status === 'succeeded' && envs.length
      ? `scored checkpoint step ${step ?? '?'} on ${envs.length} environment${envs.length > 1 ? 's' : ''}: ${list}`
      : `${outcomePrefix(outcome)}evaluation ${envs.length ? `scored ${list}` : 'wrote no scores'}`;
  return { headline, metrics, highlights: existingPaths(bundle, [`artifacts/${EVALUATION_SCORES}`, `artifacts/${EVALUATION_LOG}`]) };
}

function environmentsOf(scores: unknown): { name: string; scores: unknown }[] {
  const envs = (scores as { environments?: unknown } | undefined)?.environments;
  if (typeof envs !== 'object' || envs === null) return [];
  return Object.entries(envs as Record<string, unknown>).map(([name, s]) => ({ name, scores: s }));
}
