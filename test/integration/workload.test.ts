/**
 * The user's own code through the training plugin (docs/job-contract.md), on real hosts: a project
 * folder in git with an uncommitted script, a setup step and a dataset runs on the local host and on
 * an SSH host; what .gitignore leaves out is not in the bundle; when its SSH host vanishes mid-run it
 * is relaunched on another one and resumes from its newest synced checkpoint, with no Orbit import
 * beyond the optional orbit_job helper.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Bundle, verifyManifest } from '../../src/bundle';
import type { RunBundleInput } from '../../src/common/run';
import { buildDefaultTaskRegistry } from '../../src/plugins/registry';
import { HostRegistry } from '../../src/hosts/registry';
import { ShellHost } from '../../src/hosts/shell-host';
import { SshTransport } from '../../src/hosts/ssh';
import { runBundle } from '../../src/workflows';
import { createOrbitWorker, localHost, type OrbitWorker } from '../../src/worker/worker';
import { tempDir } from '../helpers/bundles';
import { runOutcome, waitForStatus } from '../helpers/run-outcome';
import { sshOptions, startSshd, type SshdServer } from '../helpers/sshd';
import { ROOMY_LOCAL } from '../helpers/worker';

const ROOT = join(__dirname, '../..');
const FIXTURE = join(ROOT, 'test/fixtures/workload');

/** A user's project in git: committed files, the training script left uncommitted, ignored files beside it. */
async function makeProject(dir: string): Promise<void> {
  await mkdir(join(dir, 'data'), { recursive: true });
  await mkdir(join(dir, 'cache'), { recursive: true });
  const rows = Array.from({ length: 40 }, (_, i) => { const x = (i - 20) / 10; return `${x},${(3 * x + 0.1 * Math.sin(7 * i)).toFixed(6)}`; });
  await writeFile(join(dir, 'data/points.csv'), ['x,y', ...rows].join('\n') + '\n');
  await writeFile(join(dir, '.gitignore'), 'cache/\nsecrets.txt\n*.log\n');
  await writeFile(join(dir, 'README.md'), 'fits y = w x\n');
  const git = (...args: string[]) => execFileSync('git', ['-C', dir, ...args], { stdio: 'pipe' });
  git('init', '-q');
  git('-c', 'user.email=t@example.com', '-c', 'user.name=t', 'add', 'README.md', '.gitignore', 'data/points.csv');
  git('-c', 'user.email=t@example.com', '-c', 'user.name=t', 'commit', '-q', '-m', 'data');
  // Not committed: the script itself, and files .gitignore keeps out.
  await copyFile(join(FIXTURE, 'train.py'), join(dir, 'train.py'));
  // A script that follows the contract by hand (no import of Orbit): its loss turns NaN, then it hangs on.
  await writeFile(
    join(dir, 'diverge.py'),
    [
      'import json, math, os, time',
      'with open(os.environ["ORBIT_METRICS_FILE"], "a") as f:',
      '    for step in range(1, 7):',
      '        f.write(json.dumps({"step": step, "loss": 1.0 / step if step < 4 else math.nan}) + "\\n")',
      '        f.flush()',
      '        time.sleep(0.1)',
      'time.sleep(600)',
      '',
    ].join('\n'),
  );
  await writeFile(join(dir, 'secrets.txt'), 'TOKEN=do-not-ship\n');
  await writeFile(join(dir, 'cache/blob.bin'), 'x'.repeat(1000));
  await writeFile(join(dir, 'debug.log'), 'noise\n');
}

