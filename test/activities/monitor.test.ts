import { MockActivityEnvironment } from '@temporalio/testing';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createActivities } from '../../src/activities';
import { ActivityKit } from '../../src/activities/support';
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

/** A monitor of run `runId` on the slow host: polled every 50 ms, nothing synced, a minute before any deadline. */
const watchSlowHost = (runId: string, bundleDir: string): MonitorInput => ({
  runId,
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
});

describe('the monitor activity', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let bundleDir: string;

  beforeAll(async () => {
    tmp = await tempDir();
    bundleDir = join(tmp.dir, 'b');
    await scriptBundle(bundleDir, 'true');
  });
  afterAll(() => tmp.cleanup());
  afterEach(() => vi.restoreAllMocks());

  it('heartbeats while a probe is in flight, so a probe slower than the heartbeat timeout does not time the attempt out', async () => {
    const host = new SlowHost(3_000);
    const acts = createActivities({ hosts: new HostRegistry([host]) });
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 1_500 });
    const beats: number[] = [];
    env.on('heartbeat', () => beats.push(Date.now()));
    const result: MonitorResult = await env.run(acts.monitor, watchSlowHost('r1', bundleDir));
    expect(result.finished).toBe(true);
    expect(host.probes).toBe(1);
    // Every third of the heartbeat timeout: about 6 beats during the 3 s probe; a monitor that beats only between probes sends none.
    const during = beats.filter((t) => t > host.window.from && t < host.window.to);
    expect(during.length).toBeGreaterThanOrEqual(2);
  });

  it('heartbeats while it opens the bundle (a moved monitor may fetch it from the store first)', async () => {
    const host = new SlowHost(10);
    const acts = createActivities({ hosts: new HostRegistry([host]) });
    const open = ActivityKit.prototype.bundle;
    const window = { from: 0, to: 0 };
    vi.spyOn(ActivityKit.prototype, 'bundle').mockImplementation(async function (this: ActivityKit, input) {
      window.from = Date.now();
      await new Promise((r) => setTimeout(r, 2_000));
      window.to = Date.now();
      return open.call(this, input);
    });
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 1_500 });
    const beats: number[] = [];
    env.on('heartbeat', () => beats.push(Date.now()));
    const result: MonitorResult = await env.run(acts.monitor, watchSlowHost('r2', bundleDir));
    expect(result.finished).toBe(true);
    // The first beat at once, then every 500 ms: 1_500 ms of the heartbeat timeout never passes in silence while the bundle opens.
    const during = beats.filter((t) => t >= window.from - 50 && t <= window.to);
    expect(during.length).toBeGreaterThanOrEqual(4);
    expect(Math.max(...[window.from, ...during, window.to].map((t, i, a) => (i ? t - a[i - 1]! : 0)))).toBeLessThan(1_000);
  });
});
