import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
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
  readJsonLines,
  readTail,
  requestPath,
  runOptionProblems,
  SchemaPlugin,
} from '../common';
import type { RunOutcome, TaskPlugin, TaskSubmission, TaskSummary } from '../types';
import { TRAINING_LOG, TRAINING_METRICS, TRAINING_SERIES, trainingRequestSchema, type TrainingRequest } from './schema';

const DATA_INPUT_DIR = 'data';
/** What trainer.py and scripts/tabular.py import beyond the standard library (torch.load(weights_only=...) needs 1.13; 2.0 is the floor tested). */
export const TRAINING_MODULES = [{ name: 'torch', minVersion: '2.0' }];

/** Trains a small MLP regressor on a CSV table (PyTorch, CPU) with resumable step-N checkpoints. */
export class TrainingPlugin extends SchemaPlugin<typeof trainingRequestSchema> implements TaskPlugin<typeof trainingRequestSchema> {
  readonly taskType = 'training';
  readonly jobKind = 'train';
  readonly description = 'fit a small MLP regressor to a CSV table (PyTorch, CPU), with resumable checkpoints';
  override readonly requestSchema = trainingRequestSchema;

  async validate(request: TrainingRequest, baseDir: string): Promise<Problem[]> {
    const { problems } = await checkTable(requestPath(baseDir, request.datasetPath), 'datasetPath');
    return [...problems, ...(await runOptionProblems(request, baseDir))];
  }

  async buildBundle(bundleDir: string, submission: TaskSubmission<TrainingRequest>): Promise<Bundle> {
    const { request, baseDir, jobId } = submission;
    assertNoProblems('training request', await this.validate(request, baseDir));
    const dataset = `${DATA_INPUT_DIR}/${basename(request.datasetPath)}`;
    const finalCheckpoint = `${request.outputDir}/step-${request.steps}`;
    const spec = jobSpecFor(this, jobId, request, {
      defaults: { cpus: 2, memoryGb: 2 },
      command: pythonCommand('trainer.py'),
      logFile: TRAINING_LOG,
      modules: TRAINING_MODULES,
      inputs: [{ path: dataset, description: `copy of ${request.datasetPath}` }],
      expectedOutputs: [
        { path: TRAINING_METRICS, required: true },
        { path: TRAINING_LOG, required: true },
        { path: `${finalCheckpoint}/model.pt`, required: true },
        { path: `${finalCheckpoint}/COMPLETE`, required: true },
      ],
      atomicDirs: [{ parent: request.outputDir, marker: 'COMPLETE' }],
      metadata: { outputDir: request.outputDir, steps: request.steps, datasetFile: basename(request.datasetPath) },
      // Every checkpoint holds the log up to its step: the longest copy is the run's curve.
      progress: { file: TRAINING_SERIES, format: 'jsonl', step: 'step', metrics: [{ key: 'loss', goal: 'min' }] },
      // A NaN loss never recovers: stop paying for it. A stall only warns (a learning-rate schedule may be at fault, not the run).
      health: [{ rule: 'not-finite', metric: 'loss', onUnhealthy: 'stop' }, { rule: 'stalled', metric: 'loss', onUnhealthy: 'warn' }, ...baseHealthRules(30, 15)],
    });
    const config = {
      dataset: `inputs/${dataset}`,
      outputDir: request.outputDir,
      model: request.model,
      steps: request.steps,
      batchSize: request.batchSize,
      learningRate: request.learningRate,
      checkpointEvery: request.checkpointEvery,
      seed: request.seed,
      secondsPerStep: request.secondsPerStep,
      threads: Math.min(2, request.resources?.cpus ?? 2),
    };
    const bundle = await createPythonBundle(bundleDir, spec, { name: 'trainer.py', source: pluginFile('training', 'trainer.py') }, config, { run: request, baseDir });
    await bundle.copyInput(requestPath(baseDir, request.datasetPath), dataset);
    return bundle;
  }

  /**
   * What the run achieved, from what it left: the last complete checkpoint's log (steps, loss), else
   * the last `step N/M` line of the training log; a run that recorded no step says so. Names only files that exist.
   */
  async summarizeResult(bundle: Bundle, outcome: RunOutcome): Promise<TaskSummary> {
    const outputDir = String(bundle.spec.metadata['outputDir'] ?? 'checkpoints');
    const wanted = Number(bundle.spec.metadata['steps'] ?? 0);
    const checkpoints = await completeCheckpoints(bundle.path(join('artifacts', outputDir)));
    const last = checkpoints.at(-1);
    const lastPath = last === undefined ? null : `artifacts/${outputDir}/step-${last}`;
    const log = last === undefined ? [] : await readJsonLines(bundle.path(`${lastPath}/${TRAINING_SERIES}`));
    const firstLoss = numberField(log[0], 'loss');
    const finalLoss = numberField(log.at(-1), 'loss');
    const checkpointStep = numberField(log.at(-1), 'step');
    const loggedStep = checkpointStep === null ? await lastLoggedStep(bundle.path(`artifacts/${TRAINING_LOG}`)) : null;
    const reached =
      checkpointStep !== null
        ? `reached step ${checkpointStep} of ${wanted}`
        : loggedStep !== null
          ? `logged step ${loggedStep} of ${wanted} in ${TRAINING_LOG}`
          : `recorded no step (of ${wanted})`;
    const headline =
      outcome.status === 'succeeded' && last !== undefined
        ? `trained ${checkpointStep ?? '?'} steps: loss ${fmt(firstLoss)} -> ${fmt(finalLoss)}`
        : `${outcomePrefix(outcome)}training ${reached}; ` +
          (lastPath ? `last complete checkpoint ${lastPath} (loss ${fmt(firstLoss)} -> ${fmt(finalLoss)})` : 'no complete checkpoint');
    const highlights = existingPaths(bundle, [`artifacts/${TRAINING_METRICS}`, `artifacts/${TRAINING_LOG}`, ...(lastPath ? [lastPath] : [])]);
    return {
      headline,
      metrics: { firstLoss, finalLoss, steps: checkpointStep ?? loggedStep, checkpoints: checkpoints.length, finalCheckpoint: lastPath },
      highlights,
    };
  }
}

/** The step of the last `step N/M ...` line trainer.py printed, or null when it printed none (or the log is missing). */
async function lastLoggedStep(logPath: string): Promise<number | null> {
  const text = await readTail(logPath);
  const steps = [...(text ?? '').matchAll(/^step (\d+)\/\d+ /gm)];
  const n = Number(steps.at(-1)?.[1]);
  return Number.isSafeInteger(n) ? n : null;
}

/** Steps of the complete (COMPLETE-marked) step-N folders in `dir`, ascending. */
async function completeCheckpoints(dir: string): Promise<number[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names
    .map((name) => /^step-(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null && existsSync(join(dir, m[0], 'COMPLETE')))
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}
