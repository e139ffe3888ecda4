/**
 * Bundles that run the user's own code (docs/job-contract.md): the staged workdir, the task's inputs,
 * scripts/workload_runner.py as the entrypoint, and a JobSpec whose checkpoints, metrics and results
 * folder follow the contract, so that sync, resume, health and the report work with no Orbit import.
 */
import { readFile } from 'node:fs/promises';
import type { Bundle, HealthRuleInput, JobSpecInput, Problem } from '../../bundle';
import { CONTRACT_DEFAULTS } from '../../bundle/render';
import {
  assertNoProblems,
  baseHealthRules,
  CONFIG_INPUT,
  createTaskBundle,
  jobSpecFor,
  pluginFile,
  pythonCommand,
  requestPath,
  runOptionProblems,
  type JobParts,
} from '../common';
import type { RunOptions } from '../common-schema';
import type { TaskPlugin } from '../types';
import { isGitUrl } from '../upstream/git';
import { commandProblems, runnerCommand } from './command';
import { inputProblems, stagedPath, stageInput, type StagedInput } from './inputs';
import { WORKLOAD_LOG, WORKLOAD_RECORD, type Command, type WorkdirSource } from './schema';
import { describeWorkdir, scanSource, stageWorkdir, type WorkdirScan, type WorkdirSourceInput } from './workdir';

const RUNNER = 'workload_runner.py';
/** Where the workdir's files go, relative to inputs/. */
export const WORKDIR_INPUT = 'workdir';

/** What the user-code forms of the tasks share. */
export interface CodeRequest extends RunOptions {
  workdir: WorkdirSource;
  setup?: Command;
  run: Command;
  outputDir: string;
  metrics: { key: string; goal?: 'min' | 'max' }[];
}

/** The contract's folders of a user-code job, relative to artifacts/. */
export function codeLayout(outputDir: string) {
  return {
    checkpoints: `${outputDir}/${CONTRACT_DEFAULTS.checkpoints}`,
    metrics: `${outputDir}/${CONTRACT_DEFAULTS.metrics}`,
    marker: CONTRACT_DEFAULTS.marker,
  };
}

/** The workdir with its paths resolved against the request file's folder (a git URL stays a URL). */
export function workdirSource(w: WorkdirSource, baseDir: string): WorkdirSourceInput {
  if (w.kind === 'local') return { kind: 'local', path: requestPath(baseDir, w.path), exclude: w.exclude, maxSizeMb: w.maxSizeMb };
  return { ...w, repository: isGitUrl(w.repository) ? w.repository : requestPath(baseDir, w.repository) };
}

/** Problems of the shared fields: the workdir, the commands against the files it stages, the run options. */
export async function codeProblems(request: CodeRequest, baseDir: string): Promise<{ problems: Problem[]; scan: WorkdirScan }> {
  const scan = await scanSource(workdirSource(request.workdir, baseDir));
  const given = request.workdir.kind === 'local' && request.workdir.given === 'path';
  const problems: Problem[] = scan.problems.map((p) => (given && p.path === 'workdir.path' ? { ...p, path: 'workdir' } : p));
  if (!scan.problems.length) {
    if (request.setup !== undefined) problems.push(...commandProblems('setup', request.setup, scan));
    problems.push(...commandProblems('run', request.run, scan));
  }
  problems.push(...(await runOptionProblems(request, baseDir)));
  return { problems, scan };
}

/** Problems of the task's inputs (each must exist and be readable). */
export async function stagedInputProblems(inputs: StagedInput[], what: string): Promise<Problem[]> {
  const problems: Problem[] = [];
  for (const i of inputs) problems.push(...(await inputProblems(i, what)));
  return problems;
}

/** What a task adds to the shared user-code job. */
export interface CodeJob {
  inputs: StagedInput[];
  /** Variables set to absolute paths of bundle files (relative to the bundle here). */
  paths: Record<string, string>;
  /** Variables set as they are. */
  values: Record<string, string>;
  expectedOutputs: JobParts['expectedOutputs'];
  health: HealthRuleInput[];
  metadata: Record<string, string | number | boolean>;
  /** Declare the checkpoint folder (training does; an evaluation writes none). */
  checkpoints: boolean;
}

