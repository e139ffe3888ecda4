import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Bundle, walkFiles } from '../../src/bundle';
import { claimFiringFolder, cloneFrozenBundle, createCloneActivities, type CloneResult } from '../../src/activities/clone';
import { firingIds } from '../../src/sweeps/store';
import { scriptBundle, tempDir } from '../helpers/bundles';

describe('cloneBundle: a fresh folder per run of a frozen bundle', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let source: string;
  let digest: string;
  beforeEach(async () => {
    tmp = await tempDir();
    source = join(tmp.dir, 'cells', 'a');
    ({ digest } = await scriptBundle(source, 'echo hi > artifacts/out.txt'));
  });
  afterEach(async () => tmp.cleanup());

  it('copies job.json, inputs/ and scripts/ (modes kept), with empty runtime/ and artifacts/, and the same digest', async () => {
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 3000 });
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const dest = join(tmp.dir, 'firings', '20261125-030000', 'a');
    const r: CloneResult = await env.run(createCloneActivities().cloneBundle, { sourceDir: source, digest, destDir: dest });
    expect(r).toMatchObject({ bundleDir: dest, digest, reused: false });
    expect(r.files).toBe(1 + (await walkFiles(source, 'inputs')).length + (await walkFiles(source, 'scripts')).length);
    expect(beats.length).toBeGreaterThan(0);
    const clone = await Bundle.open(dest);
    expect(await clone.assertDigest()).toBe(digest);
    expect(JSON.parse(await readFile(join(dest, 'runtime/frozen.json'), 'utf8'))).toMatchObject({ digest, clonedFrom: source });
    expect((await stat(join(dest, 'scripts/job.sh'))).mode & 0o777).toBe(0o755);
    expect(existsSync(join(dest, 'artifacts'))).toBe(true);
    expect(existsSync(`${dest}.cloning`)).toBe(false);
  });

  it('reuses a finished unused clone (a retried call) and refuses a folder a run already wrote to', async () => {
    const dest = join(tmp.dir, 'firings', 'f1', 'a');
    await cloneFrozenBundle({ sourceDir: source, digest, destDir: dest });
    expect(await cloneFrozenBundle({ sourceDir: source, digest, destDir: dest })).toMatchObject({ reused: true, files: 0 });
    await writeFile(join(dest, 'artifacts', 'out.txt'), 'hi\n');
    const err = await cloneFrozenBundle({ sourceDir: source, digest, destDir: dest }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as ApplicationFailure).type).toBe('BundleStateError');
  });

  it('refuses a source changed after it was frozen, without retrying', async () => {
    await writeFile(join(source, 'inputs', 'data.txt'), 'changed\n');
    const err = await cloneFrozenBundle({ sourceDir: source, digest, destDir: join(tmp.dir, 'x') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe('BundleTamperedError');
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect(existsSync(join(tmp.dir, 'x'))).toBe(false);
  });

  it('refuses the wrong digest', async () => {
    const err = await cloneFrozenBundle({ sourceDir: source, digest: 'sha256:0', destDir: join(tmp.dir, 'y') }).catch((e: unknown) => e);
    expect((err as ApplicationFailure).type).toBe('BundleTamperedError');
  });

  it('claims one folder per firing: the same time fired again gets -2, a retry gets its own folder back', async () => {
    const firingsDir = join(tmp.dir, 'sweep', 'firings');
    const a = await claimFiringFolder({ firingsDir, firingId: '20261125-030000', owner: 'wf/run-a', scheduledAt: '2026-11-25T03:00:00Z' });
    const b = await claimFiringFolder({ firingsDir, firingId: '20261125-030000', owner: 'wf/run-b', scheduledAt: '2026-11-25T03:00:00Z' });
    const again = await claimFiringFolder({ firingsDir, firingId: '20261125-030000', owner: 'wf/run-a', scheduledAt: '2026-11-25T03:00:00Z' });
    expect([a.firingId, b.firingId, again.firingId]).toEqual(['20261125-030000', '20261125-030000-2', '20261125-030000']);
    expect(JSON.parse(await readFile(join(firingsDir, '20261125-030000-2', 'firing.json'), 'utf8'))).toMatchObject({ owner: 'wf/run-b' });
    expect(await firingIds(join(tmp.dir, 'sweep'))).toEqual(['20261125-030000', '20261125-030000-2']);
  });
});
