/**
 * The real split, for both store kinds: a client, two workers and a puller, each with its own
 * ORBIT_HOME, sharing nothing but the store (a shared folder standing in for NFS, or S3 through moto)
 * and Temporal. The job runs on an OpenSSH host both workers reach. Worker 1 stages, launches and
 * syncs; it is SIGKILLed while the job runs; worker 2 takes the run over and collects it into its own
 * home; `orbit pull` and `orbit result` then bring the run to a fourth machine, every file checked by
 * sha256. Then two store faults on S3: a blob changed in the store before staging, and a submit
 * without credentials.
 */
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { blobKey, readArtifacts, readBundleManifest, readRunRecord, type StoredFile } from '../../src/store/cas';
import { openStore } from '../../src/store/open';
import { statusQuery, type RunResult, type RunStatus } from '../../src/workflows';
import { tempDir } from '../helpers/bundles';
import { orbit, ROOT } from '../helpers/orbit-cli';
import { recordHistory } from '../helpers/histories';
import { runOutcome } from '../helpers/run-outcome';
import { startS3Server, type S3Server } from '../helpers/s3';
import { startSshd, writeHostsFile, type SshdServer } from '../helpers/sshd';
import { until, within } from '../helpers/wait';
import { WorkerProcesses } from '../helpers/worker-processes';

/**
 * The upstream's entry: writes a note in a nested folder and a 1.5 MiB binary at once, then one log
 * line and one progress line a second for 16 s, a second binary (1 MiB, nested) at step 8, and a
 * declared output (results/final.json, copied to artifacts/upstream/) at the end. Binaries are
 * written beside the tree and renamed in, so a sync never sees half of one.
 */
const JOB = `#!/usr/bin/env bash
set -eu
A="$ORBIT_ARTIFACTS_DIR"
echo "job starting; artifacts in $A"
mkdir -p "$A/nested/deep" "$A/weights" results
printf 'a note in a nested folder\\n' > "$A/nested/deep/note.txt"
head -c 1572864 /dev/urandom > model.part && mv model.part "$A/weights/model.bin"
for i in $(seq 1 16); do
  echo "step $i"
  echo "step $i $(date +%s.%N)" >> "$A/progress.txt"
  if [ "$i" = 8 ]; then head -c 1048576 /dev/urandom > ckpt.part && mv ckpt.part "$A/nested/deep/ckpt-8.bin"; fi
  sleep 1
done
echo '{"done": true}' > results/final.json
echo "job done"
`;

const BIN_FILES = ['artifacts/weights/model.bin', 'artifacts/nested/deep/ckpt-8.bin'];
/** What the job itself writes, as bundle paths; the runtime adds manifest.json, upstream_run.json and the rest. */
const JOB_FILES = [...BIN_FILES, 'artifacts/nested/deep/note.txt', 'artifacts/progress.txt', 'artifacts/upstream/results/final.json', 'artifacts/upstream.log'];

const gitIn = (repo: string, ...args: string[]) =>
  execFileSync('git', ['-C', repo, '-c', 'user.name=Upstream', '-c', 'user.email=up@example.org', '-c', 'commit.gpgsign=false', ...args], { encoding: 'utf8' }).trim();

const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');

/** A workflow failure's message and its causes', one per line. */
function failureText(e: unknown): string {
  const lines: string[] = [];
  for (let c = e as Error | undefined, i = 0; c && i < 5; c = (c as { cause?: Error }).cause, i++) lines.push(c.message);
  return lines.join('\n');
}

/** Every file under `dir`, as paths relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const full = join(d, e.name);
      if (e.isDirectory()) await visit(full);
      else if (e.isFile()) out.push(relative(dir, full));
    }
  };
  await visit(dir);
  return out.sort();
}

/** An env for an orbit process: its own ORBIT_HOME, the suite's Temporal server, the SSH host inventory. */
function orbitEnv(home: string, taskQueue: string, hostsFile: string, store: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ORBIT_HOME: home,
    ORBIT_TEMPORAL_PORT: inject('temporalAddress').split(':').at(-1),
    ORBIT_TASK_QUEUE: taskQueue,
    ORBIT_HOSTS: hostsFile,
    ...store,
  };
  delete env.TEMPORAL_ADDRESS;
  return env;
}

