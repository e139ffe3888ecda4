/**
 * A deliberately incompatible edit of runBundle (launch is scheduled before stage), used only to
 * prove that the replay test catches a change that would break running workflows.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { OrbitActivities } from '../../src/activities';
import type { RunBundleInput } from '../../src/workflows';

const acts = proxyActivities<OrbitActivities>({ startToCloseTimeout: '1m' });

export async function runBundle(input: RunBundleInput): Promise<void> {
  await acts.launch({ runId: input.runId, host: input.host, bundleDir: input.bundleDir });
  await acts.stage({ runId: input.runId, host: input.host, bundleDir: input.bundleDir, digest: input.digest });
}
