import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Bundle, Problem } from '../../bundle';
import {
  assertNoProblems,
  baseHealthRules,
  checkReadableFile,
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
import type { RunOutcome, TaskPlugin, TaskSubmission, TaskSummary } from '../types';
import { EVALUATION_LOG, EVALUATION_SCORES, evaluationRequestSchema, type EvaluationRequest } from './schema';

const CHECKPOINT_INPUT = 'checkpoint';
/**
 * Files of a trainer checkpoint the evaluator needs (COMPLETE proves the folder is whole). The weights
 * are model.pt (what the trainer writes) or model.json (the same state_dict as text: the checkpoints
 * shipped in examples/ are, so the repository holds no binary).
 */
const CHECKPOINT_FILES = ['model.pt', 'meta.json', 'COMPLETE'] as const;
const TEXT_WEIGHTS = 'model.json';
/** What evaluator.py and scripts/tabular.py import beyond the standard library: torch (torch.load(weights_only=...), as the trainer). */
export const EVALUATION_MODULES = [{ name: 'torch', minVersion: '2.0' }];

/** The checkpoint's files as staged: model.pt, or model.json when only that is there. */
function checkpointFiles(dir: string): string[] {
  return CHECKPOINT_FILES.map((f) => (f === 'model.pt' && !existsSync(join(dir, f)) && existsSync(join(dir, TEXT_WEIGHTS)) ? TEXT_WEIGHTS : f));
}

/** Scores a training checkpoint on one or more CSV tables ("environments"): MSE and MAE per environment. */
export class EvaluationPlugin extends SchemaPlugin<typeof evaluationRequestSchema> implements TaskPlugin<typeof evaluationRequestSchema> {
  readonly taskType = 'evaluation';
  readonly jobKind = 'eval';
  readonly description = 'score a training checkpoint on one or more CSV tables (MSE per environment)';
  override readonly requestSchema = evaluationRequestSchema;

  async validate(request: EvaluationRequest, baseDir: string): Promise<Problem[]> {
    const problems: Problem[] = [];
    const { problems: checkpointProblems, inputs } = await checkCheckpoint(requestPath(baseDir, request.checkpoint));
    problems.push(...checkpointProblems);
    for (const [i, env] of request.environments.entries()) {
      const field = `environments[${i}].datasetPath`;
      const { problems: tableProblems, table } = await checkTable(requestPath(baseDir, env.datasetPath), field);
      problems.push(...tableProblems);
      if (table && inputs !== undefined && table.columns.length - 1 !== inputs) {
        problems.push({
          path: field,
          message: `has ${table.columns.length - 1} feature columns but the checkpoint was trained on ${inputs}; score it on a table with the same columns`,
        });
      }
    }
    problems.push(...(await runOptionProblems(request, baseDir)));
    return problems;
  }

  async buildBundle(bundleDir: string, submission: TaskSubmission<EvaluationRequest>): Promise<Bundle> {
    const { request, baseDir, jobId } = submission;
    assertNoProblems('evaluation request', await this.validate(request, baseDir));
    const checkpointDir = requestPath(baseDir, request.checkpoint);
    const environments = request.environments.map((env) => ({ ...env, input: `environments/${env.name}.csv` }));
    const spec = jobSpecFor(this, jobId, request, {
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
      metadata: { checkpoint: request.checkpoint, environments: request.environments.map((e) => e.name).join(',') },
    });
    const config = {
      checkpoint: `inputs/${CHECKPOINT_INPUT}`,
      environments: environments.map((env) => ({ name: env.name, data: `inputs/${env.input}` })),
      threads: Math.min(2, request.resources?.cpus ?? 2),
    };
    const bundle = await createPythonBundle(bundleDir, spec, { name: 'evaluator.py', source: pluginFile('evaluation', 'evaluator.py') }, config, { run: request, baseDir });
    for (const f of checkpointFiles(checkpointDir)) await bundle.copyInput(join(checkpointDir, f), `${CHECKPOINT_INPUT}/${f}`);
    for (const env of environments) await bundle.copyInput(requestPath(baseDir, env.datasetPath), env.input);
    return bundle;
  }

  async summarizeResult(bundle: Bundle, outcome: RunOutcome): Promise<TaskSummary> {
    const scores = await readJson(bundle.path(`artifacts/${EVALUATION_SCORES}`));
    const envs = scoresByEnvironment(scores);
    const step = numberField((scores as { checkpoint?: unknown } | undefined)?.checkpoint, 'step');
    const metrics: TaskSummary['metrics'] = { environments: envs.length, meanMse: numberField(scores, 'meanMse'), checkpointStep: step };
    for (const e of envs) metrics[`mse.${e.name}`] = e.mse;
    const list = envs.map((e) => `${e.name} mse ${fmt(e.mse)}`).join(', ');
    const headline =
      outcome.status === 'succeeded' && envs.length
        ? `scored checkpoint step ${step ?? '?'} on ${envs.length} environment${envs.length > 1 ? 's' : ''}: ${list}`
        : `${outcomePrefix(outcome)}evaluation ${envs.length ? `scored ${list}` : 'wrote no scores'}`;
    return { headline, metrics, highlights: existingPaths(bundle, [`artifacts/${EVALUATION_SCORES}`, `artifacts/${EVALUATION_LOG}`]) };
  }
}

/** Checks a checkpoint folder written by the trainer; returns its feature count when meta.json is readable. */
async function checkCheckpoint(dir: string): Promise<{ problems: Problem[]; inputs?: number }> {
  const fail = (message: string) => ({ problems: [{ path: 'checkpoint', message }] });
  const isDir = await stat(dir).then((s) => s.isDirectory(), () => undefined);
  if (isDir === undefined) return fail(`${dir} does not exist; give the step-N folder of a training job's checkpoint (it holds model.pt and COMPLETE)`);
  if (!isDir) return fail(`${dir} is not a folder; give the step-N folder that holds model.pt, not the file itself`);
  if (!existsSync(join(dir, 'COMPLETE'))) {
    return fail(`${dir} has no COMPLETE marker: the checkpoint is partial (its job stopped while writing it); pick a step-N folder that has COMPLETE`);
  }
  for (const f of checkpointFiles(dir)) {
    const problems = await checkReadableFile(join(dir, f), 'checkpoint', `a training checkpoint folder holding ${CHECKPOINT_FILES.join(', ')}`);
    if (problems.length) return { problems };
  }
  const inputs = numberField(await readJson(join(dir, 'meta.json')), 'inputs');
  if (inputs === null) return fail(`${dir}/meta.json does not give the model's input count; the folder was not written by the training task`);
  return { problems: [], inputs };
}

function scoresByEnvironment(scores: unknown): { name: string; mse: number | null }[] {
  const envs = (scores as { environments?: unknown } | undefined)?.environments;
  if (typeof envs !== 'object' || envs === null) return [];
  return Object.entries(envs as Record<string, unknown>).map(([name, s]) => ({ name, mse: numberField(s, 'mse') }));
}
