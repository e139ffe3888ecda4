/** The GPU layer of the diagnosis (layer 5). */
import { join } from 'node:path';
import { GPU_AUDIT_LOG } from '../common/layout';
import { GPU_MEMORY_DEFAULTS, judgeGpuMemory } from '../health/gpu-memory';
import { dedupeEvidence, type LayerFinding } from './findings';
import { parseGpuAudit, readText, type RuntimeEvent } from './sources';
import { ev, runtimeEv } from './evidence';

/** GPU memory at or above this share of the total, near the end, counts as "at the limit". */
export const GPU_LIMIT_FRACTION = GPU_MEMORY_DEFAULTS.limitFraction;

/** What the GPU layer reads of the diagnosis's context. */
export interface GpuContext {
  dir: string;
  exitCode: number | null;
  runtime: RuntimeEvent[];
}


/** Layer 5: GPU memory from artifacts/nvml-audit.jsonl; out of memory only when a climb to the limit meets the exit (judgeGpuMemory). */
export async function gpuLayer(ctx: GpuContext): Promise<LayerFinding> {
  const base = { layer: 'gpu' as const };
  const text = await readText(join(ctx.dir, GPU_AUDIT_LOG));
  if (text === undefined) return { ...base, status: 'skipped', summary: `no ${GPU_AUDIT_LOG}`, evidence: [] };
  const audit = parseGpuAudit(text);
  if (!audit.samples.length) {
    if (audit.noGpu) return { ...base, status: 'skipped', summary: `no GPU on the host: ${audit.noGpu.reason}`, evidence: [ev(GPU_AUDIT_LOG, { line: audit.noGpu.line, text: audit.noGpu.raw })] };
    return { ...base, status: 'skipped', summary: `${GPU_AUDIT_LOG} has no samples`, evidence: [] };
  }
  // The end the samples are measured against: the wrapper's exit line (undefined when it never wrote one).
  const exitAt = [...ctx.runtime].reverse().find((e) => e.phase === 'exit' && Number.isFinite(e.ms))?.ms;
  const verdicts = judgeGpuMemory(audit.samples, exitAt);
  const sampleEv = (s: { line: number; raw: string }) => ev(GPU_AUDIT_LOG, { line: s.line, text: s.raw });
  const exitEv = [...ctx.runtime].reverse().find((e) => e.phase === 'exit');
  const oom = ctx.exitCode === 0 ? undefined : verdicts.find((v) => v.outOfMemory);
  if (oom) {
    const { low, peak } = oom;
    const seconds = Number.isFinite(peak!.ms) && Number.isFinite(low!.ms) ? ` within ${((peak!.ms - low!.ms) / 1000).toFixed(0)}s` : '';
    const gap = oom.gapMs !== undefined && exitAt !== undefined ? `, ${(oom.gapMs / 1000).toFixed(1)}s before the exit` : ', at its last sample';
    return {
      ...base,
      status: 'failed',
      kind: 'memory-limit',
      summary: `GPU ${oom.gpu} memory climbed from ${low!.memUsedMib} MiB to ${peak!.memUsedMib} of ${peak!.memTotalMib} MiB (${((peak!.memUsedMib! / peak!.memTotalMib!) * 100).toFixed(1)}%)${seconds}, just before the end${gap}: out of GPU memory`,
      evidence: dedupeEvidence([sampleEv(low!), sampleEv(peak!), sampleEv(oom.last!), ...(exitEv ? [runtimeEv(exitEv)] : [])]),
    };
  }
  const notes: string[] = [];
  for (const v of verdicts) {
    const utils = audit.samples.filter((s) => s.gpu === v.gpu).map((s) => s.utilPct).filter((u): u is number => u !== null);
    const util = utils.length ? `, mean utilization ${(utils.reduce((a, b) => a + b, 0) / utils.length).toFixed(0)}%` : '';
    const m = v.maxSample!;
    // At the limit without being out of memory (flat, or long before the exit): said, so a kill is not read as an OOM.
    const why = v.atLimit && ctx.exitCode !== 0 ? ` (${v.reason})` : '';
    notes.push(`GPU ${v.gpu} peak ${m.memUsedMib}/${m.memTotalMib} MiB (${((m.memUsedMib! / m.memTotalMib!) * 100).toFixed(1)}%)${util}${why}`);
  }
  return { ...base, status: 'ok', summary: `${notes.join('; ') || 'no memory readings'} over ${audit.samples.length} samples`, evidence: [] };
}


