import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GPU_AUDIT_SCRIPT, MANIFEST_SCRIPT, PRECHECK_CONFIG, PRECHECK_SCRIPT, RUN_SCRIPT, SCRIPTS_DIR } from '../common/layout';
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
    .replaceAll('@@ENV_EXPORTS@@', exports || '# (no job environment)')
    .replaceAll('@@COMMAND_TEXT@@', command.replace(/[`$"\\]/g, '\\$&'))
    .replaceAll('@@LOG_FILE@@', spec.entrypoint.logFile)
    .replaceAll('@@PRECHECK_PYTHON@@', shellQuote(spec.precheck.python.interpreter))
    .replaceAll('@@PRECHECK_REQUIRED@@', spec.precheck.python.modules.length > 0 || spec.precheck.provenance.some((c) => c.required) ? '1' : '0')
    .replaceAll('@@COMMAND@@', command);
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
  ];
}
