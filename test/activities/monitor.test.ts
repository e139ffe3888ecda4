import { MockActivityEnvironment } from '@temporalio/testing';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../src/activities';
import type { MonitorInput, MonitorResult, Probe } from '../../src/common/activities';
import { HostRegistry } from '../../src/hosts/registry';
import { ShellHost } from '../../src/hosts/shell-host';
import type { Transport } from '../../src/hosts/transport';
import { scriptBundle, tempDir } from '../helpers/bundles';

/** A host whose every (batched) probe takes `probeMs` to answer (a slow or half-frozen machine). */
class SlowHost extends ShellHost {
  probes = 0;
  window = { from: 0, to: 0 };
  constructor(private readonly probeMs: number) {
    super({ name: 'slow', transport: {} as Transport, workRoot: '/nowhere' });
  }
  override async probeMany(targets: { runId: string }[]): Promise<Map<string, Probe>> {
    this.probes++;
    this.window.from = Date.now();
    await new Promise((r) => setTimeout(r, this.probeMs));
    this.window.to = Date.now();
    return new Map(targets.map((t) => [t.runId, { state: 'exited', pid: 1, exitCode: 0, artifactBytes: 0, runtimeLogTail: [], taskLogTail: [] }]));
  }
}

describe('the monitor activity', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let bundleDir: string;

  beforeAll(async () => {
    tmp = await tempDir();
    bundleDir = join(tmp.dir, 'b');
    await scriptBundle(bundleDir, 'true');
  });
  afterAll(() => tmp.cleanup());

  it('heartbeats while a probe is in flight, so a probe slower than the heartbeat timeout does not time the attempt out', async () => {
    const host = new SlowHost(3_000);
    const acts = createActivities({ hosts: new HostRegistry([host]) });
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 1_500 });
    const beats: number[] = [];
    env.on('heartbeat', () => beats.push(Date.now()));
    const input: MonitorInput = {
      runId: 'r1',
      host: 'slow',
      bundleDir,
      logFile: 'task.log',
      pollIntervalMs: 50,
      deadlineMs: Date.now() + 60_000,
      killGraceSeconds: 1,
      chunkMs: 60_000,
      syncIntervalMs: 0,
      hostLostAfterMs: 60_000,
      probeTimeoutMs: 5_000,
    };
    const result: MonitorResult = await env.run(acts.monitor, input);
    expect(result.finished).toBe(true);
    expect(host.probes).toBe(1);
    // Every third of the heartbeat timeout: about 6 beats during the 3 s probe; a monitor that beats only between probes sends none.
    const during = beats.filter((t) => t > host.window.from && t < host.window.to);
    expect(during.length).toBeGreaterThanOrEqual(2);
  });
});
