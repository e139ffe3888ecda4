/**
 * Figures 7-9: the content-addressed store (src/store) against the same AWS SDK used raw, side by
 * side in one run, on a real S3-protocol server (moto in server mode, `startS3Server()` from
 * test/helpers/s3.ts) on loopback.
 *
 * Figure 7, submit: `pushBundle` of a frozen bundle with one incompressible input (512 MiB; it is
 * hashed, then uploaded in 16 MiB parts, 4 at a time) against a plain `@aws-sdk/lib-storage` Upload
 * of the same file with the same part size and queue size into another bucket. Each rep goes into a
 * fresh prefix (blobs are content-addressed: a second push into the same prefix would send nothing);
 * reps alternate who goes first; medians.
 *
 * Figure 8, resubmit: `pushBundle` of the same bundle again into the same prefix: the bytes it moves.
 *
 * Figure 9, collection into the store: 1 GiB of mixed artifacts (3 x 256 MiB checkpoints + 8192 small
 * files, bench/collect.ts's data set) collected from an sshd host into a local folder, then
 * `publishArtifacts` to S3 (what the worker's collect activity does: collectRun -> publishFinal),
 * against the same collection into the local folder only (what collection cost before the store).
 * Then experiments on the collected folder: hashing alone, publishing to a file:// store, and the raw
 * SDK putting the same files (no HEAD first, no hashing): the bound the protocol and the server set.
 *
 * moto is a Python server (one GIL: at most one core however many requests are in flight), so its
 * CPU is sampled from /proc beside each figure; when it is near one core the figure measures moto.
 *
 *   npx tsx bench/store.ts [--tiny] [--reps 3] [--input-mib 512] [--big-mib 256] [--small-count 8192] [--small-kib 32] [--no-experiments] [--no-submit] [--no-collect]
 */
import { DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Bundle, sha256File, walkFiles } from '../src/bundle';
import { FROZEN_PARTS } from '../src/common/layout';
import type { CollectResult } from '../src/hosts/shell-host';
import { describeTree, eachLimit, publishArtifacts, pushBundle, type Transfer } from '../src/store/cas';
import { FileStore } from '../src/store/file';
import { s3StoreFrom } from '../src/store/s3';
import type { BundleStore } from '../src/store/store';
import { jobSpec, scriptBundle, tempDir } from '../test/helpers/bundles';
import { startS3Server, type S3Server } from '../test/helpers/s3';
import { startSshd, type SshdServer } from '../test/helpers/sshd';
import { line, machine, median, mib, mibps, orbitHost, parseArgs, run, runMain, s, verdict, writeRandomFile } from './lib';

const B = 'store';
const MiB = 1024 * 1024;
const BUCKET = 'orbit-bench';
const RAW_BUCKET = 'orbit-bench-raw';
/** What src/store/s3.ts uses for multipart uploads. */
const PART_SIZE = 16 * MiB;
const QUEUE_SIZE = 4;
/**
 * moto busier than this share of one core during a figure: the figure is moto's, not the protocol's.
 * Its threads share one GIL; here it tops out at 75-80% of a core (more requests in flight do not raise its rate).
 */
const MOTO_BOUND = 0.7;

const load = () => `load average ${loadavg().map((x) => x.toFixed(2)).join(', ')}`;

// ------------------------------------------------------------------ moto's process

/** The moto_server process listening on `port` (it runs in a process group of its own). */
function motoPid(port: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv.some((a) => a.endsWith('moto_server')) && argv.includes(String(port))) return Number(entry);
    } catch {
      /* gone */
    }
  }
  return undefined;
}

/** User + system CPU seconds of a process (clock ticks of 10 ms). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

function rssKb(pid: number | undefined, field = 'VmRSS'): number {
  if (pid === undefined) return NaN;
  try {
    return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

interface Measured {
  ms: number;
  /** CPU seconds of this process (user + system). */
  cpu: number;
  motoCpu: number;
  motoPeakRssKb: number;
}

