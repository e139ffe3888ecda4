/**
 * Out of GPU memory, or not: the pure judgement of src/health/gpu-memory.ts (shared with the live
 * health check), and the diagnosis's GPU layer that uses it. Memory held flat near the limit, or a
 * kill long after the last sample at the limit, is not an out-of-memory: only a climb to the limit
 * right before the exit is.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diagnoseBundle, formatDiagnosis, parseRuntimeLog, type Diagnosis } from '../../src/diagnose';
import { GPU_MEMORY_DEFAULTS, judgeGpuMemory, type GpuMemorySample } from '../../src/health/gpu-memory';
import { FAKE_GPU_BIN, FIXTURES, makeBundle, runWrapper, useTempDirs } from './helpers';

const tempDir = useTempDirs();
const layer = (d: Diagnosis, id: string) => d.layers.find((l) => l.layer === id)!;
const T0 = Date.parse('2026-11-25T10:00:00.000Z');
const TOTAL = 81920;
/** One sample a second of GPU `gpu` from second `from`, at the given shares of the total. */
const series = (shares: number[], from = 0, gpu = 0): GpuMemorySample[] => shares.map((sh, i) => ({ ms: T0 + (from + i) * 1000, gpu, memUsedMib: Math.round(sh * TOTAL), memTotalMib: TOTAL }));
const climb = (from: number, to: number, n: number) => Array.from({ length: n }, (_, i) => from + ((to - from) * i) / (n - 1));
const flat = (share: number, n: number) => Array.from({ length: n }, () => share);

describe('judgeGpuMemory (src/health/gpu-memory.ts)', () => {
  it('calls a climb to the limit right before the exit out of GPU memory', () => {
    const samples = series(climb(0.125, 0.997, 11));
    const [v] = judgeGpuMemory(samples, T0 + 12_000);
    expect(v).toMatchObject({ gpu: 0, samples: 11, atLimit: true, climbing: true, nearEnd: true, outOfMemory: true, lastSampleMs: T0 + 10_000, gapMs: 2000 });
    expect(v!.low).toBe(samples[0]);
    expect(v!.peak).toBe(samples[10]);
    expect(v!.reason).toBe('GPU 0 climbed from 12.5% to 99.7%, 2.0s before the exit: out of GPU memory');
  });

  it('does not when memory was held flat at 97% for a minute and the kill came 20 s after the last sample', () => {
    // Up to 97% in the first 5 s, then flat for 70 s; the exit 20 s after the last sample.
    const samples = series([...climb(0.1, 0.97, 5), ...flat(0.97, 71)]);
    const [v] = judgeGpuMemory(samples, T0 + 75_000 + 20_000);
    expect(v).toMatchObject({ atLimit: true, climbing: false, nearEnd: false, outOfMemory: false, lastSampleMs: T0 + 75_000, gapMs: 20_000 });
    expect(v!.reason).toBe('GPU 0 held 97.0% flat (it rose less than 10.0% in its last 60s): a full cache, not a climb to the limit');
  });

  it('does not for a plateau at the limit, however close the exit', () => {
    const [v] = judgeGpuMemory(series([...climb(0.2, 0.97, 5), ...flat(0.97, 80)]), T0 + 85_000);
    expect(v).toMatchObject({ atLimit: true, climbing: false, nearEnd: true, outOfMemory: false });
  });

  it('does not for a climb to the limit that ended long before the exit', () => {
    const [v] = judgeGpuMemory(series(climb(0.1, 0.99, 11)), T0 + 10_000 + 20_000);
    expect(v).toMatchObject({ atLimit: true, climbing: true, nearEnd: false, outOfMemory: false, gapMs: 20_000 });
    expect(v!.reason).toBe('GPU 0 climbed to 99.0%, but its last sample at the limit was 20s before the exit (more than 10s)');
  });

  it('does not below the limit; says the peak', () => {
    const [v] = judgeGpuMemory(series(climb(0.1, 0.9, 11)), T0 + 10_500);
    expect(v).toMatchObject({ atLimit: false, climbing: true, outOfMemory: false });
    expect(v!.reason).toBe('GPU 0 stayed below the limit: peak 90.0% (limit 95.0%)');
  });

  it('judges each GPU on its own, sorted; samples in any order', () => {
    const samples = [...series(flat(0.3, 11), 0, 1), ...series(climb(0.1, 0.99, 11), 0, 0)].reverse();
    const verdicts = judgeGpuMemory(samples, T0 + 11_000);
    expect(verdicts.map((v) => [v.gpu, v.outOfMemory])).toEqual([
      [0, true],
      [1, false],
    ]);
  });

  it('without an exit time, measures to the last sample of all GPUs', () => {
    const [v] = judgeGpuMemory(series(climb(0.1, 0.99, 11)), undefined);
    expect(v).toMatchObject({ outOfMemory: true, gapMs: 0 });
    expect(v!.reason).toMatch(/0\.0s before the last sample: out of GPU memory$/);
  });

  it('takes options, and ignores undefined ones', () => {
    const samples = series(climb(0.1, 0.99, 11));
    expect(judgeGpuMemory(samples, T0 + 30_000, { nearEndMs: 30_000 })[0]!.outOfMemory).toBe(true);
    expect(judgeGpuMemory(samples, T0 + 12_000, { limitFraction: 0.999, climbFraction: undefined })[0]!.outOfMemory).toBe(false);
    expect(GPU_MEMORY_DEFAULTS).toEqual({ limitFraction: 0.95, climbFraction: 0.1, nearEndMs: 10_000, windowMs: 60_000 });
  });

  it('reads untrusted samples without throwing: no reading, a zero total and bad times are left out or judged by order', () => {
    const bad: GpuMemorySample[] = [
      { ms: NaN, gpu: 0, memUsedMib: null, memTotalMib: TOTAL },
      { ms: NaN, gpu: 0, memUsedMib: 100, memTotalMib: 0 },
      { ms: NaN, gpu: Number.NaN, memUsedMib: 100, memTotalMib: TOTAL },
    ];
    expect(judgeGpuMemory(bad, undefined)).toEqual([]);
    // Without times: the last tenth (at least 5) is the window, and the at-limit sample must be the last.
    const untimed = series(climb(0.1, 0.99, 11)).map((s) => ({ ...s, ms: NaN }));
    expect(judgeGpuMemory(untimed, T0)[0]).toMatchObject({ atLimit: true, climbing: true, nearEnd: true, outOfMemory: true });
    const fellBack = series([...climb(0.1, 0.99, 10), 0.5]).map((s) => ({ ...s, ms: NaN }));
    expect(judgeGpuMemory(fellBack, T0)[0]).toMatchObject({ atLimit: true, climbing: true, nearEnd: false, outOfMemory: false });
  });
});

