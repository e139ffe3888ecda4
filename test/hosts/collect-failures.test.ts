/**
 * Failure classes of a collection, over the local transport and SSH to a real sshd: a local failure
 * (the worker's disk full, names it cannot hold) is never taken for a lost host, a bad name or a
 * bad manifest entry is refused alone, and whatever the manifest does not vouch for is said.
 * The collect activity runs here as the worker runs it (MockActivityEnvironment), over real hosts.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../src/activities';
import type { CollectSummary, MonitorResult } from '../../src/common/activities';
import { HostRegistry } from '../../src/hosts/registry';
import { LocalTransport } from '../../src/hosts/local-transport';
import { ShellHost } from '../../src/hosts/shell-host';
import { verdictOf } from '../../src/workflows/verdict';
import { scriptBundle } from '../helpers/bundles';
import { localHostUnderTest, sshHostUnderTest, type HostUnderTest } from '../helpers/hosts-under-test';
import { tempDir } from '../helpers/temp-dirs';
import { waitFor } from '../helpers/wait';

failureClasses('the local transport', () => localHostUnderTest('h'));

failureClasses('SSH', () => sshHostUnderTest('h'));

function failureClasses(label: string, setup: () => Promise<HostUnderTest>): void {
  describe(`collection failure classes over ${label}`, () => {
    let sut: HostUnderTest;
    let tmp: Awaited<ReturnType<typeof tempDir>>;
    let acts: ReturnType<typeof createActivities>;
    beforeAll(async () => {
      [sut, tmp] = await Promise.all([setup(), tempDir()]);
      acts = createActivities({ hosts: new HostRegistry([sut.host]) });
    });
    afterAll(async () => {
      await Promise.all([sut?.close(), tmp?.cleanup()]);
    });

    /** Stages and runs `body` to its end as run `runId`, with the local bundle under `parent`. */
    async function finished(runId: string, body: string, parent = tmp.dir): Promise<string> {
      const bundleDir = join(parent, runId);
      await scriptBundle(bundleDir, body);
      await sut.host.stage(runId, bundleDir);
      await sut.host.launch(runId);
      const p = await waitFor(() => sut.host.probe(runId, 'job.log'), (x) => x.state === 'exited', 30_000);
      expect(p.state).toBe('exited');
      return bundleDir;
    }
    const collect = (runId: string, bundleDir: string): Promise<CollectSummary> => new MockActivityEnvironment().run(acts.collect, { runId, host: 'h', bundleDir });
    const reasons = (c: CollectSummary) =>
      verdictOf({ lost: false, timedOut: false, exitCode: 0, probeState: 'exited', collect: c, host: 'h', runSeconds: 60, collectDeadlineMs: 1, earlier: [] }).reasons;

    it('the worker disk filling up ends the collection with its reason, keeps what came, and is not host loss', async () => {
      const small = join(tmp.dir, 'tiny');
      await mkdir(small);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', small]);
      try {
        // a.txt comes back first, by a sync while the job runs (had both come in one collection, their
        // parallel writes would race for the last free pages); then the job fills the disk.
        const bundleDir = join(small, 'full');
        await scriptBundle(bundleDir, 'echo small > artifacts/a.txt\necho wrote-a\nsleep 4\nhead -c 4000000 /dev/zero > artifacts/big.bin');
        await sut.host.stage('full', bundleDir);
        await sut.host.launch('full');
        await waitFor(() => sut.host.probe('full', 'job.log'), (x) => x.taskLogTail.includes('wrote-a'), 30_000);
        await sut.host.collect('full', bundleDir, { verify: false });
        expect(await readFile(join(bundleDir, 'artifacts/a.txt'), 'utf8')).toBe('small\n');
        expect((await waitFor(() => sut.host.probe('full', 'job.log'), (x) => x.state === 'exited', 30_000)).state).toBe('exited');
        const c = await collect('full', bundleDir);
        expect(c.ended).toEqual({ class: 'local', reason: expect.stringMatching(/^the worker could not write the collected files \(ENOSPC/) });
        expect(c.verified).toBe(false);
        expect(reasons(c)[0]).toMatch(/^collection stopped \(the worker's side\): the worker could not write the collected files \(ENOSPC/);
        // The disk is still full: the report says it could not be written, and the files collected before stay.
        expect(c.ended?.reason).toMatch(/runtime\/collection.json could not be written either \(ENOSPC\)$/);
        expect(await readFile(join(bundleDir, 'artifacts/a.txt'), 'utf8')).toBe('small\n');
      } finally {
        execFileSync('umount', ['-l', small]);
      }
    });

    it('a 250-character artifact name is collected and verified (its partial file gets a shorter name)', async () => {
      const name = `${'n'.repeat(246)}.txt`;
      const bundleDir = await finished('long-name', `echo long > artifacts/${name}\necho ok > artifacts/b.txt`);
      const c = await collect('long-name', bundleDir);
      expect(c.refused).toEqual([]);
      expect(c.verified).toBe(true);
      expect(await readFile(join(bundleDir, 'artifacts', name), 'utf8')).toBe('long\n');
    });

    it('a name that is not valid UTF-8 is refused alone and listed; the rest is collected and verified', async () => {
      const bundleDir = await finished('bad-name', "echo x > \"artifacts/bad$(printf '\\377').txt\"\necho ok > artifacts/good.txt");
      const c = await collect('bad-name', bundleDir);
      expect(c.ended).toBeUndefined();
      expect(c.refused).toEqual([expect.stringMatching(/bad\uFFFD\.txt.*not valid UTF-8 on the host; not collected/)]);
      expect(await readFile(join(bundleDir, 'artifacts/good.txt'), 'utf8')).toBe('ok\n');
      expect(c.verifiedCount).toBeGreaterThanOrEqual(4); // good.txt, job.log, the precheck log and the GPU audit
    });

    it('a job that deletes its own runtime/: the run ends for the monitor, and its artifacts are collected', async () => {
      const bundleDir = join(tmp.dir, 'no-runtime');
      await scriptBundle(bundleDir, 'echo kept > artifacts/kept.txt\nrm -rf runtime\nsleep 0.3');
      await sut.host.stage('no-runtime', bundleDir);
      await sut.host.launch('no-runtime');
      const m: MonitorResult = await new MockActivityEnvironment({ heartbeatTimeoutMs: 10_000 }).run(acts.monitor, {
        runId: 'no-runtime',
        host: 'h',
        bundleDir,
        logFile: 'job.log',
        pollIntervalMs: 200,
        deadlineMs: Date.now() + 60_000,
        killGraceSeconds: 1,
        chunkMs: 60_000,
        syncIntervalMs: 0,
        hostLostAfterMs: 60_000,
        probeTimeoutMs: 10_000,
      });
      expect(m.finished).toBe(true);
      // Which of the two depends on whether the probe comes before or after the wrapper writes its ending into a fresh runtime/.
      expect(['not-launched', 'vanished']).toContain(m.probe?.state);
      await waitFor(async () => existsSync(join(sut.workRoot, 'no-runtime/artifacts/manifest.json')), Boolean, 10_000);
      const c = await collect('no-runtime', bundleDir);
      expect(c.ended).toBeUndefined();
      expect(await readFile(join(bundleDir, 'artifacts/kept.txt'), 'utf8')).toBe('kept\n');
      const v = verdictOf({ lost: false, timedOut: false, exitCode: null, probeState: m.probe!.state, collect: c, host: 'h', runSeconds: 60, collectDeadlineMs: 1, earlier: [] });
      expect(v.status).toBe('failed');
      expect(v.reasons[0]).toMatch(m.probe!.state === 'not-launched' ? /runtime\/ was removed on the host/ : /disappeared without writing an exit code/);
    });

    it('a file written after the manifest is collected but listed as unverified, and the run says so', async () => {
      const bundleDir = await finished('late', 'echo on-time > artifacts/a.txt');
      await writeFile(join(sut.workRoot, 'late/artifacts/late.txt'), 'written after the manifest\n');
      const c = await collect('late', bundleDir);
      expect(c.unverified).toEqual(['artifacts/late.txt']);
      expect(c.verified).toBe(false);
      expect(reasons(c)).toEqual(['artifacts failed verification (0 missing, 0 mismatched, 0 refused, 1 not in the manifest)']);
      const report = JSON.parse(await readFile(join(bundleDir, 'runtime/collection.json'), 'utf8'));
      expect(report.unverified).toEqual(['artifacts/late.txt']);
    });

    it('one bad manifest entry (a backslash in its name) is refused alone; the other entries are verified', async () => {
      const bundleDir = await finished('backslash', 'echo a > artifacts/a.txt\necho b > "artifacts/back\\\\slash.txt"');
      expect(existsSync(join(sut.workRoot, 'backslash/artifacts/back\\slash.txt'))).toBe(true);
      const c = await collect('backslash', bundleDir);
      expect(c.manifestPresent).toBe(true);
      expect(c.verifiedCount).toBeGreaterThanOrEqual(4);
      expect(c.refused.some((r) => r.includes('manifest.json.files') && r.includes('back\\\\slash.txt') && r.endsWith('entry ignored'))).toBe(true);
      expect(reasons(c).join('\n')).not.toMatch(/manifest.json is missing/);
    });
  });
}

