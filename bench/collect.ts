/**
 * Figure 2, collection throughput: 1 GiB of artifacts (three 256 MiB checkpoints and 8192 small
 * files averaging 32 KiB, plus a manifest) collected from a real sshd by Orbit (ShellHost.collect
 * over SshTransport, as the collect activity calls it: the small files in one tar stream, the
 * large ones over SFTP 4 at a time, all verified against the manifest) and by `rsync -a` over the same sshd. Also the checkpoints alone and the small files alone,
 * and experiments that take the collection apart (more parallel SFTP transfers, no tar stream, the
 * transport alone, `ssh tar | tar`).
 *
 * Also for figure 2, in the same run: local CPU seconds per GiB of the mixed collection (Orbit's node
 * process with all its threads, from process.cpuUsage(); rsync's receiver and its ssh client, from
 * /usr/bin/time, i.e. the rusage of the children it waited for; the sshd side is remote and left out
 * for both), and the throughput of both while a CPU burner (`sh -c 'while :; do :; done'`) holds one core.
 *
 * Figure 3, resume cost: the same collection cut at about 50% by killing the sshd, then run again
 * after it restarts; the bytes that crossed the wire (counted by a TCP relay in front of sshd, SSH
 * framing included) against one uninterrupted collection. rsync --partial side by side.
 *
 *   npx tsx bench/collect.ts [--tiny] [--reps 4] [--no-breakdown] [--big-mib 256] [--small-count 8192] [--small-kib 32] [--no-burner] [--no-resume]
 */
