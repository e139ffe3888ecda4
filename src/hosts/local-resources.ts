/**
 * What the worker's own machine ("local") offers the fleet: its GPUs as `nvidia-smi -L` lists them,
 * its CPUs and memory. hosts.yaml's `local:` section overrides any of these.
 */
import { execFile } from 'node:child_process';
import { availableParallelism, totalmem } from 'node:os';
import { promisify } from 'node:util';
import type { FleetHostSpec } from '../common/fleet';
import { LOCAL_HOST } from '../common/fleet';

const run = promisify(execFile);

/** GPU indices and model from `nvidia-smi -L` lines (`GPU 0: NVIDIA A100-SXM4-80GB (UUID: ...)`); none without nvidia-smi. */
export function parseGpuList(text: string): { indices: number[]; model?: string } {
  const indices: number[] = [];
  let model: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^GPU (\d{1,3}): ?(.*?)(?: \(UUID:.*)?$/.exec(line.trim());
    if (!m) continue;
    indices.push(Number(m[1]));
    model ??= m[2]?.trim() || undefined;
  }
  return { indices: [...new Set(indices)].sort((a, b) => a - b), ...(model ? { model } : {}) };
}

export async function detectLocalGpus(): Promise<{ indices: number[]; model?: string }> {
  try {
    const { stdout } = await run('nvidia-smi', ['-L'], { timeout: 10_000, maxBuffer: 1 << 20 });
    return parseGpuList(stdout);
  } catch {
    return { indices: [] };
  }
}

export interface LocalOverrides {
  gpus?: number;
  gpuType?: string;
  cpus?: number;
  memoryGb?: number;
  labels?: string[];
  pricePerHour?: number;
}

/** The local host's spec: detected, then overridden (an override of `gpus: N` gives indices 0..N-1). */
export async function localHostSpec(overrides: LocalOverrides = {}): Promise<FleetHostSpec> {
  const detected = overrides.gpus === undefined ? await detectLocalGpus() : { indices: Array.from({ length: overrides.gpus }, (_, i) => i) };
  const gpuType = overrides.gpuType ?? ('model' in detected ? detected.model : undefined);
  return {
    name: LOCAL_HOST,
    gpus: detected.indices,
    ...(gpuType ? { gpuType } : {}),
    cpus: overrides.cpus ?? availableParallelism(),
    memoryGb: overrides.memoryGb ?? Math.floor(totalmem() / 2 ** 30),
    labels: overrides.labels ?? [],
    ...(overrides.pricePerHour !== undefined ? { pricePerHour: overrides.pricePerHour } : {}),
  };
}
