import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ARTIFACTS_DIR, GPU_AUDIT_SCRIPT, INPUTS_DIR, JOB_HELPER, MANIFEST_SCRIPT, PRECHECK_CONFIG, PRECHECK_SCRIPT, RUN_SCRIPT, SCRIPTS_DIR, TASK_CONFIG_INPUT } from '../common/layout';
import { ENV } from '../common/protocol';
import type { JobSpec } from './schema';
import { shellQuote } from '../common/shell';

/** Renders scripts/orbit/run.sh: the entrypoint wrapper, with the JobSpec's command and env baked in. */
export function renderRunScript(spec: JobSpec): string {
  const template = readFileSync(join(__dirname, 'templates', 'run.sh'), 'utf8');
  const command = spec.entrypoint.command.map(shellQuote).join(' ');
  const exports = Object.entries(spec.env)
    .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
    .join('\n');
  return template
    .replaceAll('@@CONTRACT_EXPORTS@@', contractExports(spec))
    .replaceAll('@@ENV_EXPORTS@@', exports || '# (no job environment)')
    .replaceAll('@@COMMAND_TEXT@@', command.replace(/[`$"\\]/g, '\\$&'))
    .replaceAll('@@LOG_FILE@@', spec.entrypoint.logFile)
    .replaceAll('@@PRECHECK_PYTHON@@', shellQuote(spec.precheck.python.interpreter))
    .replaceAll('@@PRECHECK_REQUIRED@@', spec.precheck.python.modules.length > 0 || spec.precheck.provenance.some((c) => c.required) ? '1' : '0')
    .replaceAll('@@COMMAND@@', command);
}

/** Where a job that declares no atomic folder or progress series is told to put them (not judged, not gated). */
export const CONTRACT_DEFAULTS = { checkpoints: 'checkpoints', marker: 'COMPLETE', metrics: 'metrics.jsonl' } as const;

/**
 * The job contract's variables (docs/job-contract.md), the same for every task: where results,
 * checkpoints and the progress series go, from the JobSpec alone. The checkpoint folder is the first
 * atomic folder (sync.atomicDirs) and the metrics file the progress series; a job that declares
 * neither gets the defaults under its output folder, which Orbit does not gate or judge.
 */
export function contractExports(spec: JobSpec): string {
  const out = spec.outputDir ? `${ARTIFACTS_DIR}/${spec.outputDir}` : ARTIFACTS_DIR;
  const path = (rel: string) => `"$BUNDLE/"${shellQuote(rel)}`;
  const unit = spec.sync.atomicDirs[0];
  const lines = [
    `export ${ENV.outputDir}=${path(out)}`,
    `export ${ENV.checkpointDir}=${path(unit ? `${ARTIFACTS_DIR}/${unit.parent}` : `${out}/${CONTRACT_DEFAULTS.checkpoints}`)}`,
    `export ${ENV.checkpointMarker}=${shellQuote(unit?.marker ?? CONTRACT_DEFAULTS.marker)}`,
    `export ${ENV.metricsFile}=${path(spec.progress ? `${ARTIFACTS_DIR}/${spec.progress.file}` : `${out}/${CONTRACT_DEFAULTS.metrics}`)}`,
  ];
  if (spec.inputs.some((i) => i.path === TASK_CONFIG_INPUT)) lines.push(`export ${ENV.taskConfig}="$BUNDLE/${INPUTS_DIR}/${TASK_CONFIG_INPUT}"`);
  return lines.join('\n');
}

/** Renders scripts/orbit/precheck.json: what scripts/orbit/precheck.py checks, from the JobSpec's `precheck`. */
export function renderPrecheckConfig(spec: JobSpec): string {
  return JSON.stringify({ schemaVersion: 'orbit.precheck.v1', ...spec.precheck }, null, 2) + '\n';
}

/** One generated file under scripts/, relative to scripts/. */
export interface RuntimeScript {
  rel: string;
  data: string;
  executable: boolean;
}

/**
 * Every core runtime file of a bundle: the wrapper, the manifest writer, the precheck and its config,
 * and the GPU audit. Task-agnostic: only the JobSpec shapes them.
 */
export function renderRuntimeScripts(spec: JobSpec): RuntimeScript[] {
  const template = (name: string) => readFileSync(join(__dirname, 'templates', name), 'utf8');
  const under = (path: string) => path.slice(SCRIPTS_DIR.length + 1);
  return [
    { rel: under(RUN_SCRIPT), data: renderRunScript(spec), executable: true },
    { rel: under(MANIFEST_SCRIPT), data: template('manifest.py'), executable: true },
    { rel: under(PRECHECK_SCRIPT), data: template('precheck.py'), executable: true },
    { rel: under(PRECHECK_CONFIG), data: renderPrecheckConfig(spec), executable: false },
    { rel: under(GPU_AUDIT_SCRIPT), data: template('gpu_audit.py'), executable: true },
    { rel: under(JOB_HELPER), data: template('orbit_job.py'), executable: false },
  ];
}
