/**
 * Profiling behind docs/benchmarks.md (not part of `npm run bench`): what bounds Orbit's SSH
 * transfers, and prototypes of the recommended src changes, measured side by side on one sshd.
 * These prototypes are now in src (TCP_NODELAY since dd59246; 255 KiB reads, the tar stream and
 * hashing while downloading since 26d6a4b), so the "as is" lines measure them too.
 *  1. exec round trip: SshTransport.exec('true') as is, and with TCP_NODELAY on its socket;
 *  2. one large file: SshTransport.download as is / with TCP_NODELAY, raw ssh2 SFTP reads of 64 KiB
 *     and 255 KiB with 16 in flight (with TCP_NODELAY), scp;
 *  3. 8192 small files: rsync -a, ShellHost.collect (concurrency 4 and 16, with TCP_NODELAY), a lean
 *     per-file path (one SFTP readFile, hash in memory, one write, one rename), and one tar stream over
 *     a single exec channel (hash and write each file as it arrives).
 *
 *   npx tsx bench/profile.ts [--small-count 8192] [--big-mib 256] [--reps 2]
 */
import { createHash, randomFillSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, open, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client, type SFTPWrapper } from 'ssh2';
import { scriptBundle } from '../test/helpers/bundles';
import { startSshd } from '../test/helpers/sshd';
import { line, machine, mibps, orbitHost, parseArgs, run, runMain, sshOptions, target, withNoDelay } from './lib';

const B = 'profile';
const MiB = 1024 * 1024;

