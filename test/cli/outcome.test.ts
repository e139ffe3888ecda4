import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRun, PATHS_LISTED, type FinishedRun } from '../../src/cli/outcome';
import type { CollectSummary } from '../../src/common/activities';
import type { TaskSummary } from '../../src/plugins/types';
import type { RunResult } from '../../src/workflows';
import { tempDir } from '../helpers/bundles';
import { summary as collectSummary } from '../helpers/scripted-activities';

const summary: TaskSummary = {
  headline: 'failed: training reached step 0 of 300; no complete checkpoint',
  metrics: { steps: 0 },
  highlights: ['artifacts/metrics.json', 'artifacts/training.log', 'artifacts/checkpoints/step-300'],
};

function collect(over: Partial<CollectSummary> = {}): CollectSummary {
  return collectSummary({ filesFetched: 3, bytesFetched: 300, verified: false, verifiedCount: 1, ...over });
}

describe('describeRun', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let bundleDir: string;
  beforeAll(async () => {
    tmp = await tempDir('outcome-');
    bundleDir = join(tmp.dir, 'train-20261125-100000-abcd');
    await mkdir(join(bundleDir, 'artifacts'), { recursive: true });
    await writeFile(join(bundleDir, 'artifacts/training.log'), 'step 0\n');
  });
  afterAll(async () => tmp.cleanup());

  const result = (c: CollectSummary): RunResult => ({
    runId: 'train-20261125-100000-abcd',
    status: 'failed',
    exitCode: 1,
    host: 'gpu-a',
    bundleDir,
    digest: 'sha256:0',
    collect: c,
    phases: [],
    relaunches: [],
    reasons: ['collection refused 12 files'],
  });

  it('of a run refused at staging names only the files that exist', () => {
    const run: FinishedRun = { workflowId: 'train-20261125-100000-abcd', status: 'failed', error: 'stage: the bundle changed since it was frozen', bundleDir };
    const text = describeRun(run, summary);
    expect(text.split('\n').filter((l) => l.includes(' see '))).toEqual([`    see ${bundleDir}/artifacts/training.log`]);
    expect(text).not.toContain('metrics.json');
    expect(text).not.toContain('step-300');
  });

  it('names no files when the bundle folder is unknown', () => {
    expect(describeRun({ workflowId: 'x', status: 'failed', error: 'gone' }, summary)).not.toContain(' see ');
  });

  it('lists the first refused, mismatched, missing paths and missing outputs with reasons, and counts the rest', () => {
    const refused = Array.from({ length: 50 }, (_, i) => `artifacts/../evil-${i}: resolves outside the bundle; not collected`);
    const run: FinishedRun = {
      workflowId: 'train-20261125-100000-abcd',
      status: 'failed',
      error: 'collection refused files',
      bundleDir,
      result: result(
        collect({
          refused,
          mismatched: ['artifacts/a.bin: sha256 differs from the manifest'],
          missing: ['artifacts/b.bin', 'artifacts/c.bin'],
          missingOutputs: ['metrics.json'],
          totals: { refused: 120, mismatched: 1, missing: 7 },
        }),
      ),
    };
    const lines = describeRun(run).split('\n');
    const report = join(bundleDir, 'runtime/collection.json');
    expect(lines.slice(2, 3)).toEqual(['  artifacts: 1 verified, 7 missing, 1 mismatched, 120 refused (3 files / 300 bytes fetched)']);
    expect(lines.filter((l) => l.startsWith('    refused: '))).toEqual(refused.slice(0, PATHS_LISTED).map((r) => `    refused: ${r}`));
    expect(lines).toContain(`    and 115 more refused in ${report}`);
    expect(lines).toContain('    mismatched: artifacts/a.bin: sha256 differs from the manifest');
    expect(lines.some((l) => l.includes('more mismatched'))).toBe(false);
    expect(lines).toContain('    missing: artifacts/b.bin (in the manifest, not collected)');
    expect(lines).toContain(`    and 5 more missing in ${report}`);
    expect(lines).toContain('    missing output: metrics.json (required by the job, not there)');
  });

  it('adds nothing for a verified collection', () => {
    const run: FinishedRun = { workflowId: 'ok', status: 'succeeded', bundleDir, result: { ...result(collect({ verified: true })), status: 'succeeded', reasons: [] } };
    expect(describeRun(run).split('\n')).toEqual([
      'run ok: succeeded',
      '  exit code: 1   host: gpu-a',
      '  artifacts: 1 verified (3 files / 300 bytes fetched)',
      `  bundle: ${bundleDir}`,
    ]);
  });

  it('lists files the manifest does not vouch for, and a job left running', () => {
    const c = collect({ unverified: ['artifacts/late.txt'], totals: { missing: 0, mismatched: 0, refused: 0, unverified: 1 } });
    const run: FinishedRun = {
      workflowId: 'late',
      status: 'failed',
      bundleDir,
      result: { ...result(c), job: { state: 'orphaned', detail: 'the job on gpu-a could not be stopped (host gone); it may still be running there' } },
    };
    const lines = describeRun(run).split('\n');
    expect(lines).toContain('    unverified: artifacts/late.txt (not in the manifest)');
    expect(lines).toContain('  job: orphaned: the job on gpu-a could not be stopped (host gone); it may still be running there');
  });
});
