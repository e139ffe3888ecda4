import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { createActivities } from '../../src/activities';
import { HostRegistry } from '../../src/hosts/registry';

describe('a worker that cannot see the run bundle', () => {
  it('says exactly that, and leaves the retry to a worker that can', async () => {
    const acts = createActivities({ hosts: new HostRegistry([]) });
    const err = await new MockActivityEnvironment()
      .run(acts.stage, { runId: 'r', host: 'h', bundleDir: '/elsewhere/runs/r', digest: 'd' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    const f = err as ApplicationFailure;
    expect(f.message).toMatch(/^bundle \/elsewhere\/runs\/r is not on this worker's machine \(.+\): the client and every worker of the task queue must share ORBIT_HOME/);
    expect(f.type).toBe('BundleNotOnWorkerError');
    expect(f.nonRetryable).toBe(false);
  });
});
