/**
 * A tiny task plugin for sweep tests: its job sleeps `seconds`, then writes artifacts/score.json with
 * `score` (or exits 3 when `fail`). Bash only, so a cell runs in well under a second.
 */
import { z } from 'zod';
import { Bundle, type Problem } from '../../src/bundle';
import { SchemaPlugin } from '../../src/plugins/common';
import { buildDefaultTaskRegistry, type TaskRegistry } from '../../src/plugins/registry';
import type { RunOutcome, TaskPlugin, TaskSubmission, TaskSummary } from '../../src/plugins/types';

export const sleeperSchema = z.strictObject({
  seconds: z.number().min(0).max(600).default(0),
  score: z.number(),
  fail: z.boolean().default(false),
});
type SleeperRequest = z.infer<typeof sleeperSchema>;

export class SleeperPlugin extends SchemaPlugin<typeof sleeperSchema> implements TaskPlugin<typeof sleeperSchema> {
  readonly taskType = 'sleeper';
  readonly jobKind = 'sleep';
  readonly description = 'sleeps, then writes a score (tests)';
  override readonly requestSchema = sleeperSchema;

  async validate(request: SleeperRequest): Promise<Problem[]> {
    return request.score < 0 ? [{ path: 'score', message: 'score must be 0 or more' }] : [];
  }

  async buildBundle(bundleDir: string, submission: TaskSubmission<SleeperRequest>): Promise<Bundle> {
    const { request, jobId } = submission;
    const bundle = await Bundle.create(bundleDir, {
      schemaVersion: 'orbit.job.v1',
      jobId,
      jobKind: this.jobKind,
      taskType: this.taskType,
      createdAt: new Date().toISOString(),
      resources: { gpus: 0, cpus: 1, memoryGb: 1 },
      entrypoint: { command: ['bash', 'scripts/job.sh'], logFile: 'job.log' },
      expectedOutputs: [{ path: 'score.json', required: true }],
      metadata: { score: request.score },
    });
    await bundle.writeInput('request.json', JSON.stringify(request) + '\n');
    const body = request.fail
      ? 'echo "failing on purpose"; exit 3'
      : `echo "sleeping ${request.seconds}s"; sleep ${request.seconds}; echo '{"score": ${request.score}}' > artifacts/score.json; echo done`;
    await bundle.writeScript('job.sh', `#!/usr/bin/env bash\nset -eu\n${body}\n`, true);
    return bundle;
  }

  async summarizeResult(bundle: Bundle, outcome: RunOutcome): Promise<TaskSummary> {
    const { readFile } = await import('node:fs/promises');
    const score = await readFile(bundle.path('artifacts/score.json'), 'utf8').then(
      (t) => (JSON.parse(t) as { score: number }).score,
      () => null,
    );
    return { headline: `${outcome.status}: score ${score ?? '?'}`, metrics: { score, exitCode: outcome.exitCode }, highlights: ['artifacts/score.json'] };
  }
}

/** The default registry plus the sleeper. */
export async function testRegistry(): Promise<TaskRegistry> {
  const registry = await buildDefaultTaskRegistry();
  return registry.register(new SleeperPlugin());
}