/** Wall time, this process's CPU, moto's CPU and moto's peak RSS (sampled every 100 ms) of `fn`. */
async function measure<T>(moto: number | undefined, fn: () => Promise<T>): Promise<Measured & { value: T }> {
  const c0 = process.cpuUsage();
  const m0 = cpuSeconds(moto);
  let peak = rssKb(moto);
  const timer = setInterval(() => (peak = Math.max(peak, rssKb(moto))), 100);
  const t0 = performance.now();
  try {
    const value = await fn();
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    return { value, ms, cpu: (c.user + c.system) / 1e6, motoCpu: cpuSeconds(moto) - m0, motoPeakRssKb: Math.max(peak, rssKb(moto)) };
  } finally {
    clearInterval(timer);
  }
}

const cpuText = (m: Measured) =>
  `this process ${m.cpu.toFixed(2)} cpu-s, moto ${m.motoCpu.toFixed(2)} cpu-s (${((100 * m.motoCpu) / (m.ms / 1000)).toFixed(0)}% of one core), moto RSS peak ${(m.motoPeakRssKb / 1024).toFixed(0)} MiB`;
const motoShare = (ms: Measured[]) => ms.reduce((a, m) => a + m.motoCpu, 0) / (ms.reduce((a, m) => a + m.ms, 0) / 1000);

// ------------------------------------------------------------------ the raw SDK

/** An S3 client set up as src/store/s3.ts sets up its own (checksums only when required, same timeouts). */
function rawClient(server: S3Server): S3Client {
  return new S3Client({
    region: server.env.AWS_REGION,
    endpoint: server.endpoint,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
    requestHandler: new NodeHttpHandler({ connectionTimeout: 3000, socketTimeout: 60_000 }),
  });
}

async function rawUploadFile(client: S3Client, key: string, path: string, size: number): Promise<void> {
  if (size < PART_SIZE) {
    await client.send(new PutObjectCommand({ Bucket: RAW_BUCKET, Key: key, Body: await readFile(path) }));
    return;
  }
  await new Upload({ client, params: { Bucket: RAW_BUCKET, Key: key, Body: createReadStream(path) }, partSize: PART_SIZE, queueSize: QUEUE_SIZE }).done();
}

async function rawDelete(client: S3Client, keys: string[]): Promise<void> {
  await eachLimit(keys, 8, async (Key) => void (await client.send(new DeleteObjectCommand({ Bucket: RAW_BUCKET, Key }))));
}

/** Empties a store (frees moto's memory between reps). */
async function emptyStore(store: BundleStore): Promise<void> {
  const keys: string[] = [];
  for await (const o of store.list('')) keys.push(o.key);
  await store.delete(keys);
}

async function sha256Reads(path: string, highWaterMark: number): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const settle = async (dir?: string) => {
  if (dir) await rm(dir, { recursive: true, force: true });
  await run('sync', []);
};

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const args = parseArgs();
  const reps = args.num('reps', args.tiny ? 1 : 3);
  const inputBytes = args.num('input-mib', args.tiny ? 17 : 512) * MiB;
  const big = { count: 3, size: args.num('big-mib', args.tiny ? 1 : 256) * MiB };
  const small = { count: args.num('small-count', args.tiny ? 100 : 8192), mean: args.num('small-kib', args.tiny ? 4 : 32) * 1024 };
  const experiments = !args.flag('no-experiments');
  line(B, `machine: ${await machine()}`);
  line(B, `${load()} (start)`);

  const tmp = await tempDir('orbit-bench-store-');
  const server = await startS3Server();
  // The SDK's credential chain reads process.env itself; s3StoreFrom takes the endpoint from `env`.
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: server.env.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: server.env.AWS_SECRET_ACCESS_KEY, AWS_REGION: server.env.AWS_REGION });
  const moto = motoPid(Number(new URL(server.endpoint).port));
  const raw = rawClient(server);
  const s3 = (prefix: string) => s3StoreFrom(`s3://${BUCKET}/${prefix}`, server.env);
  let sshd: SshdServer | undefined;
  try {
    await server.createBucket(BUCKET);
    await server.createBucket(RAW_BUCKET);
    line(B, `moto_server pid ${moto ?? '?'} on ${server.endpoint}, RSS ${(rssKb(moto) / 1024).toFixed(0)} MiB at start`);

    if (!args.flag('no-submit')) await submitFigures(reps, inputBytes, experiments, tmp.dir, moto, raw, s3);
    if (!args.flag('no-collect')) {
      sshd = await startSshd({ name: 'bench-store' });
      await collectFigure(sshd, reps, big, small, experiments, tmp.dir, moto, raw, s3);
    }
    line(B, `moto RSS ${(rssKb(moto) / 1024).toFixed(0)} MiB at the end, peak (VmHWM) ${(rssKb(moto, 'VmHWM') / 1024).toFixed(0)} MiB; moto ${cpuSeconds(moto).toFixed(1)} cpu-s in all`);
    line(B, `${load()} (end)`);
  } finally {
    raw.destroy();
    await sshd?.stop();
    await server.stop();
    await tmp.cleanup();
  }
}

