/**
 * The content-addressed layout over both stores: dedup, verified fetches, refusals of tampered or
 * untrusted objects, commit order, run artifacts and gc. The same cases run on file:// and on S3 (moto).
 */
import { createHash } from 'node:crypto';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Bundle } from '../../src/bundle';
import { artifactsKey, blobKey, bundleKey, materializeBundle, newPublishCache, publishArtifacts, pullRun, pushBundle, readArtifacts, writeRunRecord } from '../../src/store/cas';
import { FileStore } from '../../src/store/file';
import { applyGc, planGc } from '../../src/store/gc';
import { s3StoreFrom } from '../../src/store/s3';
import { StoreError, type BundleStore } from '../../src/store/store';
import { jobSpec } from '../helpers/bundles';
import { startS3Server } from '../helpers/s3';
import { useTempDirs } from '../helpers/use-temp-dirs';

const temp = useTempDirs('orbit-cas-');

async function bigBundle(dir: string, dataset: Buffer, jobId = 'unit-job'): Promise<{ bundle: Bundle; digest: string }> {
  const bundle = await Bundle.create(dir, jobSpec({ jobId }));
  await bundle.writeInput('data.bin', dataset);
  await bundle.writeScript('job.sh', '#!/usr/bin/env bash\necho hi\n', true);
  return { bundle, digest: await bundle.freeze() };
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

let s3: Awaited<ReturnType<typeof startS3Server>>;
let bucketN = 0;
beforeAll(async () => {
  s3 = await startS3Server();
  for (const [k, v] of Object.entries(s3.env)) vi.stubEnv(k, v);
}, 60_000);
afterAll(async () => {
  vi.unstubAllEnvs();
  await s3?.stop();
});

const kinds: [string, () => Promise<BundleStore>][] = [
  ['file', async () => new FileStore(join(await temp(), 'store'))],
  [
    's3',
    async () => {
      const bucket = `cas-${++bucketN}`;
      await s3.createBucket(bucket);
      return s3StoreFrom(`s3://${bucket}/orbit`, s3.env);
    },
  ],
];

describe.each(kinds)('content-addressed store on %s', (_kind, makeStore) => {
  it('stores a 100 MB dataset shared by two bundles once (bytes sent measured), and a resubmit sends nothing', async () => {
    const store = await makeStore();
    const dataset = Buffer.alloc(100 * 1024 * 1024, 7);
    const a = await bigBundle(join(await temp(), 'a'), dataset, 'job-a');
    const b = await bigBundle(join(await temp(), 'b'), dataset, 'job-b');
    expect(a.digest).not.toBe(b.digest); // job.json differs
    const first = await pushBundle(store, a.bundle.dir, a.digest);
    expect(first.movedBytes).toBeGreaterThanOrEqual(dataset.length);
    const second = await pushBundle(store, b.bundle.dir, b.digest);
    expect(second.bytes).toBeGreaterThanOrEqual(dataset.length);
    expect(second.movedBytes).toBeLessThan(dataset.length / 100); // only the job.json that differs
    const again = await pushBundle(store, a.bundle.dir, a.digest);
    expect(again.movedBytes).toBe(0);
    const blobs: { key: string; size: number }[] = [];
    for await (const o of store.list('blobs/')) blobs.push(o);
    expect(blobs.filter((o) => o.key.endsWith(sha(dataset)))).toHaveLength(1);
    // What the store holds is one dataset plus two small bundles' worth, not two datasets.
    const held = blobs.reduce((n, o) => n + o.size, 0);
    expect(held).toBeLessThan(dataset.length * 1.01);
    expect(first.movedBytes + second.movedBytes + again.movedBytes).toBe(held);
  }, 120_000);

  it('materializes a bundle byte for byte, with modes, and the digest still holds', async () => {
    const store = await makeStore();
    const a = await bigBundle(join(await temp(), 'a'), Buffer.from('data\n'));
    await pushBundle(store, a.bundle.dir, a.digest);
    const dest = join(await temp(), 'copy');
    const t = await materializeBundle(store, a.digest, dest);
    expect(t.movedFiles).toBe(t.files);
    const copy = await Bundle.open(dest);
    expect(await copy.assertDigest(a.digest)).toBe(a.digest);
    expect((await stat(join(dest, 'scripts/job.sh'))).mode & 0o777).toBe(0o755);
    expect(await copy.frozenDigest()).toBe(a.digest);
  });

  it('refuses a tampered or truncated blob, naming the store and the object', async () => {
    const store = await makeStore();
    const a = await bigBundle(join(await temp(), 'a'), Buffer.from('the real data\n'));
    await pushBundle(store, a.bundle.dir, a.digest);
    const key = blobKey(sha('the real data\n'));
    await store.putBytes(key, 'the evil data\n');
    const dest = join(await temp(), 'copy');
    const err = await materializeBundle(store, a.digest, dest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).problem).toBe('corrupt');
    expect((err as Error).message).toContain(store.url);
    expect((err as Error).message).toContain(key);
    expect((err as Error).message).toContain('inputs/data.bin');
    await expect(stat(join(dest, 'inputs/data.bin'))).rejects.toThrow(); // nothing half-written
  });

  it('refuses a manifest whose paths leave the bundle, or whose files do not make its digest', async () => {
    const store = await makeStore();
    const a = await bigBundle(join(await temp(), 'a'), Buffer.from('x'));
    await pushBundle(store, a.bundle.dir, a.digest);
    const manifest = JSON.parse((await store.getBytes(bundleKey(a.digest)))!.toString()) as { files: { path: string }[] };
    manifest.files[1]!.path = '../../etc/passwd';
    await store.putBytes(bundleKey(a.digest), JSON.stringify(manifest));
    await expect(materializeBundle(store, a.digest, join(await temp(), 'c'))).rejects.toThrow(/names a file Orbit refuses/);
    manifest.files[1]!.path = 'inputs/other.bin';
    await store.putBytes(bundleKey(a.digest), JSON.stringify(manifest));
    await expect(materializeBundle(store, a.digest, join(await temp(), 'c'))).rejects.toThrow(/digest is not/);
  });

  it('a bundle with no manifest (an upload that never committed) cannot be run from', async () => {
    const store = await makeStore();
    const a = await bigBundle(join(await temp(), 'a'), Buffer.from('y'));
    await pushBundle(store, a.bundle.dir, a.digest);
    await store.delete([bundleKey(a.digest)]);
    const err = (await materializeBundle(store, a.digest, join(await temp(), 'c')).catch((e: unknown) => e)) as StoreError;
    expect(err.problem).toBe('missing');
    expect(err.message).toContain(bundleKey(a.digest));
  });

  it('refuses to push a bundle changed after it was frozen', async () => {
    const store = await makeStore();
    const a = await bigBundle(join(await temp(), 'a'), Buffer.from('z'));
    await writeFile(join(a.bundle.dir, 'inputs/data.bin'), 'edited');
    await expect(pushBundle(store, a.bundle.dir, a.digest)).rejects.toThrow(/changed after it was frozen/);
    expect(await store.getBytes(bundleKey(a.digest))).toBeUndefined();
  });

  it('publishes run artifacts incrementally and pulls them into an empty folder, verified', async () => {
    const store = await makeStore();
    const a = await bigBundle(join(await temp(), 'a'), Buffer.from('d'));
    await pushBundle(store, a.bundle.dir, a.digest);
    await writeRunRecord(store, { runId: 'r1', digest: a.digest });
    await writeFile(join(a.bundle.dir, 'artifacts/step-1.txt'), 'one');
    const p1 = await publishArtifacts(store, 'r1', a.bundle.dir, newPublishCache());
    expect(p1.movedFiles).toBe(1);
    await writeFile(join(a.bundle.dir, 'artifacts/step-2.txt'), 'two');
    await writeFile(join(a.bundle.dir, 'runtime/exit_code'), '0\n');
    const cache = newPublishCache();
    await publishArtifacts(store, 'r1', a.bundle.dir, cache);
    // With the cache, a publish asks the store only about blobs its record does not name yet.
    const asked: string[] = [];
    const counting: BundleStore = Object.assign(Object.create(store) as BundleStore, {
      stat: (key: string) => (asked.push(key), store.stat(key)),
    });
    const p3 = await publishArtifacts(counting, 'r1', a.bundle.dir, cache);
    expect(p3.movedFiles).toBe(0);
    expect(asked).toEqual([]);
    await writeFile(join(a.bundle.dir, 'artifacts/step-3.txt'), 'three');
    const p4 = await publishArtifacts(counting, 'r1', a.bundle.dir, cache);
    expect(p4.movedFiles).toBe(1);
    expect(asked).toEqual([blobKey(sha('three'))]);
    await rm(join(a.bundle.dir, 'artifacts/step-3.txt'));
    await publishArtifacts(store, 'r1', a.bundle.dir, cache); // the record follows the folder
    const record = await readArtifacts(store, 'r1');
    expect(record?.files.map((f) => f.path).sort()).toEqual(['artifacts/step-1.txt', 'artifacts/step-2.txt', 'runtime/exit_code']);
    const dest = join(await temp(), 'pulled');
    await pullRun(store, 'r1', a.digest, dest, { verifyLocal: true });
    expect(await readFile(join(dest, 'artifacts/step-2.txt'), 'utf8')).toBe('two');
    expect(await readFile(join(dest, 'inputs/data.bin'), 'utf8')).toBe('d');
    const some = join(await temp(), 'some');
    const t = await pullRun(store, 'r1', a.digest, some, { only: (p) => p.startsWith('artifacts/') });
    expect(t.files).toBe(2);
    await expect(stat(join(some, 'inputs/data.bin'))).rejects.toThrow();
    // An artifacts record naming a path outside runtime/ and artifacts/ is refused.
    await store.putBytes(artifactsKey('r1'), JSON.stringify({ ...record, files: [{ ...record!.files[0], path: 'scripts/job.sh' }] }));
    await expect(readArtifacts(store, 'r1')).rejects.toThrow(/refuses/);
  });

  it('gc drops what nothing names, keeps what a kept or running run and a sweep name', async () => {
    const store = await makeStore();
    const kept = await bigBundle(join(await temp(), 'k'), Buffer.from('kept'), 'kept');
    const old = await bigBundle(join(await temp(), 'o'), Buffer.from('old'), 'old');
    const active = await bigBundle(join(await temp(), 'a'), Buffer.from('active'), 'active');
    const orphan = await bigBundle(join(await temp(), 'x'), Buffer.from('orphan'), 'orphan');
    const cell = await bigBundle(join(await temp(), 'c'), Buffer.from('cell'), 'cell');
    for (const b of [kept, old, active, orphan, cell]) await pushBundle(store, b.bundle.dir, b.digest);
    await writeRunRecord(store, { runId: 'kept', digest: kept.digest });
    await writeRunRecord(store, { runId: 'old', digest: old.digest });
    await writeRunRecord(store, { runId: 'active', digest: active.digest });
    await store.putBytes('sweeps/s1/sweep.json', JSON.stringify({ cells: [{ digest: cell.digest }] }));
    const later = Date.now() + 2 * 3_600_000; // past the grace period; every record then is "old"
    const dry = await planGc(store, { now: later, activeRuns: new Set(['active']), activeDigests: new Set() });
    expect(dry.runKeys).toEqual([]);
    expect(dry.bundleKeys).toEqual([bundleKey(orphan.digest)]);
    // The orphan's own blobs: its data and its job.json (every bundle's job.json differs).
    const orphanJob = sha(await readFile(join(orphan.bundle.dir, 'job.json')));
    expect(dry.blobKeys.sort()).toEqual([blobKey(sha('orphan')), blobKey(orphanJob)].sort());
    const plan = await planGc(store, { now: later, olderThanMs: 3_600_000, activeRuns: new Set(['active']), activeDigests: new Set() });
    expect(plan.runKeys.sort()).toEqual(['runs/kept/run.json', 'runs/old/run.json']);
    await applyGc(store, plan);
    // The running run and the sweep cell still materialize; the dropped ones do not.
    await materializeBundle(store, active.digest, join(await temp(), 'm1'));
    await materializeBundle(store, cell.digest, join(await temp(), 'm2'));
    await expect(materializeBundle(store, old.digest, join(await temp(), 'm3'))).rejects.toThrow(/not there/);
    // Fresh objects (a submit in flight) are never dropped.
    const fresh = await planGc(store, { now: Date.now(), olderThanMs: 0, activeRuns: new Set(), activeDigests: new Set() });
    expect(fresh.blobKeys.length + fresh.bundleKeys.length).toBe(0);
  });
});
