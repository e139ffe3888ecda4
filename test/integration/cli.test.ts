import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { verifyManifest } from '../../src/bundle';
import { tempDir } from '../helpers/bundles';
import { orbit, orbitInTerminal, ROOT } from '../helpers/orbit-cli';
import { waitFor } from '../helpers/wait';



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

  it('demo: trains the example model, collects verified artifacts, the loss goes down, and a terminal sees only the story', async () => {
    const t = await orbitInTerminal(['demo'], env);
    const r = { code: t.code, stdout: t.output };
    expect(r.stdout).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    // Nothing of the SDK's or webpack's: no worker-state records, no module statistics, no JSON log records.
    const lines = r.stdout.split('\n').filter((l) => l.trim());
    expect(lines.filter((l) => /webpack|modules by|asset |Worker state|workflow bundle|^\s*[{}]|"level"|\[(INFO|DEBUG|TRACE)\]|sdkComponent/i.test(l))).toEqual([]);
    expect(lines.length).toBeLessThan(60);
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

    // -o json on every command that has it: one document on stdout that parses, notes on stderr.
    const json = async (args: string[]) => {
      const o = await orbit([...args, '-o', 'json'], env);
      expect(o.code, args.join(' ')).toBe(0);
      return JSON.parse(o.stdout) as Record<string, unknown> & unknown[];
    };
    const s = await json(['status', id!]);
    expect(s).toMatchObject({ runId: id, execution: 'completed', phase: 'succeeded', host: 'local' });
    expect(Date.parse(s.startedAt as string)).toBeGreaterThan(0);
    expect(await json(['result', id!])).toMatchObject({ workflowId: id, status: 'succeeded', result: { host: 'local', exitCode: 0 } });
    const listed = await json(['list', '--task', 'collection']);
    expect(listed.map((x) => (x as { workflowId: string }).workflowId)).toContain(id);
    const csv = await orbit(['list', '--task', 'collection', '-o', 'csv'], env);
    expect(csv.stdout.split('\n')[0]).toBe('id,task,phase,host,started');
    expect(csv.stdout).toContain(`${id},collection,succeeded,local,`);
    // The fleet is a workflow: with the demo's worker gone, nothing can answer, and queue says so in one line.
    const queue = await orbit(['queue'], env);
    expect(queue.code).toBe(3);
    // (the demo's worker stopped seconds ago: Temporal still lists it as a poller for a while)
    expect(queue.stderr.trim()).toMatch(/^orbit: the fleet \(workflow \S+\) (cannot answer: no worker is polling|did not answer within 5 s: a worker polled) task queue "cli-\d+".*`orbit worker`/);
    expect(await json(['hosts', 'list'])).toMatchObject({ hosts: [], fleetNote: expect.stringMatching(/the fleet .* (cannot|did not) answer/) });
    // The table is the whole of stdout (the query and the Web UI link are notes on stderr), so a pipe counts runs.
    const table = await orbit(['list', '--task', 'collection'], env);
    expect(table.stdout.trim().split('\n')[0]).toMatch(/^ID\s+TASK\s+PHASE\s+HOST\s+STARTED$/);
    expect(table.stderr).toMatch(/^query: OrbitTaskType = "collection"/);
  });

  it('submit and status say when no worker polls the task queue, and status answers from the workflow\'s state', async () => {
    const lonely = { ...env, ORBIT_TASK_QUEUE: `nobody-${env.ORBIT_TEMPORAL_PORT}` };
    const sub = await orbit(['submit', join(ROOT, 'examples/collect.yaml'), '-q'], lonely);
    expect(sub.code).toBe(0);
    const id = sub.stdout.trim();
    expect(id).toMatch(/^collect-\d{8}-\d{6}-[0-9a-f]{4}$/);
    expect(sub.stderr).toContain(`warning: no worker is polling task queue "nobody-${env.ORBIT_TEMPORAL_PORT}"`);
    expect(sub.stderr).toContain('orbit worker');
    const started = Date.now();
    const status = await orbit(['status', id], lonely);
    const took = Date.now() - started;
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`run ${id}: running`);
    expect(status.stdout).toContain("from the workflow's recorded state");
    expect(status.stderr).toContain('no worker is polling');
    // No query that waits for a worker (it used to take 36 s): process start plus a few round trips.
    expect(took).toBeLessThan(15_000);
    const cancelled = await orbit(['cancel', id, '--no-wait'], lonely);
    expect(cancelled.code).toBe(0);

    // Ctrl-C while following: exit 130, and a line saying the run goes on and how to look at it.
    const child = spawn(join(ROOT, 'bin/orbit'), ['submit', join(ROOT, 'examples/collect.yaml'), '--follow'], { env: lonely });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await waitFor(async () => err, (e) => /no worker is polling/.test(e), 60_000);
    await new Promise((r) => setTimeout(r, 2000)); // following by now (it polls every second)
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    const followed = /submitted (\S+)/.exec(out)?.[1];
    expect(err).toContain(`stopped following; run ${followed} goes on (orbit status ${followed}`);
    await orbit(['cancel', followed!, '--no-wait'], lonely);
  });
});