type StoreAt = (prefix: string) => BundleStore;

/** Figures 7 and 8: submit, then resubmit, of a bundle with one large input. */
async function submitFigures(reps: number, inputBytes: number, experiments: boolean, tmpDir: string, moto: number | undefined, raw: S3Client, s3: StoreAt): Promise<void> {
  const bundleDir = join(tmpDir, 'bundle');
  const bundle = await Bundle.create(bundleDir, jobSpec({ jobId: 'bench-store' }));
  await bundle.writeScript('job.sh', '#!/usr/bin/env bash\nset -eu\ntrue\n', true);
  const input = bundle.path('inputs/data.bin');
  await writeRandomFile(input, inputBytes, Buffer.alloc(8 * MiB)); // setup, untimed
  const digest = await bundle.freeze();
  const bundleBytes = (await describeTree(bundleDir, FROZEN_PARTS)).reduce((a, f) => a + f.size, 0);
  line(B, `submit: bundle with one random input of ${mib(inputBytes)} (${mib(bundleBytes)} in all); multipart ${PART_SIZE / MiB} MiB parts, ${QUEUE_SIZE} at once, both sides; reps ${reps}`);
  await settle();

  const ours: Measured[] = [];
  const base: Measured[] = [];
  const again: (Measured & { value: Transfer })[] = [];
  for (let i = 0; i < reps; i++) {
    const order = i % 2 === 0 ? (['raw', 'orbit'] as const) : (['orbit', 'raw'] as const);
    for (const who of order) {
      const before = load();
      if (who === 'raw') {
        const key = `submit-${i}/data.bin`;
        const m = await measure(moto, () => rawUploadFile(raw, key, input, inputBytes));
        base.push(m);
        line(B, `rep ${i + 1} submit: raw Upload ${s(m.ms)} = ${mibps(inputBytes, m.ms)}; ${cpuText(m)}; ${before}`);
        await rawDelete(raw, [key]);
      } else {
        const store = s3(`submit-${i}`);
        const m = await measure(moto, () => pushBundle(store, bundleDir, digest));
        if (m.value.movedBytes !== m.value.bytes) throw new Error(`first push moved ${m.value.movedBytes} of ${m.value.bytes} bytes`);
        ours.push(m);
        line(B, `rep ${i + 1} submit: orbit pushBundle ${s(m.ms)} = ${mibps(bundleBytes, m.ms)} (${m.value.movedFiles} files); ${cpuText(m)}; ${before}`);
        const r = await measure(moto, () => pushBundle(store, bundleDir, digest));
        again.push(r);
        line(B, `rep ${i + 1} resubmit: orbit pushBundle again ${s(r.ms)}, moved ${r.value.movedBytes} of ${r.value.bytes} bytes (${r.value.movedFiles} files); ${load()}`);
        await emptyStore(store);
      }
    }
  }
  const oursMs = median(ours.map((m) => m.ms));
  const baseMs = median(base.map((m) => m.ms));
  line(
    B,
    `submit ${mib(inputBytes)} input to S3 (median of ${reps}): raw Upload ${s(baseMs)} = ${mibps(inputBytes, baseMs)}, orbit pushBundle ${s(oursMs)} = ${mibps(bundleBytes, oursMs)}; ` +
      `ratio raw/orbit ${(baseMs / oursMs).toFixed(3)} (target >= 0.9) ${verdict(baseMs / oursMs >= 0.9)}; ${load()}`,
  );
  if (reps > 1) line(B, `  per rep (raw time / orbit time, same rep): ${base.map((b, i) => (b.ms / ours[i]!.ms).toFixed(2)).join(', ')}`);
  line(B, `  cpu, median: orbit ${median(ours.map((m) => m.cpu)).toFixed(2)} cpu-s, raw ${median(base.map((m) => m.cpu)).toFixed(2)} cpu-s in this process; moto ${median(ours.map((m) => m.motoCpu)).toFixed(2)} / ${median(base.map((m) => m.motoCpu)).toFixed(2)} cpu-s`);
  const submitShare = motoShare([...ours, ...base]);
  line(B, `  moto busy ${(100 * submitShare).toFixed(0)}% of one core during the uploads${submitShare >= MOTO_BOUND ? ': moto (one Python process) is the bottleneck; the times are moto\'s, not the S3 protocol\'s' : ''}`);
  // The worst rep: the most bytes a resubmit moved.
  const worst = again.reduce((a, b) => (b.value.movedBytes / b.value.bytes > a.value.movedBytes / a.value.bytes ? b : a));
  const againShare = worst.value.movedBytes / worst.value.bytes;
  line(
    B,
    `resubmit the same bundle: moved ${worst.value.movedBytes} of ${worst.value.bytes} bytes = ${(100 * againShare).toFixed(3)}% (worst of ${reps}; target < 1%) ${verdict(againShare < 0.01)}; ` +
      `${s(median(again.map((m) => m.ms)))} median (rehashing ${mib(bundleBytes)}, a HEAD per file, the manifest); ${load()}`,
  );
  if (experiments) {
    // The same submit into a file:// store on this disk, against a plain copy of the input.
    const dir = join(tmpDir, 'file-store');
    const f = await measure(undefined, () => pushBundle(new FileStore(dir), bundleDir, digest));
    await settle(dir);
    await mkdir(dir);
    const c = await measure(undefined, () => copyFile(input, join(dir, 'copy')));
    await settle(dir);
    const h = await measure(undefined, () => describeTree(bundleDir, FROZEN_PARTS));
    line(B, `reference: pushBundle to a file:// store ${s(f.ms)} (${f.cpu.toFixed(2)} cpu-s), plain copyFile of the input ${s(c.ms)}; hashing the bundle alone ${s(h.ms)} = ${mibps(bundleBytes, h.ms)}`);
    // sha256File (src/bundle/hash.ts) reads in createReadStream's default 64 KiB chunks; the same hash in 1 MiB reads, twice each, alternating.
    const small64: number[] = [];
    const big1m: number[] = [];
    for (let i = 0; i < 2; i++) {
      small64.push((await measure(undefined, () => sha256File(input))).ms);
      big1m.push((await measure(undefined, () => sha256Reads(input, MiB))).ms);
    }
    line(B, `experiment: sha256 of the ${mib(inputBytes)} input: sha256File (64 KiB reads) ${mibps(inputBytes, median(small64))}, the same with 1 MiB reads ${mibps(inputBytes, median(big1m))} (median of 2)`);
  }
  await rm(bundleDir, { recursive: true, force: true });
}