async function main(): Promise<void> {
  const args = parseArgs();
  const n = args.num('small-count', 8192);
  const bigSize = args.num('big-mib', 256) * MiB;
  const reps = args.num('reps', 2);
  line(B, `machine: ${await machine()}`);
  const tmp = await mkdtemp(join(tmpdir(), 'orbit-bench-profile-'));
  const sshd = await startSshd({ name: 'bench-profile' });
  const fresh = () => mkdtemp(join(tmp, 'dest-'));
  const clean = async (d: string) => {
    await rm(d, { recursive: true, force: true });
    await run('sync', []);
  };
  const client = new Client();
  try {
    // ------------------------------------------------------------ data
    const template = join(tmp, 'template');
    await scriptBundle(template, 'true');
    const stager = orbitHost(sshd);
    await stager.stage('small', template);
    await stager.transport.close();
    const root = join(sshd.workRoot, 'small');
    const files: { path: string; size: number; sha256: string }[] = [];
    const buf = Buffer.alloc(8 * MiB);
    for (let i = 0; i < n; i++) {
      const d = Math.floor(((((i >> 1) * 2654435761) % 4294967296) / 4294967296) * 31 * 1024);
      const size = i % 2 ? 32768 - d : 32768 + d;
      const path = `samples/shard-${String(i % 64).padStart(2, '0')}/sample-${String(i).padStart(5, '0')}.bin`;
      if (i < 64) await mkdir(join(root, 'artifacts', path, '..'), { recursive: true });
      randomFillSync(buf, 0, size);
      await writeFile(join(root, 'artifacts', path), buf.subarray(0, size));
      files.push({ path, size, sha256: createHash('sha256').update(buf.subarray(0, size)).digest('hex') });
    }
    await writeFile(join(root, 'artifacts/manifest.json'), JSON.stringify({ schemaVersion: 'orbit.manifest.v1', createdAt: new Date().toISOString(), files }));
    const smallBytes = files.reduce((a, f) => a + f.size, 0);
    const bigPath = join(sshd.workRoot, 'big.bin');
    const fh = await open(bigPath, 'w');
    for (let left = bigSize; left > 0; left -= buf.length) {
      randomFillSync(buf);
      await fh.write(buf, 0, Math.min(left, buf.length));
    }
    await fh.close();

    await new Promise<void>((resolve, reject) => {
      client.on('ready', () => resolve()).on('error', reject);
      client.connect({ host: sshd.address, port: sshd.port, username: sshd.user, privateKey: readFileSync(sshd.keyFile) });
    });
    client.setNoDelay(true);
    const sftp: SFTPWrapper = await new Promise((resolve, reject) => client.sftp((e, s) => (e ? reject(e) : resolve(s))));

    for (let rep = 1; rep <= reps; rep++) {
      // ------------------------------------------------------------ 1. exec round trip
      for (const noDelay of [false, true]) {
        const h = noDelay ? withNoDelay(orbitHost(sshd)) : orbitHost(sshd);
        await h.transport.exec('true');
        const t0 = performance.now();
        for (let i = 0; i < 20; i++) await h.transport.exec('true');
        line(B, `rep ${rep} exec round trip, SshTransport.exec('true') one after another${noDelay ? ', TCP_NODELAY' : ''}: ${((performance.now() - t0) / 20).toFixed(1)} ms`);
        await h.transport.close();
      }

      // ------------------------------------------------------------ 2. one large file
      const out = join(tmp, 'big.out');
      const timeBig = async (label: string, f: () => Promise<unknown>) => {
        await rm(out, { force: true });
        const t0 = performance.now();
        await f();
        line(B, `rep ${rep} one ${bigSize / MiB} MiB file, ${label}: ${mibps(bigSize, performance.now() - t0)}`);
      };
      for (const noDelay of [false, true]) {
        const h = noDelay ? withNoDelay(orbitHost(sshd)) : orbitHost(sshd);
        await h.transport.exec('true');
        await timeBig(`SshTransport.download (64 KiB x 16)${noDelay ? ', TCP_NODELAY' : ''}`, () => h.transport.download(bigPath, out, 0, bigSize));
        await h.transport.close();
      }
      const sftpReads = async (chunk: number, depth: number) => {
        const handle: Buffer = await new Promise((resolve, reject) => sftp.open(bigPath, 'r', (e, hd) => (e ? reject(e) : resolve(hd))));
        const w = await open(out, 'w');
        let next = 0;
        const inflight: Promise<Buffer>[] = [];
        const issue = () => {
          while (inflight.length < depth && next < bigSize) {
            const pos = next;
            const len = Math.min(chunk, bigSize - pos);
            next += len;
            inflight.push(
              new Promise((resolve, reject) => {
                const b = Buffer.allocUnsafe(len);
                sftp.read(handle, b, 0, len, pos, (e, got) => (e ? reject(e) : resolve(b.subarray(0, got))));
              }),
            );
          }
        };
        issue();
        for (let p = inflight.shift(); p; p = inflight.shift()) {
          const b = await p;
          issue();
          await w.write(b);
        }
        await w.close();
        await new Promise<void>((resolve) => sftp.close(handle, () => resolve()));
      };
      await timeBig('ssh2 SFTP reads of 64 KiB x 16, TCP_NODELAY', () => sftpReads(64 * 1024, 16));
      await timeBig('ssh2 SFTP reads of 255 KiB x 16, TCP_NODELAY', () => sftpReads(255 * 1024, 16));
      await timeBig('scp', () => run('scp', [...sshOptions(sshd), '-P', String(sshd.port), '-q', `${target(sshd)}:${bigPath}`, out]));

      // ------------------------------------------------------------ 3. small files
      const timeSmall = async (label: string, f: (dest: string) => Promise<unknown>) => {
        const dest = await fresh();
        const t0 = performance.now();
        await f(dest);
        const ms = performance.now() - t0;
        line(B, `rep ${rep} ${n} small files, ${label}: ${mibps(smallBytes, ms)} (${(ms / n).toFixed(3)} ms per file)`);
        await clean(dest);
      };
      await timeSmall('rsync -a', (dest) => run('rsync', ['-a', '-e', ['ssh', ...sshOptions(sshd), '-p', String(sshd.port)].join(' '), `${target(sshd)}:${root}/artifacts`, `${dest}/`]));
      for (const [concurrency, noDelay] of [
        [4, false],
        [16, true],
      ] as const) {
        await timeSmall(`ShellHost.collect, concurrency ${concurrency}${noDelay ? ', TCP_NODELAY' : ''}`, async (dest) => {
          const h = noDelay ? withNoDelay(orbitHost(sshd)) : orbitHost(sshd);
          const r = await h.collect('small', dest, { concurrency });
          await h.transport.close();
          if (!r.manifest.verified) throw new Error('not verified');
        });
      }
      await timeSmall('prototype: per file one SFTP readFile, sha256 in memory, one write + rename, folders made once, 16 at a time, TCP_NODELAY', async (dest) => {
        const made = new Map<string, Promise<unknown>>();
        let next = 0;
        await Promise.all(
          Array.from({ length: 16 }, async () => {
            for (let i = next++; i < files.length; i = next++) {
              const f = files[i]!;
              const data: Buffer = await new Promise((resolve, reject) => sftp.readFile(join(root, 'artifacts', f.path), (e, b) => (e ? reject(e) : resolve(b))));
              if (createHash('sha256').update(data).digest('hex') !== f.sha256) throw new Error(`${f.path}: sha256 differs`);
              const local = join(dest, 'artifacts', f.path);
              if (!made.has(dirname(local))) made.set(dirname(local), mkdir(dirname(local), { recursive: true }));
              await made.get(dirname(local));
              await writeFile(`${local}.orbit-part`, data);
              await rename(`${local}.orbit-part`, local);
            }
          }),
        );
      });
      await timeSmall('prototype: one `tar --null -T - -cf -` stream over one exec channel, sha256 + write + rename per file as it arrives', (dest) =>
        tarFetch(client, root, files, dest),
      );
    }
  } finally {
    client.end();
    await sshd.stop();
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Streams the listed files as one tar over an exec channel and writes each (hash checked) as it arrives. */
function tarFetch(client: Client, root: string, files: { path: string; size: number; sha256: string }[], dest: string): Promise<void> {
  const want = new Map(files.map((f) => [`artifacts/${f.path}`, f.sha256]));
  return new Promise<void>((resolve, reject) => {
    client.exec(`cd ${root} && tar --null -T - -cf -`, (err, ch) => {
      if (err) return reject(err);
      let pending: Buffer = Buffer.alloc(0);
      let cur: { name: string; size: number; parts: Buffer[]; left: number } | undefined;
      const writes: Promise<void>[] = [];
      const made = new Map<string, Promise<unknown>>();
      ch.on('data', (b: Buffer) => {
        pending = pending.length ? Buffer.concat([pending, b]) : b;
        for (;;) {
          if (!cur) {
            if (pending.length < 512) break;
            const hdr = pending.subarray(0, 512);
            pending = pending.subarray(512);
            const name = hdr.subarray(0, 100).toString('latin1').replace(/\0[\s\S]*$/, '');
            if (!name) continue;
            const size = parseInt(hdr.subarray(124, 136).toString('latin1').replace(/\0[\s\S]*$/, '').trim(), 8) || 0;
            const regular = hdr[156] === 0x30 || hdr[156] === 0;
            cur = { name, size: regular ? size : 0, parts: [], left: regular ? Math.ceil(size / 512) * 512 : 0 };
            if (!cur.left) {
              cur = undefined;
              continue;
            }
          }
          if (!pending.length) break;
          const take = Math.min(cur.left, pending.length);
          cur.parts.push(pending.subarray(0, take));
          pending = pending.subarray(take);
          cur.left -= take;
          if (cur.left === 0) {
            const data = Buffer.concat(cur.parts).subarray(0, cur.size);
            const name = cur.name;
            cur = undefined;
            if (createHash('sha256').update(data).digest('hex') !== want.get(name)) {
              reject(new Error(`${name}: sha256 differs`));
              return;
            }
            const local = join(dest, name);
            writes.push(
              (async () => {
                if (!made.has(dirname(local))) made.set(dirname(local), mkdir(dirname(local), { recursive: true }));
                await made.get(dirname(local));
                await writeFile(`${local}.orbit-part`, data);
                await rename(`${local}.orbit-part`, local);
              })(),
            );
          }
        }
      });
      ch.on('close', () => void Promise.all(writes).then(() => resolve(), reject));
      ch.end(files.map((f) => `artifacts/${f.path}\0`).join(''));
    });
  });
}

runMain(main);
