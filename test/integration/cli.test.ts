import { existsSync, readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { verifyManifest } from '../../src/bundle';
import { tempDir } from '../helpers/bundles';
import { orbit, ROOT } from '../helpers/orbit-cli';



describe('the orbit command line, end to end on the embedded default', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    tmp = await tempDir('orbit-cli-');
    const port = inject('temporalAddress').split(':')[1];
    env = { ...process.env, ORBIT_HOME: join(tmp.dir, 'home'), ORBIT_TEMPORAL_PORT: port, ORBIT_TASK_QUEUE: `cli-${port}` };
    delete env.TEMPORAL_ADDRESS;
  });
  afterAll(async () => tmp.cleanup());

  it('demo: trains the example model, collects verified artifacts, and the loss goes down', async () => {
    const r = await orbit(['demo'], env);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/reusing Temporal dev server/);
    expect(r.stdout).toMatch(/Web UI: http:\/\/localhost:\d+\/namespaces\/default\/workflows\/train-/);
    expect(r.stdout).toMatch(/staging[\s\S]*launching[\s\S]*running[\s\S]*collecting[\s\S]*succeeded/);
    const bundleDir = /bundle: (\S+)/.exec(r.stdout)?.[1];
    expect(bundleDir).toBeDefined();
    expect((await verifyManifest(bundleDir!)).verified).toBe(true);
    const checkpoints = readdirSync(join(bundleDir!, 'artifacts/checkpoints')).sort((a, b) => Number(a.split('-')[1]) - Number(b.split('-')[1]));
    const last = checkpoints.at(-1)!;
    expect(existsSync(join(bundleDir!, 'artifacts/checkpoints', last, 'COMPLETE'))).toBe(true);
    const steps = (await readFile(join(bundleDir!, 'artifacts/checkpoints', last, 'logging.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { step: number; loss: number; lr: number; time: number });
    expect(steps.length).toBeGreaterThan(5);
    expect(steps.at(-1)!.loss).toBeLessThan(steps[0]!.loss / 2);
    expect(existsSync(join(bundleDir!, 'artifacts/training.log'))).toBe(true);
  });

  it('submit refuses an invalid request with the field named, exit code 2, and builds nothing', async () => {
    const bad = join(tmp.dir, 'bad.yaml');
    await writeFile(bad, 'task: training\ndatasetPath: ""\n');
    const r = await orbit(['submit', bad], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('outputDir');
    expect(existsSync(join(tmp.dir, 'home-bad/runs'))).toBe(false);
    const runs = existsSync(join(env.ORBIT_HOME!, 'runs')) ? readdirSync(join(env.ORBIT_HOME!, 'runs')) : [];
    expect(runs.filter((d) => d.startsWith('bad-'))).toEqual([]);
  });

  it('submit refuses an unknown task type, listing the known ones', async () => {
    const bad = join(tmp.dir, 'unknown.yaml');
    await writeFile(bad, 'task: painting\n');
    const r = await orbit(['submit', bad], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('task: unknown task type "painting"; known task types: collection, evaluation, training');
  });

  it('an unknown TEMPORAL_NAMESPACE is one line naming it and the address, exit code 3, and submit builds nothing', async () => {
    const nope = { ...env, TEMPORAL_NAMESPACE: 'nope', ORBIT_HOME: join(tmp.dir, 'home-nope') };
    const address = `127.0.0.1:${env.ORBIT_TEMPORAL_PORT}`;
    const line = `orbit: Temporal namespace "nope" does not exist at ${address}; create it (temporal operator namespace create --namespace nope) or set TEMPORAL_NAMESPACE to an existing one\n`;
    const results = await Promise.all([['list'], ['status', 'train-x'], ['result', 'train-x'], ['sweep', 'list'], ['submit', join(ROOT, 'examples/train.yaml')]].map((args) => orbit(args, nope)));
    for (const r of results) expect(r).toEqual({ code: 3, stdout: '', stderr: line });
    expect(existsSync(join(tmp.dir, 'home-nope/runs')) ? readdirSync(join(tmp.dir, 'home-nope/runs')) : []).toEqual([]);
  });

  it('status and result of a finished run', async () => {
    const job = join(tmp.dir, 'collect.yaml');
    await writeFile(job, (await readFile(join(ROOT, 'examples/collect.yaml'), 'utf8')));
    // A worker is needed: run the submit through `demo`, which hosts one for the duration.
    const r = await orbit(['demo', job], env);
    expect(r.code).toBe(0);
    const id = /submitted (\S+)/.exec(r.stdout)?.[1];
    expect(id).toMatch(/^collect-\d{8}-\d{6}-[0-9a-f]{4}$/);
    const status = await orbit(['status', id!], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`run ${id}: completed, phase succeeded on local`);
    const result = await orbit(['result', id!], env);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`run ${id}: succeeded`);
  });
});
