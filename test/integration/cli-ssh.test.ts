import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { verifyManifest } from '../../src/bundle';
import { tempDir } from '../helpers/bundles';
import { orbit, ROOT } from '../helpers/orbit-cli';
import { startSshd, writeHostsFile, type SshdServer } from '../helpers/sshd';



describe('orbit on a rented host reached by SSH (a real sshd on loopback)', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let gpuBox: SshdServer;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    tmp = await tempDir('orbit-cli-ssh-');
    // The "rented" host's own Python has torch: sessions get the project venv first on PATH.
    gpuBox = await startSshd({ name: 'box-1', sessionEnv: { PATH: `${join(ROOT, '.venv/bin')}:/usr/local/bin:/usr/bin:/bin` } });
    const hostsFile = join(tmp.dir, 'hosts.yaml');
    await writeHostsFile(hostsFile, [gpuBox], []);
    const port = inject('temporalAddress').split(':')[1];
    env = { ...process.env, ORBIT_HOME: join(tmp.dir, 'home'), ORBIT_TEMPORAL_PORT: port, ORBIT_TASK_QUEUE: `cli-ssh-${port}`, ORBIT_HOSTS: hostsFile };
    delete env.TEMPORAL_ADDRESS;
  });
  afterAll(async () => {
    await gpuBox?.stop();
    await tmp?.cleanup();
  });

  it('hosts list and hosts check show the inventory and the live host', async () => {
    const list = await orbit(['hosts', 'list'], env);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/box-1 +root@127\.0\.0\.1:\d+ +0 gpus/);
    const check = await orbit(['hosts', 'check', 'box-1'], env);
    expect(check.stdout).toMatch(/gpus: +no GPU/);
    expect(check.stdout).toMatch(/python3: +3\.\d+/);
    expect(check.code).toBe(0);
  });

  it('trains the example on the SSH host and collects verified artifacts', async () => {
    const r = await orbit(['demo', '--host', 'box-1'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/submitted train-\S+ \(training on box-1\)/);
    expect(r.stdout).toMatch(/run train-\S+: succeeded/);
    const bundleDir = /bundle: (\S+)/.exec(r.stdout)![1]!;
    expect((await verifyManifest(bundleDir)).verified).toBe(true);
    const remoteRuns = readdirSync(gpuBox.workRoot);
    expect(remoteRuns).toHaveLength(1);
    expect(existsSync(join(gpuBox.workRoot, remoteRuns[0]!, 'artifacts/training.log'))).toBe(true);
    expect(existsSync(join(bundleDir, 'artifacts/checkpoints/step-300/COMPLETE'))).toBe(true);
  });

  it('refuses a host that cannot take the job before building or starting anything', async () => {
    const job = join(tmp.dir, 'big.yaml');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(job, `task: collection\nsource: {kind: synthetic, rows: 10}\noutput: data/x.csv\nresources: {gpus: 4}\n`);
    const r = await orbit(['submit', job, '--host', 'auto'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no host in .* fits the job \(needs 4 gpus[\s\S]*box-1: needs 4 gpus, has 0/);
    const runs = existsSync(join(env.ORBIT_HOME!, 'runs')) ? readdirSync(join(env.ORBIT_HOME!, 'runs')) : [];
    expect(runs.filter((d) => d.startsWith('big-'))).toEqual([]);
  });
});