/** Figure 9: collection into a local folder, with and without publishing it to the store. */
async function collectFigure(
  sshd: SshdServer,
  reps: number,
  big: { count: number; size: number },
  small: { count: number; mean: number },
  experiments: boolean,
  tmpDir: string,
  moto: number | undefined,
  raw: S3Client,
  s3: StoreAt,
): Promise<void> {
  const d = await makeRun(sshd, tmpDir, big, small);
  line(B, `collect: ${big.count} checkpoints of ${mib(big.size)} + ${small.count} small files of ${small.mean / 1024} KiB on average in 64 folders = ${d.files} files, ${mib(d.bytes)}; reps ${reps}`);
  let n = 0;
  const fresh = async () => {
    const dir = join(tmpDir, `dest-${++n}`);
    await mkdir(dir);
    return dir;
  };
  const collect = async (dest: string) => {
    const h = orbitHost(sshd);
    try {
      check(await h.collect(d.id, dest));
    } finally {
      await h.transport.close();
    }
  };
  await settle();
  const local: Measured[] = [];
  const stored: { all: Measured; collect: Measured; publish: Measured & { value: Transfer } }[] = [];
  for (let i = 0; i < reps; i++) {
    const order = i % 2 === 0 ? (['local', 'store'] as const) : (['store', 'local'] as const);
    for (const who of order) {
      const before = load();
      const dest = await fresh();
      if (who === 'local') {
        const m = await measure(moto, () => collect(dest));
        local.push(m);
        line(B, `rep ${i + 1} collect: into a local folder ${s(m.ms)} = ${mibps(d.bytes, m.ms)}; this process ${m.cpu.toFixed(2)} cpu-s; ${before}`);
      } else {
        const store = s3(`collect-${i}`);
        let c: Measured | undefined;
        let p: (Measured & { value: Transfer }) | undefined;
        const all = await measure(moto, async () => {
          c = await measure(moto, () => collect(dest));
          p = await measure(moto, () => publishArtifacts(store, `run-${i}`, dest));
        });
        stored.push({ all, collect: c!, publish: p! });
        line(
          B,
          `rep ${i + 1} collect: into a local folder + publishArtifacts to S3 ${s(all.ms)} = ${mibps(d.bytes, all.ms)} (collect ${s(c!.ms)}, publish ${s(p!.ms)}: ${p!.value.movedFiles} objects, ${mib(p!.value.movedBytes)}, ~${((2 * p!.value.movedFiles) / (p!.ms / 1000)).toFixed(0)} requests/s, a HEAD and a PUT each); ` +
            `${cpuText(all)}; during publish moto ${((100 * p!.motoCpu) / (p!.ms / 1000)).toFixed(0)}% of one core; ${before}`,
        );
        await emptyStore(store);
      }
      await settle(dest);
    }
  }
  const localMs = median(local.map((m) => m.ms));
  const storeMs = median(stored.map((x) => x.all.ms));
  const publishMs = median(stored.map((x) => x.publish.ms));
  line(
    B,
    `collect ${mib(d.bytes)} mixed (median of ${reps}): local folder ${s(localMs)} = ${mibps(d.bytes, localMs)}, local folder + S3 ${s(storeMs)} = ${mibps(d.bytes, storeMs)} (publish ${s(publishMs)} of it); ` +
      `ratio local/(local + S3) ${(localMs / storeMs).toFixed(3)} (target >= 0.8) ${verdict(localMs / storeMs >= 0.8)}; ${load()}`,
  );
  if (reps > 1) line(B, `  per rep (local time / local + S3 time, same rep): ${local.map((l, i) => (l.ms / stored[i]!.all.ms).toFixed(2)).join(', ')}`);
  line(B, `  cpu, median: local + S3 ${median(stored.map((x) => x.all.cpu)).toFixed(2)} cpu-s (publish ${median(stored.map((x) => x.publish.cpu)).toFixed(2)}), local ${median(local.map((m) => m.cpu)).toFixed(2)} cpu-s in this process; moto ${median(stored.map((x) => x.all.motoCpu)).toFixed(2)} cpu-s, RSS peak ${(Math.max(...stored.map((x) => x.all.motoPeakRssKb)) / 1024).toFixed(0)} MiB`);
  const publishShare = motoShare(stored.map((x) => x.publish));
  line(
    B,
    `  moto busy ${(100 * publishShare).toFixed(0)}% of one core during publishArtifacts` +
      (publishShare >= MOTO_BOUND ? ': moto (one Python process) is the bottleneck; the publish time is moto\'s, not the S3 protocol\'s (see the file:// and raw SDK lines)' : ''),
  );

  if (experiments) {
    const dest = await fresh();
    await collect(dest);
    const files = [...(await walkFiles(dest, 'artifacts')), ...(await walkFiles(dest, 'runtime'))].filter((f) => f.path !== 'runtime/frozen.json');
    const bytes = files.reduce((a, f) => a + f.size, 0);
    await run('sync', []);
    const h = await measure(undefined, () => describeTree(dest, ['runtime', 'artifacts']));
    line(B, `experiment: hashing the collected folder alone (describeTree, what publishArtifacts does first): ${s(h.ms)} = ${mibps(bytes, h.ms)}, ${h.cpu.toFixed(2)} cpu-s`);
    const storeDir = join(tmpDir, 'file-store');
    const f = await measure(undefined, () => publishArtifacts(new FileStore(storeDir), 'run-file', dest));
    line(B, `experiment: publishArtifacts to a file:// store on this disk: ${s(f.ms)} = ${mibps(bytes, f.ms)}, ${f.cpu.toFixed(2)} cpu-s; collect + that, against the local median: ratio ${(localMs / (localMs + f.ms)).toFixed(3)}`);
    await settle(storeDir);
    const keys = files.map((x) => `raw/${x.path}`);
    const r = await measure(moto, () => eachLimit(files, 8, (x) => rawUploadFile(raw, `raw/${x.path}`, join(dest, x.path), x.size)));
    line(
      B,
      `experiment: raw SDK puts of the same ${files.length} files to S3 (8 at a time, no hashing, no HEAD first): ${s(r.ms)} = ${mibps(bytes, r.ms)}, ~${(files.length / (r.ms / 1000)).toFixed(0)} requests/s; ${cpuText(r)} ` +
          `(publishArtifacts median ${s(publishMs)}: ratio raw/publish ${(r.ms / publishMs).toFixed(3)}; collect + raw puts against the local median: ratio ${(localMs / (localMs + r.ms)).toFixed(3)})`,
    );
    await rawDelete(raw, keys);
    const store = s3('collect-again');
    await publishArtifacts(store, 'run-again', dest);
    const a = await measure(moto, () => publishArtifacts(store, 'run-again', dest));
    line(B, `experiment: publishArtifacts again, nothing new (no hash cache): ${s(a.ms)}, moved ${a.value.movedFiles} objects; ${cpuText(a)}`);
    await emptyStore(store);
    await settle(dest);
  }
}

