/**
 * Collected bundles for the report's charts, written by hand (no run): a frozen bundle, then the
 * files a run would have left in artifacts/ and runtime/. Times are fixed, so a test knows where
 * each mark falls.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Bundle } from '../../src/bundle';

/** As helpers.ts LOSS_SERIES (not imported: this module also serves scripts run outside vitest). */
const LOSS_SERIES = { file: 'logging.jsonl', step: 'step', metrics: [{ key: 'loss', goal: 'min' as const }] };

/** The run's first runtime.log line; everything else is an offset from it. */
export const T0 = Date.parse('2026-11-25T10:00:00.000Z');
export const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();

/** A loss that diverges: 1 at step 1, x10 every 4 steps up to 1e12 at step 49, then inf at 50 and NaN from 51 to 60. */
export const DIVERGING_LOSS = Array.from({ length: 60 }, (_, i) => {
  const step = i + 1;
  if (step === 50) return { step, loss: 'inf' as const };
  if (step > 50) return { step, loss: 'nan' as const };
  return { step, loss: 10 ** ((step - 1) / 4) };
});

/** runtime.log lines from staged to start; the end (exit, stop, kill) is the fixture's. */
export const RUN_START = [
  `${at(0)} staged bundle=/b job=diag-job inputs=0 scripts=1`,
  `${at(0.2)} probe host=gpu-1 os="Linux 6.1" python3=/usr/bin/python3 python_version=3.11.9 disk_free_mb=90000 gpus=1`,
  `${at(0.5)} precheck ok log=artifacts/runtime-precheck.log`,
  `${at(0.6)} audit started pid=12 out=artifacts/nvml-audit.jsonl`,
  `${at(1)} start pid=10 pgid=10 host=gpu-1 bundle=/b`,
  `${at(1)} exec python3 scripts/train.py`,
];

/** One GPU sampled once a second from `from` to `to` seconds: memory climbing towards 80 GiB, utilization near 90%. */
export function auditLines(from: number, to: number): string[] {
  const lines: string[] = [];
  for (let s = from; s <= to; s++) {
    lines.push(JSON.stringify({ time: at(s), gpu: 0, name: 'NVIDIA A100-SXM4-80GB', util_pct: s > 14 ? 0 : 88 + (s % 3), mem_used_mib: s > 14 ? 0 : 20000 + s * 4000, mem_total_mib: 81920 }));
  }
  return lines;
}

export interface ChartBundle {
  /** logging.jsonl records ("inf" / "nan" written as the JSON-lines files of Python's json.dumps do: Infinity, NaN). */
  loss?: { step: number; loss: number | 'inf' | 'nan' }[];
  runtime: string[];
  audit?: string[];
}

/** A frozen bundle declaring loss by step, with the run's files written as a run would have. */
export async function chartBundle(dir: string, parts: ChartBundle): Promise<string> {
  const bundle = await Bundle.create(dir, {
    schemaVersion: 'orbit.job.v1',
    jobId: 'diag-job',
    jobKind: 'script',
    taskType: 'script',
    createdAt: '2026-11-25T10:00:00.000Z',
    resources: { gpus: 1, cpus: 1, memoryGb: 1 },
    env: {},
    entrypoint: { command: ['python3', 'scripts/train.py'], logFile: 'task.log' },
    progress: LOSS_SERIES,
  });
  await bundle.writeScript('train.py', 'print("training")\n', true);
  await bundle.freeze();
  const write = async (rel: string, lines: string[]) => {
    await mkdir(dirname(join(dir, rel)), { recursive: true });
    await writeFile(join(dir, rel), lines.map((l) => `${l}\n`).join(''));
  };
  const py = (v: number | 'inf' | 'nan') => (v === 'inf' ? 'Infinity' : v === 'nan' ? 'NaN' : String(v));
  if (parts.loss) await write('artifacts/checkpoints/step-60/logging.jsonl', parts.loss.map((r) => `{"step": ${r.step}, "loss": ${py(r.loss)}}`));
  await write('runtime/runtime.log', parts.runtime);
  if (parts.audit) await write('artifacts/nvml-audit.jsonl', parts.audit);
  return dir;
}

/** The diverging loss, killed by SIGKILL at 14.5 s (out of memory): `exit code=137 stopping=0`. */
export const KILLED: ChartBundle = {
  loss: DIVERGING_LOSS,
  runtime: [...RUN_START, `${at(14.5)} exit code=137 stopping=0`, `${at(16.2)} audit stopped`, `${at(16.3)} manifest written`, `${at(16.4)} done`],
  audit: auditLines(1, 16),
};

/** Cancelled at 8 s: Orbit's TERM, the wrapper forwarding it, the task ending 143 at 9 s. */
export const CANCELLED: ChartBundle = {
  loss: DIVERGING_LOSS.slice(0, 30),
  runtime: [
    ...RUN_START,
    `${at(8)} cancel requested: TERM to process group 10 why=cancelled`,
    `${at(8.01)} stop requested: forwarding TERM to pid 11`,
    `${at(9)} exit code=143 stopping=1`,
    `${at(10)} audit stopped`,
    `${at(10.1)} done`,
  ],
  audit: auditLines(1, 10),
};