import { createHash, randomFillSync } from 'node:crypto';
import { spawn } from 'node:child_process';
import { link, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { walkFiles } from '../src/bundle';
import { ShellHost, type CollectResult } from '../src/hosts/shell-host';
import { SshTransport } from '../src/hosts/ssh';
import { scriptBundle, tempDir } from '../test/helpers/bundles';
import { startSshd, type SshdServer } from '../test/helpers/sshd';
import { countingProxy, line, machine, median, mib, mibps, orbitHost, parseArgs, run, runMain, sleep, sshOptions, target, transportOptions, verdict, writeRandomFile } from './lib';

const B = 'collect';
const MiB = 1024 * 1024;

interface Dataset {
  id: string;
  files: number;
  bytes: number;
}

async function main(): Promise<void> {
  const args = parseArgs();
  const reps = args.num('reps', args.tiny ? 1 : 4);
  const breakdown = !args.flag('no-breakdown') && !args.tiny;
  const big = { count: 3, size: args.num('big-mib', args.tiny ? 1 : 256) * MiB };
  const small = { count: args.num('small-count', args.tiny ? 300 : 8192), mean: args.num('small-kib', args.tiny ? 4 : 32) * 1024 };
  line(B, `machine: ${await machine()}`);
  line(B, `data: ${big.count} checkpoints of ${mib(big.size)} + ${small.count} small files of ${small.mean / 1024} KiB on average (1-${(2 * small.mean) / 1024 - 1} KiB) in 64 folders = ${mib(big.count * big.size + small.count * small.mean)}; reps ${reps}`);

  const tmp = await tempDir('orbit-bench-collect-');
  const sshd = await startSshd({ name: 'bench-collect' });
  try {
    const datasets = await makeDatasets(sshd, tmp.dir, big, small);
    let n = 0;
    const fresh = async () => {
      const dir = join(tmp.dir, `dest-${++n}`);
      await mkdir(dir);
      return dir;
    };
    const settle = async (dir?: string) => {
      if (dir) await rm(dir, { recursive: true, force: true });
      await run('sync', []);
    };

    /** rsync under /usr/bin/time: its CPU is that of the children it waited for (the receiver, the generator, the ssh client). */
    const rsync = async (d: Dataset, extra: string[] = [], rsh = ['ssh', ...sshOptions(sshd), '-p', String(sshd.port)].join(' ')) => {
      const dest = await fresh();
      const remote = `${sshd.workRoot}/${d.id}`;
      const r = await run('/usr/bin/time', ['-f', 'rusage %U %S', 'rsync', '-a', ...extra, '-e', rsh, `${target(sshd)}:${remote}/artifacts`, `${target(sshd)}:${remote}/runtime`, `${dest}/`]);
      const [user = NaN, sys = NaN] = (/^rusage (\S+) (\S+)$/m.exec(r.stderr) ?? []).slice(1).map(Number);
      return { ms: r.ms, dest, cpuS: user + sys };
    };
    /** Orbit's CPU: this process (the collection with its writer thread and libuv's pool; nothing else runs meanwhile). */
    const orbit = async (d: Dataset, host?: ShellHost) => {
      const dest = await fresh();
      const h = host ?? orbitHost(sshd);
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const r = await h.collect(d.id, dest);
      const ms = performance.now() - t0;
      const c = process.cpuUsage(c0);
      if (!host) await h.transport.close();
      check(r, d);
      return { ms, dest, cpuS: (c.user + c.system) / 1e6 };
    };

    // ---------------------------------------------------------------- figure 2
    const variants = breakdown ? datasets : datasets.slice(0, 1);
    const results = new Map<string, { rsync: number[]; orbit: number[] }>(variants.map((d) => [d.id, { rsync: [], orbit: [] }]));
    const cpu = new Map<string, { rsync: number[]; orbit: number[] }>(variants.map((d) => [d.id, { rsync: [], orbit: [] }]));
    await settle();
    for (let i = 0; i < reps; i++) {
      for (const d of variants) {
        // Alternate who goes first, so neither always finds the other's dirty pages being written back.
        const order = i % 2 === 0 ? (['rsync', 'orbit'] as const) : (['orbit', 'rsync'] as const);
        for (const who of order) {
          const r = who === 'rsync' ? await rsync(d) : await orbit(d);
          results.get(d.id)![who].push(r.ms);
          cpu.get(d.id)![who].push(r.cpuS);
          line(B, `rep ${i + 1} ${d.id}: ${who} ${(r.ms / 1000).toFixed(3)} s = ${mibps(d.bytes, r.ms)}, local cpu ${r.cpuS.toFixed(2)} s`);
          await settle(r.dest);
        }
      }
    }
    for (const d of variants) {
      const r = results.get(d.id)!;
      const rs = median(r.rsync);
      const os = median(r.orbit);
      const what = d.id === 'mixed' ? 'mixed' : d.id === 'big' ? 'checkpoints only' : 'small files only';
      line(
        B,
        `throughput ${what} (${d.files} files, ${mib(d.bytes)}): rsync -a ${mibps(d.bytes, rs)}, orbit ${mibps(d.bytes, os)}; ratio orbit/rsync ${(rs / os).toFixed(3)}` +
          (d.id === 'mixed' ? ` (target >= 1.0) ${verdict(rs / os >= 1)}` : ''),
      );
      if (reps > 1) line(B, `  per rep (rsync time / orbit time, same rep): ${r.rsync.map((x, i) => (x / r.orbit[i]!).toFixed(2)).join(', ')}`);
    }
    for (const d of variants) {
      const c = cpu.get(d.id)!;
      const gib = d.bytes / 2 ** 30;
      const rs = median(c.rsync) / gib;
      const os = median(c.orbit) / gib;
      line(
        B,
        `cpu per GiB ${d.id} (local only: orbit = its node process with its threads, rsync = its receiver + ssh client by /usr/bin/time; the sshd side is remote, excluded for both; median of ${reps}): ` +
          `rsync -a ${rs.toFixed(2)} s, orbit ${os.toFixed(2)} s; ratio orbit/rsync ${(os / rs).toFixed(3)}` + (d.id === 'mixed' ? ` (goal <= 1.0) ${verdict(os <= rs)}` : ''),
      );
      if (reps > 1) line(B, `  per rep (orbit cpu / rsync cpu, same rep): ${c.orbit.map((x, i) => (x / c.rsync[i]!).toFixed(2)).join(', ')}`);
    }

    // ---------------------------------------------------------------- figure 2 on a busy machine: one core held by a burner
    if (!args.flag('no-burner')) {
      const d = datasets[0]!;
      const burner = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
      const busy = { rsync: [] as number[], orbit: [] as number[] };
      try {
        await sleep(200);
        const burnReps = args.tiny ? 1 : Math.max(2, Math.ceil(reps / 2));
        for (let i = 0; i < burnReps; i++) {
          for (const who of i % 2 === 0 ? (['rsync', 'orbit'] as const) : (['orbit', 'rsync'] as const)) {
            const r = who === 'rsync' ? await rsync(d) : await orbit(d);
            busy[who].push(r.ms);
            line(B, `burner rep ${i + 1} ${d.id}: ${who} ${(r.ms / 1000).toFixed(3)} s = ${mibps(d.bytes, r.ms)}, local cpu ${r.cpuS.toFixed(2)} s`);
            await settle(r.dest);
          }
        }
      } finally {
        burner.kill('SIGKILL');
      }
      const rs = median(busy.rsync);
      const os = median(busy.orbit);
      line(B, `throughput mixed with a CPU burner holding one core: rsync -a ${mibps(d.bytes, rs)}, orbit ${mibps(d.bytes, os)}; ratio orbit/rsync ${(rs / os).toFixed(3)} (goal >= 1.0) ${verdict(rs / os >= 1)}`);
    }

    // ---------------------------------------------------------------- what bounds figure 2
    if (!args.tiny && !args.flag('no-experiments')) {
      const mixed = datasets[0]!;
      const smallSet = datasets.find((x) => x.id === 'small') ?? mixed;
      for (const [what, opts] of [
        ['concurrency 16', { concurrency: 16 }],
        ['every file over SFTP (streamBelowBytes 0, no tar stream)', { streamBelowBytes: 0 }],
      ] as const) {
        for (const d of [mixed, smallSet]) {
          const dest = await fresh();
          const h = orbitHost(sshd);
          const t0 = performance.now();
          check(await h.collect(d.id, dest, opts), d);
          const ms = performance.now() - t0;
          await h.transport.close();
          line(B, `experiment: orbit collect, ${what}, ${d.id}: ${mibps(d.bytes, ms)} (rsync ${mibps(d.bytes, median(results.get(d.id)?.rsync ?? [NaN]))})`);
          await settle(dest);
        }
      }
      // The transport alone on the checkpoints: SshTransport.download, 3 files at once, no hashing, no renames.
      {
        const dest = await fresh();
        const h = orbitHost(sshd);
        await h.transport.exec('true');
        const bigFiles = (await walkFiles(join(sshd.workRoot, 'big'), 'artifacts/checkpoints')).filter((f) => f.size > MiB / 2);
        const bytes = bigFiles.reduce((a, f) => a + f.size, 0);
        const t0 = performance.now();
        await Promise.all(bigFiles.map((f, i) => h.transport.download(`${sshd.workRoot}/big/${f.path}`, join(dest, `f${i}`), 0, f.size)));
        const ms = performance.now() - t0;
        await h.transport.close();
        line(B, `experiment: SshTransport.download alone, ${bigFiles.length} checkpoints at once: ${mibps(bytes, ms)}`);
        await settle(dest);
      }
      // One stream for many small files: the raw tools' way (tar over one ssh exec), the bound of batching.
      {
        const dest = await fresh();
        const remote = `${sshd.workRoot}/small`;
        const t0 = performance.now();
        await run('bash', ['-c', `ssh ${sshOptions(sshd).map((o) => `'${o}'`).join(' ')} -p ${sshd.port} ${target(sshd)} 'tar -C ${remote} -cf - artifacts runtime' | tar -C ${dest} -xf -`]);
        const ms = performance.now() - t0;
        line(B, `experiment: ssh tar | tar of the small files: ${mibps(smallSet.bytes, ms)}`);
        await settle(dest);
      }
    }

    // ---------------------------------------------------------------- figure 3
    if (args.flag('no-resume')) return;
    const d = datasets[0]!;
    const proxy = await countingProxy(sshd.port);
    try {
      const via = new ShellHost({ name: sshd.name, workRoot: sshd.workRoot, transport: new SshTransport(transportOptions(sshd, { port: proxy.port, readyTimeoutMs: 5000 })) });
      const rshVia = ['ssh', ...sshOptions(sshd), '-o', `HostKeyAlias=[127.0.0.1]:${sshd.port}`, '-p', String(proxy.port)].join(' ');

      /** One uninterrupted collection, then one cut at `fraction` of its wire bytes by killing sshd, then the rest. */
      const cutAndResume = async (who: 'orbit' | 'rsync') => {
        proxy.reset();
        const full = who === 'orbit' ? await orbit(d, via) : await rsync(d, ['--partial'], rshVia);
        const fullWire = proxy.counts.down;
        await via.transport.close();
        await settle(full.dest);

        proxy.reset();
        const dest = await fresh();
        const remote = `${sshd.workRoot}/${d.id}`;
        const first =
          who === 'orbit'
            ? via.collect(d.id, dest)
            : run('rsync', ['-a', '--partial', '-e', rshVia, `${target(sshd)}:${remote}/artifacts`, `${target(sshd)}:${remote}/runtime`, `${dest}/`], { allowFail: true });
        let failed = false;
        const outcome = first.then(
          () => undefined,
          () => (failed = true),
        );
        while (proxy.counts.down < fullWire / 2) {
          if (await Promise.race([outcome.then(() => true), sleep(2).then(() => false)])) throw new Error(`${who} finished before the cut`);
        }
        await sshd.kill();
        const cutWire = proxy.counts.down;
        const result = await first.catch((e: Error) => e);
        if (who === 'rsync' && (result as { code?: number }).code === 0) throw new Error('rsync was not cut');
        if (who === 'orbit' && !failed) throw new Error('orbit collect was not cut');
        const kept = (await walkFiles(dest)).reduce((a, f) => a + f.size, 0);
        await sleep(500);
        await sshd.start();

        proxy.reset();
        const t0 = performance.now();
        if (who === 'orbit') check(await via.collect(d.id, dest), d);
        else await run('rsync', ['-a', '--partial', '-e', rshVia, `${target(sshd)}:${remote}/artifacts`, `${target(sshd)}:${remote}/runtime`, `${dest}/`]);
        const resumeMs = performance.now() - t0;
        const resumeWire = proxy.counts.down;
        await via.transport.close();
        if (who === 'rsync') {
          // rsync checks its own transfers; check the result against the manifest as Orbit does.
          const { verifyManifest } = await import('../src/bundle');
          if (!(await verifyManifest(dest)).verified) throw new Error('rsync resumed copy does not match the manifest');
        }
        await settle(dest);
        const extra = cutWire + resumeWire - fullWire;
        return { fullWire, cutWire, resumeWire, extra, kept, resumeMs };
      };

      for (const who of ['orbit', 'rsync'] as const) {
        const r = await cutAndResume(who);
        line(
          B,
          `resume ${who}: uninterrupted ${mib(r.fullWire)} on the wire; cut at ${((100 * r.cutWire) / r.fullWire).toFixed(1)}% (${mib(r.cutWire)} sent, ${mib(r.kept)} kept locally), ` +
            `resumed with ${mib(r.resumeWire)} in ${(r.resumeMs / 1000).toFixed(2)} s; extra ${mib(r.extra)} = ${((100 * r.extra) / r.fullWire).toFixed(2)}% of the total` +
            (who === 'orbit' ? ` (target <= 2%) ${verdict(r.extra / r.fullWire <= 0.02)}` : ''),
        );
      }
    } finally {
      await proxy.close();
    }
  } finally {
    await sshd.stop();
    await tmp.cleanup();
  }
}

function check(r: CollectResult, d: Dataset): void {
  if (!r.manifest.verified || r.refused.length) throw new Error(`orbit collect of ${d.id} not verified: ${JSON.stringify(r.manifest.problems.slice(0, 3))} ${JSON.stringify(r.refused.slice(0, 3))}`);
}

/**
 * Stages a bundle as run folders `mixed`, `big` and `small` on the sshd, then writes the data straight
 * into their artifacts/ (the "remote" disk is this machine's): `mixed` holds everything, `big` and
 * `small` hard links to its checkpoints or its small files. Each gets its manifest and a finished run's runtime/.
 */
async function makeDatasets(sshd: SshdServer, tmpDir: string, big: { count: number; size: number }, small: { count: number; mean: number }): Promise<Dataset[]> {
  const template = join(tmpDir, 'template');
  await scriptBundle(template, 'true');
  const host = orbitHost(sshd);
  for (const id of ['mixed', 'big', 'small']) await host.stage(id, template);
  await host.transport.close();
  const root = (id: string) => join(sshd.workRoot, id);
  const entries: { path: string; size: number; sha256: string; kind: 'big' | 'small' }[] = [];
  const buf = Buffer.alloc(8 * MiB);

  for (let i = 0; i < big.count; i++) {
    const path = `checkpoints/step-${(i + 1) * 1000}/model.pt`;
    const sha256 = await writeRandomFile(join(root('mixed'), 'artifacts', path), big.size, buf);
    entries.push({ path, size: big.size, sha256, kind: 'big' });
  }
  const jitter = small.mean - 1024;
  for (let i = 0; i < small.count; i++) {
    // Pairs of sizes around the mean: 1 KiB .. 2*mean-1 KiB, summing to exactly count*mean.
    const d = Math.floor((((i >> 1) * 2654435761) % 4294967296) / 4294967296 * jitter);
    const size = i % 2 === 0 ? small.mean + d : small.mean - d;
    const path = `samples/shard-${String(i % 64).padStart(2, '0')}/sample-${String(i).padStart(5, '0')}.bin`;
    if (i < 64) await mkdir(join(root('mixed'), 'artifacts', path, '..'), { recursive: true });
    randomFillSync(buf, 0, size);
    const data = buf.subarray(0, size);
    await writeFile(join(root('mixed'), 'artifacts', path), data);
    entries.push({ path, size, sha256: createHash('sha256').update(data).digest('hex'), kind: 'small' });
  }
  const log = 'step 1000 loss 2.1\nstep 2000 loss 1.7\nstep 3000 loss 1.5\n';
  const out: Dataset[] = [];
  for (const id of ['mixed', 'big', 'small'] as const) {
    const mine = entries.filter((e) => id === 'mixed' || e.kind === id);
    if (id !== 'mixed') {
      for (const e of mine) {
        await mkdir(join(root(id), 'artifacts', e.path, '..'), { recursive: true });
        await link(join(root('mixed'), 'artifacts', e.path), join(root(id), 'artifacts', e.path));
      }
    }
    await writeFile(join(root(id), 'artifacts/job.log'), log);
    await writeFile(join(root(id), 'runtime/runtime.log'), '2026-11-25T10:00:00.000Z staged\n2026-11-25T10:00:01.000Z done\n');
    await writeFile(join(root(id), 'runtime/exit_code'), '0\n');
    const files = [...mine.map(({ path, size, sha256 }) => ({ path, size, sha256 })), { path: 'job.log', size: log.length, sha256: createHash('sha256').update(log).digest('hex') }];
    const manifest = JSON.stringify({ schemaVersion: 'orbit.manifest.v1', createdAt: new Date().toISOString(), files }, null, 1) + '\n';
    await writeFile(join(root(id), 'artifacts/manifest.json'), manifest);
    const listed = [...(await walkFiles(root(id), 'artifacts')), ...(await walkFiles(root(id), 'runtime'))].filter((f) => f.path !== 'runtime/frozen.json');
    out.push({ id, files: listed.length, bytes: listed.reduce((a, f) => a + f.size, 0) });
  }
  return out;
}

runMain(main);
