import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JobSpec } from './schema';

/** Quotes one word for POSIX sh. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./=:@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

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
    .replaceAll('@@COMMAND@@', command);
}