describe('a manifest over the size limit', () => {
  it('is named as such, not as missing', async () => {
    const work = await tempDir('orbit-work-');
    const tmp = await tempDir();
    try {
      const host = new ShellHost({ name: 'h', transport: new LocalTransport(), workRoot: work.dir });
      const acts = createActivities({ hosts: new HostRegistry([host]) });
      const bundleDir = join(tmp.dir, 'huge');
      await scriptBundle(bundleDir, 'echo a > artifacts/a.txt');
      await host.stage('huge', bundleDir);
      await host.launch('huge');
      await waitFor(() => host.probe('huge', 'job.log'), (x) => x.state === 'exited', 30_000);
      execFileSync('truncate', ['-s', String(65 * 1024 * 1024), join(work.dir, 'huge/artifacts/manifest.json')]);
      const c: CollectSummary = await new MockActivityEnvironment().run(acts.collect, { runId: 'huge', host: 'h', bundleDir });
      expect(c.manifestPresent).toBe(false);
      expect(c.manifestProblem).toMatch(/is 68157440 bytes, over the 64 MiB limit/);
      const v = verdictOf({ lost: false, timedOut: false, exitCode: 0, probeState: 'exited', collect: c, host: 'h', runSeconds: 60, collectDeadlineMs: 1, earlier: [] });
      expect(v.reasons).toContain('artifacts/manifest.json is 68157440 bytes, over the 64 MiB limit; not collected');
    } finally {
      await Promise.all([work.cleanup(), tmp.cleanup()]);
    }
  });
});