function check(r: CollectResult): void {
  if (!r.manifest.verified || r.refused.length) throw new Error(`orbit collect not verified: ${JSON.stringify(r.manifest.problems.slice(0, 3))} ${JSON.stringify(r.refused.slice(0, 3))}`);
}

/**
 * bench/collect.ts's `mixed` run folder: a staged bundle on the sshd whose artifacts/ get the
 * checkpoints and the small files written straight in (the "remote" disk is this machine's), its
 * manifest and a finished run's runtime/.
 */
async function makeRun(sshd: SshdServer, tmpDir: string, big: { count: number; size: number }, small: { count: number; mean: number }) {
  const id = 'mixed';
  const template = join(tmpDir, 'template');
  await scriptBundle(template, 'true');
  const host = orbitHost(sshd);
  await host.stage(id, template);
  await host.transport.close();
  const root = join(sshd.workRoot, id);
  const entries: { path: string; size: number; sha256: string }[] = [];
  const buf = Buffer.alloc(8 * MiB);
  for (let i = 0; i < big.count; i++) {
    const path = `checkpoints/step-${(i + 1) * 1000}/model.pt`;
    const sha256 = await writeRandomFile(join(root, 'artifacts', path), big.size, buf);
    entries.push({ path, size: big.size, sha256 });
  }
  const jitter = small.mean - 1024;
  for (let i = 0; i < small.count; i++) {
    const d = Math.floor(((((i >> 1) * 2654435761) % 4294967296) / 4294967296) * jitter);
    const size = i % 2 === 0 ? small.mean + d : small.mean - d;
    const path = `samples/shard-${String(i % 64).padStart(2, '0')}/sample-${String(i).padStart(5, '0')}.bin`;
    if (i < 64) await mkdir(join(root, 'artifacts', path, '..'), { recursive: true });
    randomFillSync(buf, 0, size);
    const data = buf.subarray(0, size);
    await writeFile(join(root, 'artifacts', path), data);
    entries.push({ path, size, sha256: createHash('sha256').update(data).digest('hex') });
  }
  const log = 'step 1000 loss 2.1\nstep 2000 loss 1.7\nstep 3000 loss 1.5\n';
  await writeFile(join(root, 'artifacts/job.log'), log);
  await writeFile(join(root, 'runtime/runtime.log'), '2026-11-25T10:00:00.000Z staged\n2026-11-25T10:00:01.000Z done\n');
  await writeFile(join(root, 'runtime/exit_code'), '0\n');
  const files = [...entries, { path: 'job.log', size: log.length, sha256: createHash('sha256').update(log).digest('hex') }];
  await writeFile(join(root, 'artifacts/manifest.json'), JSON.stringify({ schemaVersion: 'orbit.manifest.v1', createdAt: new Date().toISOString(), files }, null, 1) + '\n');
  const listed = [...(await walkFiles(root, 'artifacts')), ...(await walkFiles(root, 'runtime'))].filter((f) => f.path !== 'runtime/frozen.json');
  return { id, files: listed.length, bytes: listed.reduce((a, f) => a + f.size, 0) };
}

runMain(main);