/** The bundle of a user-code job. */
export async function buildCodeBundle(
  plugin: Pick<TaskPlugin, 'taskType' | 'jobKind'>,
  bundleDir: string,
  submission: { request: CodeRequest; jobId: string; baseDir: string },
  job: CodeJob,
): Promise<Bundle> {
  const { request, baseDir, jobId } = submission;
  const { problems, scan } = await codeProblems(request, baseDir);
  problems.push(...(await stagedInputProblems(job.inputs, 'a file or folder')));
  assertNoProblems(`${plugin.taskType} request`, problems);
  const layout = codeLayout(request.outputDir);
  const parts: JobParts = {
    defaults: { cpus: 1, memoryGb: 2 },
    command: pythonCommand(RUNNER),
    logFile: WORKLOAD_LOG,
    // The user's code needs what it needs: a request names modules in precheck.modules.
    modules: [],
    inputs: [
      { path: `${WORKDIR_INPUT}.json`, description: describeWorkdir(scan, describeSource(request.workdir)) },
      ...job.inputs.map((i) => ({ path: stagedPath(i).slice('inputs/'.length), description: `copy of ${i.source} (${i.field})` })),
    ],
    expectedOutputs: [{ path: WORKLOAD_RECORD, required: true }, { path: WORKLOAD_LOG, required: true }, ...job.expectedOutputs],
    ...(job.checkpoints ? { atomicDirs: [{ parent: layout.checkpoints, marker: layout.marker }] } : {}),
    ...(request.metrics.length ? { progress: { file: layout.metrics, format: 'jsonl' as const, step: 'step', metrics: request.metrics } } : {}),
    health: job.health,
    metadata: {
      mode: 'code',
      outputDir: request.outputDir,
      run: commandText(request.run),
      workdir: describeSource(request.workdir),
      staged: [describeWorkdir(scan), ...job.inputs.map((i) => `${i.field}: ${i.source}`)].join('; '),
      ...job.metadata,
    },
  };
  const spec: JobSpecInput = { ...jobSpecFor(plugin, jobId, request, parts), outputDir: request.outputDir };
  const config = {
    schemaVersion: 'orbit.workload.v1',
    workdir: `inputs/${WORKDIR_INPUT}`,
    setup: request.setup === undefined ? null : runnerCommand(request.setup),
    run: runnerCommand(request.run),
    paths: job.paths,
    values: job.values,
  };
  const bundle = await createTaskBundle(bundleDir, spec, { run: request, baseDir });
  await bundle.writeScript(RUNNER, await readFile(pluginFile('workload', RUNNER)), true);
  await bundle.writeInput(CONFIG_INPUT, JSON.stringify(config, null, 2) + '\n');
  await stageWorkdir(bundle, workdirSource(request.workdir, baseDir), WORKDIR_INPUT);
  for (const i of job.inputs) await stageInput(bundle, i);
  return bundle;
}

/** The health rules of a user-code job: NaN stops, a stall warns (on the first metric with a goal), plus the task's base rules. */
export function codeHealth(request: Pick<CodeRequest, 'metrics'>, base: HealthRuleInput[]): HealthRuleInput[] {
  const first = request.metrics[0];
  const judged = request.metrics.find((m) => m.goal);
  return [
    ...(first ? [{ rule: 'not-finite' as const, metric: first.key, onUnhealthy: 'stop' as const }] : []),
    ...(judged ? [{ rule: 'stalled' as const, metric: judged.key, onUnhealthy: 'warn' as const }] : []),
    ...base,
  ];
}

export { baseHealthRules, requestPath };

export function commandText(c: Command): string {
  return typeof c === 'string' ? c : c.join(' ');
}

function describeSource(w: WorkdirSource): string {
  return w.kind === 'local' ? w.path : `${w.repository}@${w.commit.slice(0, 12)}`;
}
