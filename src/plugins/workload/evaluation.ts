/** The evaluation task in its user-code form: the user's script scores a staged checkpoint on named environments. */
import type { Bundle, Problem } from '../../bundle';
import { baseHealthRules, existingPaths, fmt, outcomePrefix, readJson, requestPath } from '../common';
import type { RunOutcome, TaskPlugin, TaskSubmission, TaskSummary } from '../types';
import { buildCodeBundle, codeHealth, codeProblems, stagedInputProblems, type CodeJob } from './build';
import { stagedPath, type StagedInput } from './inputs';
import { inputEnvName, WORKLOAD_LOG, type EvaluationCodeRequest } from './schema';
import { scoresByEnvironment, workloadFailure } from './summary';

/** The file the job writes its scores to, in its output folder: {"environments": {"<name>": {"<metric>": number}}}. */
export const CODE_SCORES = 'scores.json';

function evaluationInputs(request: EvaluationCodeRequest, baseDir: string): { model: StagedInput; environments: StagedInput[] } {
  return {
    model: { field: 'checkpoint', source: requestPath(baseDir, request.checkpoint), dest: 'model' },
    environments: request.environments.flatMap((e, i) => (e.path ? [{ field: `environments[${i}].path`, source: requestPath(baseDir, e.path), dest: `environments/${e.name}` }] : [])),
  };
}

export async function validateEvaluationCode(request: EvaluationCodeRequest, baseDir: string): Promise<Problem[]> {
  const { problems } = await codeProblems(request, baseDir);
  const { model, environments } = evaluationInputs(request, baseDir);
  problems.push(...(await stagedInputProblems([model], 'the checkpoint file or folder to score')));
  problems.push(...(await stagedInputProblems(environments, "an environment's file or folder")));
  return problems;
}

export async function buildEvaluationCodeBundle(plugin: Pick<TaskPlugin, 'taskType' | 'jobKind'>, bundleDir: string, submission: TaskSubmission<EvaluationCodeRequest>): Promise<Bundle> {
  const { request, baseDir } = submission;
  const { model, environments } = evaluationInputs(request, baseDir);
  const scores = `${request.outputDir}/${CODE_SCORES}`;
  const job: CodeJob = {
    inputs: [model, ...environments],
    paths: {
      ORBIT_MODEL: stagedPath(model),
      ORBIT_SCORES_FILE: `artifacts/${scores}`,
      ...Object.fromEntries(environments.map((e) => [inputEnvName('ORBIT_ENVIRONMENT_', e.dest.slice('environments/'.length)), stagedPath(e)])),
    },
    values: { ORBIT_ENVIRONMENTS: request.environments.map((e) => e.name).join(',') },
    expectedOutputs: [{ path: scores, required: true }],
    health: codeHealth(request, baseHealthRules(30, 15)),
    metadata: { checkpoint: request.checkpoint, environments: request.environments.map((e) => e.name).join(',') },
    checkpoints: false,
  };
  return buildCodeBundle(plugin, bundleDir, submission, job);
}

/** The scores the job wrote, per environment and metric (`perplexity.shakespeare`); environments it did not score are named. */
export async function summarizeEvaluationCode(bundle: Bundle, outcome: RunOutcome): Promise<TaskSummary> {
  const outputDir = String(bundle.spec.metadata['outputDir'] ?? '');
  const file = `artifacts/${outputDir}/${CODE_SCORES}`;
  const wanted = String(bundle.spec.metadata['environments'] ?? '').split(',').filter(Boolean);
  const envs = scoresByEnvironment(await readJson(bundle.path(file))).filter((e) => wanted.includes(e.name));
  const metrics: TaskSummary['metrics'] = { environments: envs.length };
  for (const e of envs) for (const [k, v] of Object.entries(e.values)) metrics[`${k}.${e.name}`] = v;
  const missing = wanted.filter((w) => !envs.some((e) => e.name === w));
  const list = envs.map((e) => `${e.name} ${Object.entries(e.values).slice(0, 2).map(([k, v]) => `${k} ${fmt(v)}`).join(' ')}`).join(', ');
  const failure = await workloadFailure(bundle);
  const headline =
    outcome.status === 'succeeded' && envs.length
      ? `scored ${envs.length} of ${wanted.length} environment${wanted.length > 1 ? 's' : ''}: ${list}${missing.length ? `; no scores for ${missing.join(', ')}` : ''}`
      : `${outcomePrefix(outcome)}${failure ?? 'evaluation'}${envs.length ? `; scored ${list}` : `; no scores in ${file}`}`;
  return { headline, metrics, highlights: existingPaths(bundle, [file, `artifacts/${WORKLOAD_LOG}`]) };
}
