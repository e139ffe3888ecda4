import { DeterminismViolationError } from '@temporalio/workflow';
import { Worker } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const HISTORIES = join(__dirname, '..', 'histories');
const files = readdirSync(HISTORIES).filter((f) => f.endsWith('.json'));

function history(file: string) {
  return JSON.parse(readFileSync(join(HISTORIES, file), 'utf8'));
}

// Recorded from real runs on the dev server (ORBIT_RECORD_HISTORIES=1 npx vitest run --project integration
// test/integration/run-bundle.test.ts test/integration/faults.test.ts test/integration/fleet.test.ts
// test/integration/store-split.test.ts). run-bundle-stored-handover is a store-held run (input `store`, no
// `bundleDir`) whose worker was SIGKILLed mid-run and another took it over. The run-bundle-*
// histories without "leased" are runs from before the fleet (they replay through patched('fleet-lease') = false);
// run-bundle-health-stopped (test/integration/health.test.ts) is a run its not-finite rule stopped, through
// patched('health-verdicts'). run-bundle-monitor-handover (test/integration/scale-out.test.ts) schedules its monitors on the
// monitors' own task queue through patched('monitor-queue'); its worker was SIGKILLed and the monitor moved to the other.
// The histories before it replay with that patch not taken (monitors on the run's queue). fleet-continued is one fleet execution up to its continue-as-new. A workflow change that breaks any of them must use patched().
describe('recorded runBundle and fleet histories replay against the current workflow code', () => {
  it('has recorded histories to replay', () => {
    expect(files.sort()).toEqual([
      'fleet-continued.json',
      'run-bundle-cancelled.json',
      'run-bundle-failed.json',
      'run-bundle-health-stopped.json',
      'run-bundle-leased-relaunched.json',
      'run-bundle-leased.json',
      'run-bundle-lost.json',
      'run-bundle-monitor-handover.json',
      'run-bundle-relaunched.json',
      'run-bundle-stored-handover.json',
      'run-bundle-succeeded.json',
    ]);
  });

  for (const file of files) {
    it(`replays ${file}`, async () => {
      await Worker.runReplayHistory({ workflowsPath: require.resolve('../../src/workflows/index.ts') }, history(file), file);
    });
  }

  it('fails when the workflow changes incompatibly', async () => {
    const err = await Worker.runReplayHistory(
      { workflowsPath: require.resolve('./changed-workflow.ts') },
      history('run-bundle-succeeded.json'),
      'changed',
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeterminismViolationError);
  });
});
