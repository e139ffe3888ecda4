import { Bundle, type JobSpecInput } from '../../src/bundle';

export { tempDir } from './temp-dirs';

export function jobSpec(overrides: Partial<JobSpecInput> = {}): JobSpecInput {
  return {
    schemaVersion: 'orbit.job.v1',
    jobId: 'unit-job',
    jobKind: 'script',
    taskType: 'script',
    createdAt: '2026-11-25T10:00:00.000Z',
    resources: { gpus: 0, cpus: 1, memoryGb: 1 },
    entrypoint: { command: ['bash', 'scripts/job.sh'], logFile: 'job.log' },
    ...overrides,
  };
}

/** Builds and freezes a bundle whose entrypoint is `scripts/job.sh` with the given bash body. */
export async function scriptBundle(dir: string, body: string, overrides: Partial<JobSpecInput> = {}): Promise<{ bundle: Bundle; digest: string }> {
  const bundle = await Bundle.create(dir, jobSpec(overrides));
  await bundle.writeInput('data.txt', 'hello\n');
  await bundle.writeScript('job.sh', `#!/usr/bin/env bash\nset -eu\n${body}\n`, true);
  const digest = await bundle.freeze();
  return { bundle, digest };
}
