/** The training task in its user-code form: the user's script, datasets staged, checkpoints and metrics by the contract. */
import type { Bundle, Problem } from '../../bundle';
import { baseHealthRules, existingPaths, fmt, numberField, outcomePrefix, readJsonLines, requestPath } from '../common';
import type { RunOutcome, TaskPlugin, TaskSubmission, TaskSummary } from '../types';
import { buildCodeBundle, codeHealth, codeLayout, codeProblems, stagedInputProblems, type CodeJob } from './build';
import { stagedPath, type StagedInput } from './inputs';
import { inputEnvName, WORKLOAD_LOG, type TrainingCodeRequest } from './schema';
import { completeUnits, workloadFailure } from './summary';

const DATASETS_INPUT = 'datasets';

function datasetInputs(request: TrainingCodeRequest, baseDir: string): StagedInput[] {
  return Object.entries(request.datasets).map(([name, path]) => ({ field: `datasets.${name}`, source: requestPath(baseDir, path), dest: `${DATASETS_INPUT}/${name}` }));
}

export async function validateTrainingCode(request: TrainingCodeRequest, baseDir: string): Promise<Problem[]> {
  const { problems } = await codeProblems(request, baseDir);
  return [...problems, ...(await stagedInputProblems(datasetInputs(request, baseDir), 'a dataset file or folder'))];
}

export async function buildTrainingCodeBundle(plugin: Pick<TaskPlugin, 'taskType' | 'jobKind'>, bundleDir: string, submission: TaskSubmission<TrainingCodeRequest>): Promise<Bundle> {
  const { request, baseDir } = submission;
  const inputs = datasetInputs(request, baseDir);
  const job: CodeJob = {
    inputs,
    paths: {
      ORBIT_DATA_DIR: `inputs/${DATASETS_INPUT}`,
      ...Object.fromEntries(inputs.map((i) => [inputEnvName('ORBIT_DATASET_', i.dest.slice(DATASETS_INPUT.length + 1)), stagedPath(i)])),
    },
    values: { ORBIT_DATASETS: Object.keys(request.datasets).join(',') },
    expectedOutputs: [],
    health: codeHealth(request, baseHealthRules(30, 15)),
    metadata: { datasets: Object.keys(request.datasets).join(',') },
    checkpoints: true,
  };
  return buildCodeBundle(plugin, bundleDir, submission, job);
}

/** What the run left: the headline metric's first and last value, the steps, the newest complete checkpoint. */
export async function summarizeTrainingCode(bundle: Bundle, outcome: RunOutcome): Promise<TaskSummary> {
  const outputDir = String(bundle.spec.metadata['outputDir'] ?? '');
  const layout = codeLayout(outputDir);
  const metric = bundle.spec.progress?.metrics[0]?.key;
  const records = (await readJsonLines(bundle.path(`artifacts/${layout.metrics}`))).filter((r) => numberField(r, 'step') !== null);
  const first = metric ? numberField(records[0], metric) : null;
  const last = metric ? numberField(records.at(-1), metric) : null;
  const steps = numberField(records.at(-1), 'step');
  const units = await completeUnits(bundle.path(`artifacts/${layout.checkpoints}`), layout.marker);
  const newest = units.at(-1);
  const newestPath = newest ? `artifacts/${layout.checkpoints}/${newest}` : null;
  const trend = metric && records.length ? `${metric} ${fmt(first)} -> ${fmt(last)}` : 'no metrics recorded';
  const where = newestPath ? `last complete checkpoint ${newestPath} (${units.length} in all)` : 'no complete checkpoint';
  const failure = await workloadFailure(bundle);
  const headline =
    outcome.status === 'succeeded'
      ? `trained ${steps ?? '?'} steps: ${trend}; ${where}`
      : `${outcomePrefix(outcome)}${failure ?? `training reached step ${steps ?? 'none'}`}; ${trend}; ${where}`;
  return {
    headline,
    metrics: { steps, [`first.${metric ?? 'metric'}`]: first, [`final.${metric ?? 'metric'}`]: last, checkpoints: units.length, finalCheckpoint: newestPath },
    highlights: existingPaths(bundle, [`artifacts/${layout.metrics}`, `artifacts/${WORKLOAD_LOG}`, ...(newestPath ? [newestPath] : [])]),
  };
}