describe('the GPU layer of the diagnosis', () => {
  /** A job killed by SIGKILL after `sleep` seconds (exit 137), its GPU audit recorded by the fake nvidia-smi. */
  async function killedRun(sleep: number, csv = 'oom-climb.csv') {
    const dir = join(await tempDir(), 'bundle');
    await makeBundle(dir, { command: ['python3', 'scripts/job.py'], scripts: { 'job.py': `import os, signal, time\nprint("allocating", flush=True)\ntime.sleep(${sleep})\nos.kill(os.getpid(), signal.SIGKILL)\n` } });
    const { exitCode } = await runWrapper(dir, { extraPath: [FAKE_GPU_BIN], env: { FAKE_NVIDIA_SMI_CSV: join(FIXTURES, csv), FAKE_NVIDIA_SMI_TICK: '0.1' } });
    expect(exitCode).toBe(137);
    return dir;
  }

  it('does not call a kill 14 s after memory climbed out of GPU memory (recorded nvidia-smi output): the kill is the verdict', async () => {
    const dir = await killedRun(14);
    const d = await diagnoseBundle(dir);
    expect(layer(d, 'gpu').status).toBe('ok');
    expect(layer(d, 'gpu').summary).toMatch(/^GPU 0 peak 81664\/81920 MiB \(99\.7%\), mean utilization \d+% \(GPU 0 climbed to 99\.7%, but its last sample at the limit was \d+s before the exit \(more than 10s\)\) over 11 samples$/);
    expect(d.verdict).toMatchObject({ layer: 'task', kind: 'signal' });
    expect(d.verdict?.summary).toMatch(/^the process was killed by SIGKILL \(exit 137 after [\d.]+s\) with no traceback: killed from outside/);
    expect(formatDiagnosis(d)).not.toContain('out of GPU memory');
  });

  it('does not call memory held flat at 97% for a minute, then a kill 20 s after the last sample, out of GPU memory', async () => {
    const dir = await killedRun(0.2);
    // The audit of a long run: up to 97% in 5 s, flat for 70 s, and nothing in the 20 s before the exit.
    const exitMs = parseRuntimeLog(await readFile(join(dir, 'runtime/runtime.log'), 'utf8')).find((e) => e.phase === 'exit')!.ms;
    const start = exitMs - 95_000;
    const lines = [...climb(0.1, 0.97, 5), ...flat(0.97, 71)].map((sh, i) =>
      JSON.stringify({ time: new Date(start + i * 1000).toISOString(), gpu: 0, name: 'NVIDIA A100-SXM4-80GB', util_pct: 97, mem_used_mib: Math.round(sh * TOTAL), mem_total_mib: TOTAL, source: 'nvidia-smi' }),
    );
    await writeFile(join(dir, 'artifacts/nvml-audit.jsonl'), lines.join('\n') + '\n');
    const d = await diagnoseBundle(dir);
    expect(layer(d, 'gpu')).toMatchObject({ status: 'ok', summary: expect.stringContaining('(GPU 0 held 97.0% flat (it rose less than 10.0% in its last 60s): a full cache, not a climb to the limit)') });
    expect(d.verdict).toMatchObject({ layer: 'task', kind: 'signal' });
  });
});