describe('the store split: client, two workers and a puller share only the store', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let box: SshdServer;
  let s3: S3Server;
  let hostsFile: string;
  let requestFile: string;
  let connection: Connection;
  let client: Client;
  let workers: WorkerProcesses;
  const savedEnv: Record<string, string | undefined> = {};

  beforeAll(async () => {
    tmp = await tempDir('orbit-store-split-');
    // The host's own Python (the upstream runner and the runtime's manifest need python3).
    [box, s3] = await Promise.all([
      startSshd({ name: 'split-box', sessionEnv: { PATH: `${join(ROOT, '.venv/bin')}:/usr/local/bin:/usr/bin:/bin` } }),
      startS3Server(),
    ]);
    await Promise.all(['orbit-split', 'orbit-faults'].map((b) => s3.createBucket(b)));
    // This process reads the S3 store too. The SDK's credential chain reads process.env itself
    // (s3StoreFrom's env carries only the ORBIT_S3_* settings), so the server's credentials go there.
    for (const [k, v] of Object.entries(s3.env)) {
      savedEnv[k] = process.env[k];
      process.env[k] = v;
    }
    hostsFile = join(tmp.dir, 'hosts.yaml');
    await writeHostsFile(hostsFile, [box]);

    // The upstream: a local git repository at one commit (in the suite's temp folder, not this repo).
    const repo = join(tmp.dir, 'upstream');
    await mkdir(repo, { recursive: true });
    execFileSync('git', ['init', '-q', '-b', 'main', repo]);
    await writeFile(join(repo, 'job.sh'), JOB, { mode: 0o755 });
    gitIn(repo, 'add', '-A');
    gitIn(repo, 'commit', '-q', '-m', 'the job');
    const commit = gitIn(repo, 'rev-parse', 'HEAD');
    requestFile = join(tmp.dir, 'requests', 'split.yaml');
    await mkdir(join(tmp.dir, 'requests'), { recursive: true });
    await writeFile(
      requestFile,
      `task: upstream\nrepository: ${repo}\ncommit: ${commit}\nentry: [bash, job.sh]\noutputs: [results]\nsyncIntervalSeconds: 1\ntimeoutSeconds: 300\n`,
    );

    connection = await Connection.connect({ address: inject('temporalAddress') });
    client = new Client({ connection });
    workers = new WorkerProcesses(join(tmp.dir, 'logs'), () => ({})); // each start gets its whole env
  });

  afterAll(async () => {
    for (const [k, v] of Object.entries(savedEnv)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await workers?.killAll();
    await connection?.close();
    await Promise.all([box?.stop(), s3?.stop()]);
    if (!process.env.ORBIT_KEEP_TEST_FILES) await tmp?.cleanup();
  });

  afterEach(async () => {
    await workers.killAll();
  });

  /** What the workers printed, for a failure's message. */
  async function workerLogs(): Promise<string> {
    const dir = join(tmp.dir, 'logs');
    if (!existsSync(dir)) return '';
    const names = readdirSync(dir).sort();
    const texts = await Promise.all(names.map(async (n) => `--- ${n}\n${(await readFile(join(dir, n), 'utf8')).slice(-4000)}`));
    return texts.join('\n');
  }

  const startWorker = (env: NodeJS.ProcessEnv, name: string): Promise<ChildProcess> => workers.start(env as Record<string, string>, name);

  const statusOf = (handle: WorkflowHandle): Promise<RunStatus | undefined> => handle.query(statusQuery).catch(() => undefined);

  /** `orbit submit` from `env`'s home; the run id it printed. */
  async function submit(env: NodeJS.ProcessEnv): Promise<string> {
    const r = await orbit(['submit', requestFile, '--host', box.name], env);
    expect(r.code, `orbit submit: ${r.stderr}`).toBe(0);
    const id = /submitted (\S+)/.exec(r.stdout)?.[1];
    expect(id, r.stdout).toBeDefined();
    return id!;
  }

  describe.each(['file', 's3'] as const)('on a %s store', (kind) => {
    let store: Record<string, string>;
    let homes: { client: string; worker1: string; worker2: string; puller: string };
    let taskQueue: string;

    beforeAll(() => {
      const base = join(tmp.dir, kind);
      homes = { client: join(base, 'client'), worker1: join(base, 'worker1'), worker2: join(base, 'worker2'), puller: join(base, 'puller') };
      store = kind === 'file' ? { ORBIT_STORE: `file://${join(base, 'shared-store')}` } : { ORBIT_STORE: 's3://orbit-split/orbit', ...s3.env };
      taskQueue = `store-split-${kind}-${randomUUID().slice(0, 8)}`;
    });

    const envOf = (home: string) => orbitEnv(home, taskQueue, hostsFile, store);

    it('worker 1 stages and syncs, dies; worker 2 collects into its own home; pull and result work anywhere', async () => {
      const storeUrl = store.ORBIT_STORE!;
      const inStore = await openStore(storeUrl, envOf(homes.client));
      const worker1 = await startWorker(envOf(homes.worker1), `${kind}-worker1`);
      const id = await submit(envOf(homes.client));
      const handle = client.workflow.getHandle(id);

      // Worker 1 (the only one) stages and launches; its monitor syncs the first files and publishes them.
      await until(
        `${id} running with artifacts/weights/model.bin published to ${storeUrl}`,
        async () => {
          const s = await statusOf(handle);
          if (s?.phase !== 'running') return false;
          const record = await readArtifacts(inStore, id);
          return record?.files.some((f) => f.path === 'artifacts/weights/model.bin');
        },
        60_000,
        250,
      ).catch(async (e: Error) => {
        throw new Error(`${e.message}\n${await workerLogs()}`);
      });
      const synced = (await readArtifacts(inStore, id))!;
      expect(synced.files.map((f) => f.path)).not.toContain('artifacts/manifest.json');
      await workers.kill(worker1);
      const killedAt = Date.now();
      // Worker 1 brought the bundle from the store into its own home and synced into it.
      expect(existsSync(join(homes.worker1, 'runs', id, 'job.json'))).toBe(true);
      expect(existsSync(join(homes.worker1, 'runs', id, 'artifacts/weights/model.bin'))).toBe(true);

      await startWorker(envOf(homes.worker2), `${kind}-worker2`);
      let result: RunResult;
      try {
        result = await within(150_000, `${id} to end on worker 2`, runOutcome(handle));
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${await workerLogs()}`);
      }
      console.log(`store-split (${kind}): ${id} ended ${((Date.now() - killedAt) / 1000).toFixed(1)} s after worker 1 was killed`);
      expect(result.status, `${result.reasons.join('; ')}\n${await workerLogs()}`).toBe('succeeded');
      expect(result.store).toBe(storeUrl);
      expect(result.collect.verified).toBe(true);
      if (kind === 'file') await recordHistory('run-bundle-stored-handover', handle);

      // Worker 2 collected into its own home: the manifest and every file of it are there, verified.
      const w2 = join(homes.worker2, 'runs', id);
      const manifest = JSON.parse(await readFile(join(w2, 'artifacts/manifest.json'), 'utf8')) as { files: { path: string; size: number; sha256: string }[] };
      const manifestPaths = manifest.files.map((f) => `artifacts/${f.path}`);
      for (const p of JOB_FILES) expect(manifestPaths, `the manifest lists ${p}`).toContain(p);
      for (const f of manifest.files) expect(await sha256(join(w2, 'artifacts', f.path)), `worker 2's ${f.path}`).toBe(f.sha256);
      // What the job wrote after the kill reached worker 2 only: worker 1 never saw the end.
      expect(existsSync(join(homes.worker1, 'runs', id, 'artifacts/upstream_run.json'))).toBe(false);
      expect(existsSync(join(homes.worker1, 'runs', id, 'artifacts/manifest.json'))).toBe(false);
      // The client's home has only the bundle it built: no artifacts came to it.
      expect(existsSync(join(homes.client, 'runs', id, 'artifacts/manifest.json'))).toBe(false);

      // The store's record lists every artifact worker 2 holds (runtime/ and artifacts/), with its sha256.
      const record = (await readArtifacts(inStore, id))!;
      const byPath = new Map<string, StoredFile>(record.files.map((f) => [f.path, f]));
      const held = (await filesUnder(w2)).filter((p) => (p.startsWith('artifacts/') || p.startsWith('runtime/')) && p !== 'runtime/frozen.json');
      expect([...byPath.keys()].sort()).toEqual(held);
      for (const f of manifest.files) expect(byPath.get(`artifacts/${f.path}`)?.sha256, `artifacts.json: ${f.path}`).toBe(f.sha256);
      for (const p of held) expect(byPath.get(p)!.sha256, `artifacts.json: ${p}`).toBe(await sha256(join(w2, p)));

      // orbit pull into an empty home on a fourth machine: everything, every file as collected.
      const puller = envOf(homes.puller);
      expect(existsSync(homes.puller)).toBe(false);
      const pull = await orbit(['pull', id], puller);
      expect(pull.code, pull.stderr).toBe(0);
      expect(pull.stdout).toContain(`pulled ${id} into ${join(homes.puller, 'runs', id)}`);
      expect(pull.stdout).toContain(`from ${storeUrl}`);
      const pulled = join(homes.puller, 'runs', id);
      for (const f of manifest.files) expect(await sha256(join(pulled, 'artifacts', f.path)), `pulled ${f.path}`).toBe(f.sha256);
      for (const p of held) expect(await sha256(join(pulled, p)), `pulled ${p}`).toBe(await sha256(join(w2, p)));
      // ...and the frozen bundle, the same as the client built.
      const built = (await filesUnder(join(homes.client, 'runs', id))).filter((p) => !p.startsWith('runtime/') && !p.startsWith('artifacts/'));
      expect(built).toContain('job.json');
      for (const p of built) expect(await sha256(join(pulled, p)), `pulled ${p}`).toBe(await sha256(join(homes.client, 'runs', id, p)));

      // --only: only the binaries are fetched (the folder also gets the bundle's empty parts and its frozen.json marker).
      const bins = join(tmp.dir, kind, 'bins');
      const only = await orbit(['pull', id, '--only', 'artifacts/**/*.bin', '--to', bins], puller);
      expect(only.code, only.stderr).toBe(0);
      expect(only.stdout).toMatch(new RegExp(`pulled ${id} into ${bins}: 2 files, `));
      expect((await filesUnder(bins)).filter((p) => p !== 'runtime/frozen.json')).toEqual([...BIN_FILES].sort());
      for (const p of BIN_FILES) expect(await sha256(join(bins, p))).toBe(await sha256(join(w2, p)));

      // orbit result from the puller's home: the run's summary.
      const res = await orbit(['result', id], puller);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toContain(`run ${id}: succeeded`);
      expect(res.stdout).toContain(`host: ${box.name}`);
      expect(res.stdout).toMatch(/upstream .*: `bash job\.sh` exited 0 after/);
      expect(res.stdout).toContain(`bundle: ${pulled}`);
    });
  });

  describe('store faults (s3)', () => {
    it('a blob changed in the store before staging: the run fails, naming the store and the object', async () => {
      const taskQueue = `store-split-tamper-${randomUUID().slice(0, 8)}`;
      const store = { ORBIT_STORE: 's3://orbit-faults/tamper', ...s3.env };
      const env = (home: string) => orbitEnv(join(tmp.dir, 'tamper', home), taskQueue, hostsFile, store);
      // No worker yet: the run waits in Temporal while its bundle is changed in the store.
      const id = await submit(env('client'));
      const inStore = await openStore(store.ORBIT_STORE, env('client'));
      const run = (await readRunRecord(inStore, id))!;
      const manifest = await readBundleManifest(inStore, run.digest);
      const target = manifest.files.find((f) => f.path === 'inputs/upstream/tree/job.sh')!;
      expect(target).toBeDefined();
      const key = blobKey(target.sha256);
      const original = (await inStore.getBytes(key))!;
      await inStore.putBytes(key, Buffer.from(original.toString('utf8').replace('step $i', 'STEP $i'))); // same size, other bytes

      await startWorker(env('worker'), 'tamper-worker');
      const handle = client.workflow.getHandle(id);
      let failure: unknown;
      const result = await within(60_000, `${id} to fail`, runOutcome(handle)).catch(async (e: unknown) => {
        failure = e;
        return undefined;
      });
      const said = result ? [...result.reasons, result.collect?.ended?.reason ?? ''].join('\n') : failureText(failure);
      expect(result?.status ?? 'failed', said).toBe('failed');
      expect(said).toContain(`store ${store.ORBIT_STORE}`);
      expect(said).toContain(`object ${key} (inputs/upstream/tree/job.sh)`);
      expect(said).toContain('changed or truncated');
      // Nothing of the changed file reached the worker's copy or the host.
      expect(existsSync(join(tmp.dir, 'tamper/worker/runs', id, 'inputs/upstream/tree/job.sh'))).toBe(false);
      expect(existsSync(join(box.workRoot, id))).toBe(false);

      // orbit result: the verdict's run cannot be brought here (its bundle is what was changed), and
      // the one line says which store and object, exit 1.
      const res = await orbit(['result', id], env('puller'));
      expect(res.code).toBe(1);
      const resSaid = res.stdout + res.stderr;
      expect(resSaid).toContain(`store ${store.ORBIT_STORE}`);
      expect(resSaid).toContain(`object ${key} (inputs/upstream/tree/job.sh)`);
      expect(resSaid).toContain('changed or truncated');
      expect(resSaid).not.toMatch(/\n\s+at /);
      const status = await orbit(['status', id], env('puller'));
      expect(status.code).toBe(0);
      expect(status.stdout).toContain(`run ${id}: failed`);
      expect(status.stdout).toContain(`store: ${store.ORBIT_STORE}`);
    });

    it('orbit store gc keeps what a queued run needs, drops an orphan blob, and drops the run once it ended', async () => {
      const taskQueue = `store-split-gc-${randomUUID().slice(0, 8)}`;
      const store = { ORBIT_STORE: 's3://orbit-faults/gc', ...s3.env, ORBIT_GC_GRACE_SECONDS: '0' };
      const env = orbitEnv(join(tmp.dir, 'gc', 'client'), taskQueue, hostsFile, store);
      const id = await submit(env); // no worker on this queue: the run stays queued
      const inStore = await openStore(store.ORBIT_STORE, env);
      const digest = (await readRunRecord(inStore, id))!.digest;
      const orphan = blobKey('0'.repeat(64));
      await inStore.putBytes(orphan, 'left by an upload that never committed');
      const gc = await orbit(['store', 'gc', '--older-than', '0s'], env);
      expect(gc.code, gc.stderr).toBe(0);
      expect(gc.stdout).toMatch(/dropped \d+ runs, \d+ bundles, [1-9]\d* blobs/);
      expect(await inStore.stat(orphan)).toBeUndefined();
      // Everything the queued run will stage is still there.
      for (const f of (await readBundleManifest(inStore, digest)).files) expect(await inStore.stat(blobKey(f.sha256))).toBeDefined();

      await client.workflow.getHandle(id).terminate('gc test');
      await until(
        'gc to drop the ended run',
        async () => {
          const again = await orbit(['store', 'gc', '--older-than', '0s'], env);
          expect(again.code, again.stderr).toBe(0);
          return (await readRunRecord(inStore, id)) === undefined;
        },
        30_000,
      );
      await expect(readBundleManifest(inStore, digest)).rejects.toThrow(/not there/);
      const dry = await orbit(['store', 'gc', '--dry-run'], env);
      expect(dry.stdout).toMatch(/would drop 0 runs, 0 bundles, 0 blobs/);
    });

    it('submit without S3 credentials: one line naming the store and credentials, no stack, no workflow', async () => {
      const taskQueue = `store-split-nocreds-${randomUUID().slice(0, 8)}`;
      const home = join(tmp.dir, 'nocreds', 'client');
      const empty = join(tmp.dir, 'nocreds', 'empty');
      await mkdir(empty, { recursive: true });
      await Promise.all([writeFile(join(empty, 'credentials'), ''), writeFile(join(empty, 'config'), '')]);
      const env = orbitEnv(home, taskQueue, hostsFile, { ORBIT_STORE: 's3://orbit-split/orbit', ORBIT_S3_ENDPOINT: s3.endpoint, AWS_REGION: 'us-east-1' });
      for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'AWS_CONTAINER_CREDENTIALS_FULL_URI']) {
        delete env[k];
      }
      Object.assign(env, { AWS_SHARED_CREDENTIALS_FILE: join(empty, 'credentials'), AWS_CONFIG_FILE: join(empty, 'config'), AWS_EC2_METADATA_DISABLED: 'true' });
      const r = await orbit(['submit', requestFile, '--host', box.name], env, 60_000);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^orbit: store s3:\/\/orbit-split\/orbit\b.*credentials/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      // No run was started, and the bundle built for it is gone again.
      const started = [];
      for await (const w of client.workflow.list({ query: `TaskQueue = '${taskQueue}'` })) started.push(w.workflowId);
      expect(started).toEqual([]);
      expect(existsSync(join(home, 'runs')) ? readdirSync(join(home, 'runs')) : []).toEqual([]);
    });
  });
});
