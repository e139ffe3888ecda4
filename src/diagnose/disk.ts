/** The full-disk finding of the diagnosis's runtime layer: ENOSPC in the logs, a disk reading near 0, or the wrapper's own writes failed. */
import { join } from 'node:path';
import { ARTIFACTS_DIR, EXIT_CODE_FILE, PRECHECK_LOG, RUNTIME_LOG } from '../common/layout';
import { WRAPPER_OUT_FILE } from '../common/protocol';
import { dedupeEvidence, type Evidence, type LayerFinding } from './findings';
import { diskReadings, DISK_FULL_LINE, numberedLines, readText, type DiskReading, type RuntimeEvent } from './sources';
import { ev, runtimeEv } from './evidence';

/** A disk with at most this much free (MB), or this share of its total (capped at 1 GB), counts as full. */
export const DISK_FULL_MB = 8;
export const DISK_FULL_FRACTION = 0.01;

/** What the finding reads of the diagnosis's context. */
export interface DiskContext {
  dir: string;
  logFile: string;
  runtime: RuntimeEvent[];
  runtimeText?: string;
  exitCode: number | null;
  exitCodeFrom?: 'exit_code' | 'last_run' | 'runtime.log';
}


/** Whether a disk reading is (nearly) full: at most DISK_FULL_MB free, or DISK_FULL_FRACTION of its total (up to 1 GB). */
const nearlyFull = (r: DiskReading) => r.freeMb <= Math.max(DISK_FULL_MB, Math.min(1024, (r.totalMb ?? 0) * DISK_FULL_FRACTION));

/**
 * The host's disk filled up: a write failed with ENOSPC (in the task log, runtime.log, the wrapper's
 * own output or the precheck's), the wrapper's disk reading (probe or exit line) is near 0, or the
 * wrapper could write neither the manifest nor runtime/exit_code. Only for a run that did not end
 * cleanly: a healthy run on a nearly full disk is still healthy.
 */
export async function diskFullFinding(ctx: DiskContext): Promise<LayerFinding | undefined> {
  const logRel = `${ARTIFACTS_DIR}/${ctx.logFile}`;
  const enospc: Evidence[] = [];
  const inFiles: string[] = [];
  for (const file of [logRel, RUNTIME_LOG, WRAPPER_OUT_FILE, PRECHECK_LOG, 'runtime/precheck.out', 'runtime/gpu_audit.out']) {
    const text = file === RUNTIME_LOG ? ctx.runtimeText : await readText(join(ctx.dir, file));
    const hits = text === undefined ? [] : numberedLines(text).filter((l) => DISK_FULL_LINE.test(l.text));
    if (!hits.length) continue;
    inFiles.push(file);
    // The first and the last of each file: where it began, and what it did last.
    enospc.push(...dedupeEvidence([hits[0]!, hits.at(-1)!].map((l) => ev(file, { line: l.line, text: l.text.slice(0, 400) }))));
  }
  const manifestFailed = [...ctx.runtime].reverse().find((e) => e.phase === 'manifest' && /^manifest FAILED/.test(e.text) && !/python3 not found/.test(e.text));
  const unwritten = ctx.exitCodeFrom === 'runtime.log';
  const readings = diskReadings(ctx.runtime);
  const full = readings.filter(nearlyFull);
  if (ctx.exitCode === 0 && !manifestFailed && !unwritten) return undefined;
  if (!enospc.length && !full.length && !(manifestFailed && unwritten)) return undefined;
  const reading = full.at(-1) ?? readings.at(-1);
  const amount = reading ? `${reading.freeMb} MB free of ${reading.totalMb ?? '?'} MB ${reading.event.phase === 'exit' ? 'when the job ended' : 'when the wrapper started'}` : 'free space not recorded';
  const said = [
    ...(enospc.length ? [`"No space left on device" in ${inFiles.join(', ')}`] : []),
    ...(manifestFailed ? [`the wrapper could not write ${ARTIFACTS_DIR}/manifest.json`] : []),
    ...(unwritten ? [`${EXIT_CODE_FILE} was not written: exit code ${ctx.exitCode} is from the exit line of ${RUNTIME_LOG}`] : []),
  ];
  const exitLine = ctx.runtime.find((e) => e.phase === 'exit');
  return {
    layer: 'runtime',
    status: 'failed',
    kind: 'disk-full',
    summary: `the host's disk filled up (${amount})${said.length ? `: ${said.join('; ')}` : ''}`,
    evidence: [...enospc, ...(exitLine ? [runtimeEv(exitLine)] : []), ...(manifestFailed ? [runtimeEv(manifestFailed)] : []), ...(reading ? [runtimeEv(reading.event)] : [])],
  };
}

