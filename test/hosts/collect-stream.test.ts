import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalTransport } from '../../src/hosts/local-transport';
import { ShellHost } from '../../src/hosts/shell-host';
import { HostUnreachableError, type ExecResult, type StreamExecOptions, type TransferOptions } from '../../src/hosts/transport';
import { scriptBundle, tempDir } from '../helpers/bundles';
import { filesBelow as tree } from '../helpers/files';
import { PassThroughTransport } from '../helpers/transports';

/** One ustar entry (header + data + padding), as a hostile host could send it. */
function tarEntry(name: string, data: Buffer): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\x0000', 257, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return Buffer.concat([h, data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

/** Wraps the local transport: counts calls and lets a test rewrite the tar stream and its stderr. */
class Tampering extends PassThroughTransport {
  streams = 0;
  downloads: string[] = [];
  rewriteScript?: (script: string) => string;
  rewriteStream?: (archive: Buffer) => Buffer;
  extraStderr = '';
  /** Fails the stream as a dropped connection would, after this many bytes. */
  dropAfterBytes?: number;
  constructor() {
    super(new LocalTransport(), 'tampering local');
  }
  override async execStream(script: string, options: StreamExecOptions): Promise<ExecResult> {
    this.streams++;
    const s = this.rewriteScript ? this.rewriteScript(script) : script;
    if (!this.rewriteStream) {
      const r = await this.inner.execStream(s, options);
      return { ...r, stderr: r.stderr + this.extraStderr };
    }
    const chunks: Buffer[] = [];
    const r = await this.inner.execStream(s, { ...options, onStdout: (c) => void chunks.push(Buffer.from(c)) });
    const all = this.rewriteStream(Buffer.concat(chunks));
    for (let at = 0; at < all.length; at += 3000) {
      if (this.dropAfterBytes !== undefined && at >= this.dropAfterBytes) throw new HostUnreachableError('connection to the tampering host was lost while a script ran');
      await options.onStdout(all.subarray(at, at + 3000));
    }
    return { ...r, stdout: '', stderr: r.stderr + this.extraStderr };
  }
  override download(remotePath: string, localPath: string, offset: number, maxBytes: number, options?: TransferOptions): Promise<number> {
    this.downloads.push(remotePath);
    return this.inner.download(remotePath, localPath, offset, maxBytes, options);
  }
}

