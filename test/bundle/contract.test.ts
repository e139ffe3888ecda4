/**
 * The job contract (docs/job-contract.md) as run.sh sets it: the variables every job gets, from
 * job.json alone, and the optional orbit_job helper on PYTHONPATH (checkpoint marker last, metrics
 * restored on resume). Runs the generated run.sh by hand, as a host would.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JobSpecInput } from '../../src/bundle';
import { scriptBundle, tempDir } from '../helpers/bundles';

const run = promisify(execFile);

async function runByHand(dir: string, env: Record<string, string> = {}): Promise<void> {
  await run('bash', [join(dir, 'scripts/orbit/run.sh')], { env: { ...process.env, ORBIT_RUN_ID: 'by-hand', ...env } });
}

async function contractEnv(dir: string): Promise<Record<string, string>> {
  const text = await readFile(join(dir, 'artifacts/env.txt'), 'utf8');
  return Object.fromEntries(text.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

describe('the job contract', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeEach(async () => {
    tmp = await tempDir('orbit-contract-');
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  const declared: Partial<JobSpecInput> = {
    outputDir: 'out',
    sync: { intervalSeconds: 30, atomicDirs: [{ parent: 'out/ckpt', marker: 'DONE' }] },
    progress: { file: 'out/series.jsonl', metrics: [{ key: 'loss', goal: 'min' }] },
  };

  it('exports the output, checkpoint and metrics paths job.json declares, absolute, and creates the output folder', async () => {
    const { bundle } = await scriptBundle(join(tmp.dir, 'b'), 'env | grep -E "^(ORBIT_|CUDA_VISIBLE)" | sort > artifacts/env.txt; test -d "$ORBIT_OUTPUT_DIR"', declared);
    await runByHand(bundle.dir);
    const env = await contractEnv(bundle.dir);
    expect(env['ORBIT_OUTPUT_DIR']).toBe(join(bundle.dir, 'artifacts/out'));
    expect(env['ORBIT_CHECKPOINT_DIR']).toBe(join(bundle.dir, 'artifacts/out/ckpt'));
    expect(env['ORBIT_CHECKPOINT_MARKER']).toBe('DONE');
    expect(env['ORBIT_METRICS_FILE']).toBe(join(bundle.dir, 'artifacts/out/series.jsonl'));
    expect(env['ORBIT_GPUS']).toBe('');
    expect(env['ORBIT_RESUME_FROM']).toBeUndefined();
    expect(env['ORBIT_TASK_CONFIG']).toBeUndefined();
  });

  it('a job that declares none of them gets the defaults under artifacts/', async () => {
    const { bundle } = await scriptBundle(join(tmp.dir, 'b'), 'env | grep ^ORBIT_ | sort > artifacts/env.txt');
    await runByHand(bundle.dir);
    const env = await contractEnv(bundle.dir);
    expect(env['ORBIT_OUTPUT_DIR']).toBe(join(bundle.dir, 'artifacts'));
    expect(env['ORBIT_CHECKPOINT_DIR']).toBe(join(bundle.dir, 'artifacts/checkpoints'));
    expect(env['ORBIT_CHECKPOINT_MARKER']).toBe('COMPLETE');
    expect(env['ORBIT_METRICS_FILE']).toBe(join(bundle.dir, 'artifacts/metrics.jsonl'));
  });

  it('a path with spaces and quotes stays one value', async () => {
    const { bundle } = await scriptBundle(join(tmp.dir, 'b'), 'printf "%s" "$ORBIT_OUTPUT_DIR" > artifacts/out.txt', { outputDir: "my out/it's" });
    await runByHand(bundle.dir);
    expect(await readFile(join(bundle.dir, 'artifacts/out.txt'), 'utf8')).toBe(join(bundle.dir, "artifacts/my out/it's"));
  });

  const helperJob = `python3 - "$@" <<'EOF'
import json, os, sys
import orbit_job
steps = int(os.environ.get("STEPS", "6"))
start = 0
ckpt = orbit_job.resume_from()
if ckpt is not None:
    start = orbit_job.checkpoint_step(ckpt)
for step in range(start + 1, steps + 1):
    orbit_job.log_metrics(step, loss=1.0 / step)
    if step % 2 == 0:
        with orbit_job.checkpoint(step) as folder:
            (folder / "w.json").write_text(json.dumps({"step": step}))
            if os.environ.get("FAIL_AT") == str(step):
                raise SystemExit(3)
EOF`;

  it('orbit_job: checkpoints get the marker last and a copy of the metrics; a failed one leaves nothing under its name', async () => {
    const { bundle } = await scriptBundle(join(tmp.dir, 'b'), helperJob, declared);
    await runByHand(bundle.dir, { FAIL_AT: '4' }).catch(() => undefined);
    const ckpt = join(bundle.dir, 'artifacts/out/ckpt');
    expect((await readdir(ckpt)).sort()).toEqual(['step-2']);
    expect((await readdir(join(ckpt, 'step-2'))).sort()).toEqual(['DONE', 'metrics.jsonl', 'orbit_checkpoint.json', 'w.json']);
    const kept = (await readFile(join(ckpt, 'step-2/metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l).step);
    expect(kept).toEqual([1, 2]);
  });

  it('orbit_job: resuming from ORBIT_RESUME_FROM restores the metrics up to its step, then appends: no gap, no repeat', async () => {
    const first = await scriptBundle(join(tmp.dir, 'first'), helperJob, declared);
    await runByHand(first.bundle.dir, { STEPS: '5' });
    const second = await scriptBundle(join(tmp.dir, 'second'), helperJob, declared);
    await runByHand(second.bundle.dir, { STEPS: '8', ORBIT_RESUME_FROM: join(first.bundle.dir, 'artifacts/out/ckpt/step-4') });
    const steps = (await readFile(join(second.bundle.dir, 'artifacts/out/series.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l).step);
    expect(steps).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(existsSync(join(second.bundle.dir, 'artifacts/out/ckpt/step-8/DONE'))).toBe(true);
  });

  it('orbit_job: ORBIT_RESUME_FROM naming a folder without the marker is refused', async () => {
    const first = await scriptBundle(join(tmp.dir, 'first'), helperJob, declared);
    await runByHand(first.bundle.dir, { STEPS: '2' });
    const second = await scriptBundle(join(tmp.dir, 'second'), `${helperJob}\n`, declared);
    const err = await runByHand(second.bundle.dir, { ORBIT_RESUME_FROM: join(first.bundle.dir, 'artifacts/out') }).then(() => undefined, (e: Error) => e);
    expect(err).toBeDefined();
    expect(await readFile(join(second.bundle.dir, 'artifacts/job.log'), 'utf8')).toMatch(/ORBIT_RESUME_FROM=.* is not a complete checkpoint \(no DONE in it\)/);
  });
});