describe('user code: a project folder runs on the local host and on SSH hosts, and resumes after a lost host', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let hostA: SshdServer;
  let hostB: SshdServer;
  let nativeConnection: NativeConnection;
  let connection: Connection;
  let worker: OrbitWorker;
  let running: Promise<void>;
  let client: Client;
  let project: string;
  const taskQueue = `workload-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    tmp = await tempDir('orbit-workload-');
    project = join(tmp.dir, 'project');
    await makeProject(project);
    const sessionEnv = { PATH: `${join(ROOT, '.venv/bin')}:/usr/local/bin:/usr/bin:/bin` };
    [hostA, hostB] = await Promise.all([startSshd({ name: 'box-a', sessionEnv }), startSshd({ name: 'box-b', sessionEnv })]);
    const home = join(tmp.dir, 'home');
    const registry = new HostRegistry([localHost(home)]);
    for (const h of [hostA, hostB]) registry.add(new ShellHost({ name: h.name, transport: new SshTransport(sshOptions(h, { readyTimeoutMs: 2_000 })), workRoot: h.workRoot }));
    nativeConnection = await NativeConnection.connect({ address: inject('temporalAddress') });
    worker = await createOrbitWorker({
      connection: nativeConnection,
      namespace: 'default',
      taskQueue,
      hosts: registry,
      home,
      fleetHosts: async () => [ROOMY_LOCAL, { ...ROOMY_LOCAL, name: hostA.name }, { ...ROOMY_LOCAL, name: hostB.name }],
      fleetSettings: { reconcileEveryMs: 1_000 },
    });
    running = worker.run();
    connection = await Connection.connect({ address: inject('temporalAddress') });
    client = new Client({ connection });
  }, 60_000);

  afterAll(async () => {
    worker?.shutdown();
    await running;
    await connection?.close();
    await nativeConnection?.close();
    await Promise.all([hostA?.stop(), hostB?.stop()]);
    await tmp?.cleanup();
  });

  /** The request as `orbit submit` parses and validates it, built into a frozen bundle. */
  async function build(name: string, extra: Record<string, unknown> = {}) {
    const plugin = (await buildDefaultTaskRegistry()).get('training');
    const parsed = plugin.parse({
      workdir: '.',
      setup: 'echo "setup on $(hostname)" > setup-done.txt',
      run: 'python3 train.py --steps 20 --sleep 0.05',
      datasets: { points: 'data/points.csv' },
      outputDir: 'out',
      syncIntervalSeconds: 1,
      ...extra,
    });
    if (!parsed.ok) throw new Error(parsed.problems.map((p) => `${p.path}: ${p.message}`).join('; '));
    expect(await plugin.validate(parsed.value, project)).toEqual([]);
    const bundle = await plugin.buildBundle(join(tmp.dir, 'bundles', name), { request: parsed.value, baseDir: project, jobId: name });
    return { plugin, bundle, digest: await bundle.freeze() };
  }

  async function start(bundle: Bundle, digest: string, host: string, extra: Partial<RunBundleInput> = {}) {
    const input: RunBundleInput = {
      runId: `${bundle.spec.jobId}-${randomUUID().slice(0, 6)}`,
      bundleDir: bundle.dir,
      digest,
      host,
      logFile: bundle.spec.entrypoint.logFile,
      timeouts: { ...bundle.spec.timeouts, killGraceSeconds: 2 },
      syncIntervalMs: 1_000,
      tuning: { pollIntervalMs: 300, progressEveryMs: 2_000, heartbeatTimeoutMs: 3_000, probeTimeoutMs: 4_000, hostLostAfterMs: 10_000, collectRetryMs: { initial: 500, max: 2_000 } },
      ...extra,
    };
    return { input, handle: await client.workflow.start(runBundle, { taskQueue, workflowId: input.runId, args: [input] }) };
  }


  const metricSteps = async (bundleDir: string) =>
    (await readFile(join(bundleDir, 'artifacts/out/metrics.jsonl'), 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { step: number }).step);

  it('the bundle holds the working tree as it is (the uncommitted script too), without what .gitignore leaves out', async () => {
    const { bundle } = await build('staged');
    const staged = JSON.parse(await readFile(bundle.path('inputs/workdir.json'), 'utf8')) as { files: { path: string }[] };
    const paths = staged.files.map((f) => f.path).sort();
    expect(paths).toEqual(['.gitignore', 'README.md', 'data/points.csv', 'diverge.py', 'train.py']);
    expect(existsSync(bundle.path('inputs/workdir/train.py'))).toBe(true);
    for (const gone of ['secrets.txt', 'cache/blob.bin', 'debug.log']) expect(existsSync(bundle.path(`inputs/workdir/${gone}`))).toBe(false);
    expect(existsSync(bundle.path('inputs/datasets/points/points.csv'))).toBe(true);
    expect(bundle.spec.outputDir).toBe('out');
    expect(bundle.spec.sync.atomicDirs).toEqual([{ parent: 'out/checkpoints', marker: 'COMPLETE' }]);
    expect(bundle.spec.progress?.file).toBe('out/metrics.jsonl');
  });

  it.each([['local'], ['ssh']])('runs setup then run on the %s host; metrics, checkpoints and the summary come back', async (kind) => {
    const { plugin, bundle, digest } = await build(`fit-${kind}`);
    const host = kind === 'local' ? 'local' : hostA.name;
    const { handle } = await start(bundle, digest, host);
    const result = await runOutcome(handle);
    expect(result.status, result.reasons.join('; ')).toBe('succeeded');
    expect(await metricSteps(bundle.dir)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(existsSync(bundle.path('artifacts/out/checkpoints/step-20/COMPLETE'))).toBe(true);
    const record = JSON.parse(await readFile(bundle.path('artifacts/workload.json'), 'utf8'));
    expect(record.setup.exitCode).toBe(0);
    expect(record.run.exitCode).toBe(0);
    expect(await readFile(bundle.path('artifacts/job.log'), 'utf8')).toMatch(/\[orbit\] setup: echo .*\n[\s\S]*step 20 loss/);
    const reopened = await Bundle.open(bundle.dir);
    const summary = await plugin.summarizeResult(reopened, { status: 'succeeded', exitCode: 0, manifest: await verifyManifest(bundle.dir) });
    expect(summary.headline).toMatch(/^trained 20 steps: loss [\d.]+ -> [\d.]+; last complete checkpoint artifacts\/out\/checkpoints\/step-20 \(10 in all\)$/);
    expect(Number(summary.metrics['final.loss'])).toBeLessThan(Number(summary.metrics['first.loss']));
  }, 120_000);

  it('live health on the user\'s own metrics: a NaN loss in ORBIT_METRICS_FILE stops the run, naming the rule', async () => {
    const { bundle, digest } = await build('diverge', { run: 'python3 diverge.py' });
    const { handle } = await start(bundle, digest, 'local');
    const result = await runOutcome(handle);
    expect(result.status).toBe('failed');
    expect(result.reasons[0]).toMatch(/^unhealthy: not-finite:loss: loss became NaN at step 4 \(it was 0\.333 at step 3\); stopped \(onUnhealthy stop\)$/);
    expect(result.health?.state).toBe('unhealthy');
  }, 120_000);

  it('a lost SSH host: relaunched on the other one, it resumes from the newest synced checkpoint, the metrics without gap or repeat', async () => {
    const { bundle, digest } = await build('resume', { run: 'python3 train.py --steps 40 --sleep 0.25' });
    const { handle, input } = await start(bundle, digest, hostA.name, { onHostLost: 'relaunch', relaunchHosts: [hostB.name], maxRelaunches: 1 });
    await waitForStatus(handle, (s) => s.synced.files > 0 && existsSync(bundle.path('artifacts/out/checkpoints/step-6/COMPLETE')));
    await hostA.kill();
    const pid = Number((await readFile(join(hostA.workRoot, input.runId, 'runtime/pid'), 'utf8')).trim());
    process.kill(-pid, 'SIGKILL');
    const result = await runOutcome(handle);
    await hostA.start();
    expect(result.status, result.reasons.join('; ')).toBe('succeeded');
    expect(result.host).toBe(hostB.name);
    const resumedFrom = result.relaunches[0]!.resumeFrom!;
    expect(resumedFrom).toMatch(/^artifacts\/out\/checkpoints\/step-\d+$/);
    const step = Number(resumedFrom.split('-').at(-1));
    expect(step).toBeGreaterThanOrEqual(6);
    expect(await readFile(bundle.path('artifacts/job.log'), 'utf8')).toContain(`resumed at step ${step + 1} from `);
    expect(await metricSteps(bundle.dir)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    const final = JSON.parse(await readFile(bundle.path('artifacts/out/final.json'), 'utf8'));
    expect(final.resumed).toBe(true);
  }, 180_000);
});
