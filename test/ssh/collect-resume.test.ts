import { createHash, randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShellHost } from '../../src/hosts/shell-host';
import { SshTransport } from '../../src/hosts/ssh';
import { scriptBundle, tempDir } from '../helpers/bundles';
import { sshOptions, startSshd, type SshdServer } from '../helpers/sshd';

describe('a collection cut mid-file by a dying host', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let sshd: SshdServer;
  let host: ShellHost;
  const SIZE = 48 * 1024 * 1024;

  beforeAll(async () => {
    tmp = await tempDir('orbit-resume-');
    sshd = await startSshd({ name: 'resume-host' });
    host = new ShellHost({
      name: 'resume-host',
      workRoot: sshd.workRoot,
      transport: new SshTransport(sshOptions(sshd, { name: undefined, readyTimeoutMs: 3_000 })),
    });
  });
  afterAll(async () => {
    await host?.transport.close();
    await sshd?.stop();
    await tmp?.cleanup();
  });

  it('resumes from the partial file when the host answers again, without sending its first part twice', async () => {
    const bundleDir = join(tmp.dir, 'bundle');
    await scriptBundle(bundleDir, 'cp inputs/big.bin artifacts/big.bin');
    // The job copies a 48 MiB file into artifacts/; the file is put straight into the host's run folder.
    const payload = randomBytes(SIZE);
    const runDir = join(sshd.workRoot, 'cut');
    await host.stage('cut', bundleDir);
    await writeFile(join(runDir, 'inputs/big.bin'), payload);
    await host.launch('cut');
    for (let i = 0; i < 100 && (await host.probe('cut', 'job.log')).state !== 'exited'; i++) await new Promise((r) => setTimeout(r, 200));

    const part = join(bundleDir, 'artifacts/big.bin.orbit-part');
    const first = host.collect('cut', bundleDir, { concurrency: 1 });
    const firstOutcome = first.then(
      () => 'finished',
      (e: Error) => e,
    );
    for (let i = 0; i < 400 && !(existsSync(part) && statSync(part).size > SIZE / 4); i++) await new Promise((r) => setTimeout(r, 10));
    await sshd.kill(); // the host dies in the middle of the big file
    expect(await firstOutcome).toBeInstanceOf(Error);
    const cutAt = statSync(part).size;
    expect(cutAt).toBeGreaterThan(0);
    expect(cutAt).toBeLessThan(SIZE);

    await sshd.start();
    const second = await host.collect('cut', bundleDir, { concurrency: 1 });
    expect(second.manifest.verified).toBe(true);
    expect(second.refused).toEqual([]);
    const local = await readFile(join(bundleDir, 'artifacts/big.bin'));
    expect(createHash('sha256').update(local).digest('hex')).toBe(createHash('sha256').update(payload).digest('hex'));
    // Only the rest of the big file (plus small logs) crossed the wire the second time.
    expect(second.bytesFetched).toBeLessThan(SIZE - cutAt + 256 * 1024);
    expect(second.bytesFetched).toBeGreaterThanOrEqual(SIZE - cutAt);
  });
});
