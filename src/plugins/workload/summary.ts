/** Reading back what a user-code job left: its runner record, complete checkpoint folders, scores. */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Bundle } from '../../bundle';
import { readJson } from '../common';
import { WORKLOAD_RECORD } from './schema';

/** The complete unit folders (holding `marker`) of a checkpoint folder, by the numbers in their names. */
export async function completeUnits(dir: string, marker: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const key = (n: string) => (n.match(/\d+/g) ?? []).map(Number);
  return names
    .filter((n) => !n.startsWith('.') && existsSync(join(dir, n, marker)))
    .sort((a, b) => {
      const ka = key(a);
      const kb = key(b);
      for (let i = 0; i < Math.max(ka.length, kb.length); i++) if ((ka[i] ?? -1) !== (kb[i] ?? -1)) return (ka[i] ?? -1) - (kb[i] ?? -1);
      return a < b ? -1 : a > b ? 1 : 0;
    });
}

interface PhaseRecord {
  command?: unknown;
  exitCode?: unknown;
  signal?: unknown;
}

/** Why the user's code failed, from artifacts/workload.json: "setup `pip install ...` failed with exit code 3; run not started". */
export async function workloadFailure(bundle: Bundle): Promise<string | undefined> {
  const record = (await readJson(bundle.path(`artifacts/${WORKLOAD_RECORD}`))) as Record<string, unknown> | undefined;
  if (typeof record !== 'object' || record === null) return undefined;
  const phase = record['failedPhase'];
  if (phase !== 'setup' && phase !== 'run') return undefined;
  const p = (record[phase] ?? {}) as PhaseRecord;
  const command = typeof p.command === 'string' ? ` \`${p.command.length > 80 ? `${p.command.slice(0, 77)}...` : p.command}\`` : '';
  const how = typeof p.signal === 'string' ? `was killed by ${p.signal}` : typeof p.exitCode === 'number' ? `failed with exit code ${p.exitCode}` : 'failed';
  return `${phase}${command} ${how}${phase === 'setup' ? '; run not started' : ''}`;
}

/** Per environment, its numeric scores: {env: {metric: value}}; anything else in the file is ignored (it comes from the host). */
export function scoresByEnvironment(scores: unknown): { name: string; values: Record<string, number> }[] {
  const envs = (scores as { environments?: unknown } | undefined)?.environments;
  if (typeof envs !== 'object' || envs === null || Array.isArray(envs)) return [];
  return Object.entries(envs as Record<string, unknown>).map(([name, s]) => ({
    name,
    values: Object.fromEntries(
      Object.entries(typeof s === 'object' && s !== null ? (s as Record<string, unknown>) : {}).filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1])),
    ),
  }));
}