describe('collect: small files in one tar stream', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let work: string;
  let n = 0;
  beforeAll(async () => {
    tmp = await tempDir('orbit-stream-');
    work = join(tmp.dir, 'work');
  });
  afterAll(() => tmp?.cleanup());

  /** A finished run with `small` small files in 4 folders, one 3 MiB file and a manifest; a fresh local bundle. */
  async function finishedRun(transport: Tampering, small = 120): Promise<{ host: ShellHost; runId: string; bundleDir: string; remote: string }> {
    const runId = `run-${++n}`;
    const bundleDir = join(tmp.dir, runId);
    await scriptBundle(
      bundleDir,
      [
        `for i in $(seq 0 ${small - 1}); do mkdir -p artifacts/samples/s$((i % 4)); printf "sample %04d %s" $i "$(head -c $((i * 37)) /dev/zero | tr "\\0" A)" > artifacts/samples/s$((i % 4))/$i.txt; done`,
        'head -c 3145728 /dev/urandom > artifacts/model.bin',
      ].join('\n'),
    );
    const host = new ShellHost({ name: 'local', transport, workRoot: work });
    await host.stage(runId, bundleDir);
    await host.launch(runId);
    for (let i = 0; i < 150 && (await host.probe(runId, 'job.log')).state !== 'exited'; i++) await new Promise((r) => setTimeout(r, 100));
    return { host, runId, bundleDir, remote: join(work, runId) };
  }

  async function expectSameArtifacts(bundleDir: string, remote: string): Promise<void> {
    const local = await tree(join(bundleDir, 'artifacts'));
    expect(local).toEqual(await tree(join(remote, 'artifacts')));
    for (const f of local) expect((await readFile(join(bundleDir, 'artifacts', f))).equals(await readFile(join(remote, 'artifacts', f)))).toBe(true);
  }

  it('fetches the small files in one stream and only the large one per file, all verified', async () => {
    const t = new Tampering();
    const { host, runId, bundleDir, remote } = await finishedRun(t, 300); // enough files for the writer thread
    const r = await host.collect(runId, bundleDir);
    expect(r.refused).toEqual([]);
    expect(r.manifest.verified).toBe(true);
    const listed = (JSON.parse(await readFile(join(remote, 'artifacts/manifest.json'), 'utf8')) as { files: unknown[] }).files.length;
    expect(listed).toBeGreaterThanOrEqual(302); // 300 samples, model.bin, job.log, the runtime's own logs
    expect(r.manifest.verifiedFiles).toHaveLength(listed);
    expect(t.streams).toBe(1);
    expect(t.downloads.map((p) => p.slice(remote.length + 1)).sort()).toEqual(['artifacts/manifest.json', 'artifacts/model.bin']);
    await expectSameArtifacts(bundleDir, remote);
    expect((await tree(bundleDir)).filter((p) => p.endsWith('.orbit-part'))).toEqual([]);
    // Nothing left to fetch the second time: no stream, no download.
    t.streams = 0;
    t.downloads = [];
    const again = await host.collect(runId, bundleDir);
    expect(again).toMatchObject({ filesFetched: 0, bytesFetched: 0 });
    expect(again.manifest.verified).toBe(true);
    expect(t.streams).toBe(0);
  });

  it('falls back to one transfer per file when the host has no tar', async () => {
    const t = new Tampering();
    t.rewriteScript = (s) => s.replace('exec tar ', 'exec no-such-tar-here ');
    const { host, runId, bundleDir, remote } = await finishedRun(t);
    const r = await host.collect(runId, bundleDir);
    expect(r.manifest.verified).toBe(true);
    expect(t.streams).toBe(1);
    expect(t.downloads.length).toBeGreaterThan(120);
    await expectSameArtifacts(bundleDir, remote);
  });

  it('keeps what a corrupt stream delivered before the corruption and fetches the rest per file', async () => {
    const t = new Tampering();
    t.rewriteStream = (archive) => {
      const cut = Buffer.from(archive);
      const at = Math.floor(cut.length / 2 / 512) * 512 + 3;
      cut[at] = cut[at]! ^ 0xff; // garbles a header (or data) half way
      return cut;
    };
    const { host, runId, bundleDir, remote } = await finishedRun(t);
    const r = await host.collect(runId, bundleDir);
    expect(r.refused).toEqual([]);
    expect(r.manifest.verified).toBe(true);
    const perFile = t.downloads.length - 2;
    expect(perFile).toBeGreaterThan(0);
    expect(perFile).toBeLessThan(120);
    await expectSameArtifacts(bundleDir, remote);
  });

  it('writes nothing a hostile stream adds: unasked names, names climbing out, wrong content', async () => {
    const t = new Tampering();
    const { host, runId, bundleDir, remote } = await finishedRun(t);
    const victim = 'artifacts/samples/s1/5.txt';
    t.rewriteStream = () =>
      Buffer.concat([
        tarEntry('../../escaped.txt', Buffer.from('out\n')),
        tarEntry('artifacts/samples/not-asked.txt', Buffer.from('planted\n')),
        tarEntry('artifacts/samples/s1/../../../../../escaped2.txt', Buffer.from('out\n')),
        tarEntry(victim, Buffer.from('sample 0005 '.padEnd(12 + 5 * 37, 'B'))), // right size, wrong bytes
        Buffer.alloc(1024),
      ]);
    const r = await host.collect(runId, bundleDir);
    expect(r.manifest.verified).toBe(true);
    expect(existsSync(join(bundleDir, '..', '..', 'escaped.txt'))).toBe(false);
    expect(existsSync(join(tmp.dir, 'escaped2.txt'))).toBe(false);
    expect(existsSync(join(bundleDir, 'artifacts/samples/not-asked.txt'))).toBe(false);
    expect(await readFile(join(bundleDir, victim), 'utf8')).toBe(await readFile(join(remote, victim), 'utf8'));
    await expectSameArtifacts(bundleDir, remote);
  });

  it('fetches again a file tar says changed while it was read, when no manifest can prove it (a sync during the run)', async () => {
    const t = new Tampering();
    const { host, runId, bundleDir, remote } = await finishedRun(t);
    const victim = 'artifacts/samples/s2/6.txt';
    const truth = await readFile(join(remote, victim));
    const forged = Buffer.from(truth.toString('latin1').replace(/A/g, 'Z'), 'latin1');
    t.rewriteStream = (archive) => {
      const at = archive.indexOf(truth);
      expect(at).toBeGreaterThan(0);
      return Buffer.concat([archive.subarray(0, at), forged, archive.subarray(at + truth.length)]);
    };
    t.extraStderr = `tar: ${victim}: file changed as we read it\n`;
    const r = await host.collect(runId, bundleDir, { verify: false });
    expect(r.refused).toEqual([]);
    expect((await readFile(join(bundleDir, victim))).equals(truth)).toBe(true);
    expect(t.downloads.map((p) => p.slice(remote.length + 1))).toContain(victim);
    expect(createHash('sha256').update(await readFile(join(bundleDir, 'artifacts/model.bin'))).digest('hex')).toBe(
      createHash('sha256').update(await readFile(join(remote, 'artifacts/model.bin'))).digest('hex'),
    );
  });

  it('fails as the host does when the stream drops, keeps what arrived, and writes nothing after it returned', async () => {
    const t = new Tampering();
    const { host, runId, bundleDir, remote } = await finishedRun(t, 300);
    t.rewriteStream = (archive) => archive;
    t.dropAfterBytes = 60_000;
    await expect(host.collect(runId, bundleDir)).rejects.toThrow(HostUnreachableError);
    const snapshot = async () => (await tree(bundleDir)).join('\n');
    const after = await snapshot();
    await new Promise((r) => setTimeout(r, 400));
    expect(await snapshot()).toBe(after);
    const kept = (await tree(join(bundleDir, 'artifacts/samples'))).filter((p) => !p.endsWith('.orbit-part'));
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(300);
    for (const f of kept) expect((await readFile(join(bundleDir, 'artifacts/samples', f))).equals(await readFile(join(remote, 'artifacts/samples', f)))).toBe(true);
    // The next collection brings the rest.
    t.dropAfterBytes = undefined;
    const r = await host.collect(runId, bundleDir);
    expect(r.manifest.verified).toBe(true);
    await expectSameArtifacts(bundleDir, remote);
  });

  it('sends every file per file when streaming is turned off (streamBelowBytes 0)', async () => {
    const t = new Tampering();
    const { host, runId, bundleDir, remote } = await finishedRun(t);
    const r = await host.collect(runId, bundleDir, { streamBelowBytes: 0 });
    expect(r.manifest.verified).toBe(true);
    expect(t.streams).toBe(0);
    await expectSameArtifacts(bundleDir, remote);
  });
});
