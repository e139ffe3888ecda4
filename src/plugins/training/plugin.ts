import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
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
  readJson,
  readJsonLines,
  readTail,
  requestPath,
  runOptionProblems,
  SchemaPlugin,
} from '../common';
import type { RunOutcome, TaskPlugin, TaskSubmission, TaskSummary } from '../types';
import { TRAINING_LOG, TRAINING_METRICS, TRAINING_SERIES, trainingRequestSchema, type TrainingRequest } from './schema';
import { checkText, MAX_VOCAB } from './text';

const DATA_INPUT_DIR = 'data';
/** What trainer.py, scripts/tabular.py and scripts/charlm.py import beyond the standard library (torch.load(weights_only=...) needs 1.13, scaled_dot_product_attention 2.0; 2.0 is the floor tested). */
export const TRAINING_MODULES = [{ name: 'torch', minVersion: '2.0' }];
/** The shared model code a bundle's scripts import: scripts/charlm.py. */
export const CHARLM_SCRIPT = { name: 'charlm.py', source: pluginFile('python', 'charlm.py') };
/** A char-lm's text needs this many times contextLength + 1 characters: the last 5% is held out for validation, and the rest must hold windows to sample. */
const MIN_TEXT_WINDOWS = 20;

/**
 * Trains a small model with PyTorch on CPU, with resumable step-N checkpoints: a character-level
 * causal transformer LM on a text (model.kind char-lm), or an MLP regressor on a CSV table (mlp).
 * The built-in trainer is the functions below (validateBuiltinTraining, buildBuiltinTrainingBundle,
 * summarizeBuiltinTraining); the methods call them.
 */
export class TrainingPlugin extends SchemaPlugin<typeof trainingRequestSchema> implements TaskPlugin<typeof trainingRequestSchema> {
  readonly taskType = 'training';
  readonly jobKind = 'train';
  readonly description = 'train a small model on CPU (PyTorch) with resumable checkpoints: a character-level transformer LM on a text, or an MLP regressor on a CSV table';
  override readonly requestSchema = trainingRequestSchema;

  validate(request: TrainingRequest, baseDir: string): Promise<Problem[]> {
    return validateBuiltinTraining(request, baseDir);
  }

  buildBundle(bundleDir: string, submission: TaskSubmission<TrainingRequest>): Promise<Bundle> {
    return buildBuiltinTrainingBundle(this, bundleDir, submission);
  }

  summarizeResult(bundle: Bundle, outcome: RunOutcome): Promise<TaskSummary> {
    return summarizeBuiltinTraining(bundle, outcome);
  }
}

/** The dataset's problems: a text a char-lm can train on (UTF-8, long enough for its context), or a table an MLP can fit. */
export async function validateBuiltinTraining(request: TrainingRequest, baseDir: string): Promise<Problem[]> {
  const abs = requestPath(baseDir, request.datasetPath);
  const { model } = request;
  const problems =
    model.kind === 'char-lm'
      ? (
          await checkText(abs, 'datasetPath', {
            minChars: MIN_TEXT_WINDOWS * (model.contextLength + 1),
            maxVocab: MAX_VOCAB,
            why: `${MIN_TEXT_WINDOWS} x (model.contextLength + 1) for a char-lm with contextLength ${model.contextLength}: the last 5% is held out for validation`,
          })
        ).problems
      : (await checkTable(abs, 'datasetPath')).problems;
  return [...problems, ...(await runOptionProblems(request, baseDir))];
}

export async function buildBuiltinTrainingBundle(
  plugin: Pick<TaskPlugin, 'taskType' | 'jobKind'>,
  bundleDir: string,
  submission: TaskSubmission<TrainingRequest>,
): Promise<Bundle> {
  const { request, baseDir, jobId } = submission;
  assertNoProblems('training request', await validateBuiltinTraining(request, baseDir));
  const dataset = `${DATA_INPUT_DIR}/${basename(request.datasetPath)}`;
  const finalCheckpoint = `${request.outputDir}/step-${request.steps}`;
  const spec = jobSpecFor(plugin, jobId, request, {
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
    metadata: { outputDir: request.outputDir, steps: request.steps, datasetFile: basename(request.datasetPath), modelKind: request.model.kind },
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
  await bundle.writeScript(CHARLM_SCRIPT.name, await readFile(CHARLM_SCRIPT.source));
  await bundle.copyInput(requestPath(baseDir, request.datasetPath), dataset);
  return bundle;
}

/**
 * What the run achieved, from what it left: the last complete checkpoint's log (steps, loss; a
 * char-lm's validation loss from its meta.json), else the last `step N/M` line of the training log; a
 * run that recorded no step says so. Names only files that exist.
 */
export async function summarizeBuiltinTraining(bundle: Bundle, outcome: RunOutcome): Promise<TaskSummary> {
  const outputDir = String(bundle.spec.metadata['outputDir'] ?? 'checkpoints');
  const wanted = Number(bundle.spec.metadata['steps'] ?? 0);
  const charLm = bundle.spec.metadata['modelKind'] === 'char-lm';
  const checkpoints = await completeCheckpoints(bundle.path(join('artifacts', outputDir)));
  const last = checkpoints.at(-1);
  const lastPath = last === undefined ? null : `artifacts/${outputDir}/step-${last}`;
  const log = last === undefined ? [] : await readJsonLines(bundle.path(`${lastPath}/${TRAINING_SERIES}`));
  const firstLoss = numberField(log[0], 'loss');
  const finalLoss = numberField(log.at(-1), 'loss');
  const checkpointStep = numberField(log.at(-1), 'step');
  const valLoss = charLm && lastPath ? numberField(await readJson(bundle.path(`${lastPath}/meta.json`)), 'valLoss') : null;
  const loggedStep = checkpointStep === null ? await lastLoggedStep(bundle.path(`artifacts/${TRAINING_LOG}`)) : null;
  const reached =
    checkpointStep !== null
      ? `reached step ${checkpointStep} of ${wanted}`
      : loggedStep !== null
        ? `logged step ${loggedStep} of ${wanted} in ${TRAINING_LOG}`
        : `recorded no step (of ${wanted})`;
  const validation = valLoss === null ? '' : `, validation loss ${fmt(valLoss)} (perplexity ${fmt(Math.exp(valLoss))})`;
  const headline =
    outcome.status === 'succeeded' && last !== undefined
      ? `trained ${checkpointStep ?? '?'} steps: loss ${fmt(firstLoss)} -> ${fmt(finalLoss)}${validation}`
      : `${outcomePrefix(outcome)}training ${reached}; ` +
        (lastPath ? `last complete checkpoint ${lastPath} (loss ${fmt(firstLoss)} -> ${fmt(finalLoss)}${validation})` : 'no complete checkpoint');
  const highlights = existingPaths(bundle, [`artifacts/${TRAINING_METRICS}`, `artifacts/${TRAINING_LOG}`, ...(lastPath ? [lastPath] : [])]);
  return {
    headline,
    metrics: { firstLoss, finalLoss, ...(charLm ? { valLoss } : {}), steps: checkpointStep ?? loggedStep, checkpoints: checkpoints.length, finalCheckpoint: lastPath },
    highlights,
  };
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
