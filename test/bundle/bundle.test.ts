import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  Bundle,
  BundleStateError,
  BundleTamperedError,
  ValidationError,
  jobSpecSchema,
  parseWith,
  validateBundleDir,
  verifyManifest,
} from '../../src/bundle';
import { jobSpec, scriptBundle, tempDir } from '../helpers/bundles';

let tmp: Awaited<ReturnType<typeof tempDir>>;
beforeEach(async () => {
  tmp = await tempDir();
});
afterEach(async () => tmp.cleanup());

describe('JobSpec schema', () => {
  const problems = (spec: unknown) => {
    const r = parseWith(jobSpecSchema, spec);
    return r.ok ? [] : r.problems.map((p) => `${p.path}: ${p.message}`);
  };

  it('accepts a minimal spec and fills defaults', () => {
    const r = parseWith(jobSpecSchema, jobSpec());
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.value.timeouts).toEqual({ runSeconds: 86400, stageSeconds: 1800, collectSeconds: 3600, killGraceSeconds: 10 });
      expect(r.value.secretEnv).toEqual([]);
    }
  });

  it('names each bad field and says what is expected', () => {
    expect(problems(jobSpec({ jobId: 'Bad Id' }))).toEqual([
      "jobId: jobId must be 1-63 chars of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
    ]);
    expect(problems(jobSpec({ resources: { gpus: -1, cpus: 1, memoryGb: 1 } }))).toEqual(['resources.gpus: gpus must be 0 or more']);
    expect(problems(jobSpec({ resources: { gpus: 0, cpus: 0, memoryGb: 1 } }))).toEqual(['resources.cpus: cpus must be at least 1']);
    expect(problems(jobSpec({ resources: { gpus: 1.5, cpus: 1, memoryGb: 1 } }))).toEqual(['resources.gpus: gpus must be a whole number']);
    expect(problems(jobSpec({ entrypoint: { command: [] } }))).toEqual(['entrypoint.command: entrypoint.command must name a program']);
    expect(problems(jobSpec({ schemaVersion: 'v0' as 'orbit.job.v1' }))).toEqual(['schemaVersion: schemaVersion must be "orbit.job.v1"']);
    expect(problems(jobSpec({ secretEnv: ['1BAD'] }))).toEqual(['secretEnv[0]: must be a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)']);
    expect(problems(jobSpec({ expectedOutputs: [{ path: '../x', required: true }] }))).toEqual([
      "expectedOutputs[0].path: path must be relative, use '/', and contain no '..', '.', empty part, backslash or NUL",
    ]);
    expect(problems(jobSpec({ entrypoint: { command: ['true'], logFile: 'a b.log' } }))).toEqual([
      'entrypoint.logFile: entrypoint.logFile may use only A-Z, a-z, 0-9, ".", "_", "-" and "/"',
    ]);
  });

  it('refuses unknown fields', () => {
    expect(problems({ ...jobSpec(), colour: 'red' })).toEqual([expect.stringMatching(/Unrecognized key.*colour/)]);
  });

  it('takes a declared progress series and provenance checks, filling their defaults', () => {
    const r = parseWith(
      jobSpecSchema,
      jobSpec({
        progress: { file: 'metrics.jsonl', metrics: [{ key: 'reward', goal: 'max' }] },
        precheck: { provenance: [{ kind: 'tree-manifest', label: 'vendored lib', manifest: 'inputs/lib/MANIFEST.json' }] },
      }),
    );
    expect(r.ok && r.value.progress).toEqual({ file: 'metrics.jsonl', format: 'jsonl', step: 'step', metrics: [{ key: 'reward', goal: 'max' }] });
    expect(r.ok && r.value.precheck).toEqual({
      python: { interpreter: 'python3', modules: [] },
      provenance: [{ kind: 'tree-manifest', label: 'vendored lib', noun: 'tree', manifest: 'inputs/lib/MANIFEST.json', digest: 'sha256', required: true }],
    });
    const plain = parseWith(jobSpecSchema, jobSpec());
    expect(plain.ok && 'progress' in plain.value).toBe(false);
  });

  it('names each bad field of a progress series or a provenance check', () => {
    expect(problems(jobSpec({ progress: { file: 'm.jsonl', metrics: [] } }))).toEqual(['progress.metrics: progress.metrics must name at least one metric']);
    expect(problems(jobSpec({ progress: { file: 'm.jsonl', metrics: [{ key: 'r' }, { key: 'r' }] } }))).toEqual(['progress.metrics: progress.metrics names the same key twice']);
    expect(problems(jobSpec({ progress: { file: '../m.jsonl', metrics: [{ key: 'r', goal: 'up' as 'max' }] } }))).toEqual([
      "progress.file: path must be relative, use '/', and contain no '..', '.', empty part, backslash or NUL",
      'progress.metrics[0].goal: Invalid option: expected one of "min"|"max"',
    ]);
    expect(problems(jobSpec({ precheck: { provenance: [{ kind: 'tree-manifest', label: 'a: b', manifest: 'artifacts/M.json' }] } }))).toEqual([
      'precheck.provenance[0].label: label must be 1-80 chars of A-Z, a-z, 0-9, space, ".", "_", "@", "+", "/", "-"',
      'precheck.provenance[0].manifest: manifest must be a path under inputs/ or scripts/ of the bundle',
    ]);
  });
});

describe('a job.json written before progress and precheck.provenance (a frozen bundle on disk)', () => {
  it('opens, keeps its digest, and reads the old field as a provenance check', async () => {
    const dir = join(tmp.dir, 'old');
    const bundle = await Bundle.create(dir, jobSpec());
    await bundle.writeInput('fork/FORK_MANIFEST.json', '{"files": {}}\n');
    await bundle.writeScript('job.sh', 'true\n', true);
    // job.json as Bundle.create wrote it then: every default filled, a staged copy named by modules[].fork, no progress.
    const raw = {
      ...jobSpec(),
      env: {},
      secretEnv: [],
      inputs: [],
      expectedOutputs: [],
      timeouts: { runSeconds: 86400, stageSeconds: 1800, collectSeconds: 3600, killGraceSeconds: 10 },
      precheck: { python: { interpreter: 'python3', modules: [{ name: 'mylib', minVersion: '1.0', fork: 'inputs/fork/FORK_MANIFEST.json' }] } },
      sync: { intervalSeconds: 30, atomicDirs: [] },
      metadata: {},
    };
    const text = JSON.stringify(raw, null, 2) + '\n';
    await writeFile(join(dir, 'job.json'), text);
    const digest = await bundle.freeze();

    const opened = await Bundle.open(dir);
    expect(opened.spec.progress).toBeUndefined();
    expect(opened.spec.precheck).toEqual({
      python: { interpreter: 'python3', modules: [{ name: 'mylib', minVersion: '1.0' }] },
      provenance: [{ kind: 'tree-manifest', label: 'fork mylib', noun: 'fork', manifest: 'inputs/fork/FORK_MANIFEST.json', module: 'mylib', digest: 'sha256', required: true }],
    });
    expect(await opened.assertDigest()).toBe(digest);
    expect(await readFile(join(dir, 'job.json'), 'utf8')).toBe(text);
    expect(await validateBundleDir(dir)).toEqual([]);
  });
});

describe('Bundle', () => {
  it('creates the five-part layout with job.json and the core runtime scripts', async () => {
    const dir = join(tmp.dir, 'b');
    await Bundle.create(dir, jobSpec());
    for (const part of ['job.json', 'inputs', 'scripts', 'runtime', 'artifacts', 'scripts/orbit/run.sh', 'scripts/orbit/manifest.py']) {
      expect(existsSync(join(dir, part)), part).toBe(true);
    }
    const spec = JSON.parse(await readFile(join(dir, 'job.json'), 'utf8'));
    expect(spec.jobId).toBe('unit-job');
  });

  it('refuses an invalid spec with every problem, and writes nothing', async () => {
    const dir = join(tmp.dir, 'bad');
    const err = await Bundle.create(dir, jobSpec({ jobId: '', resources: { gpus: -2, cpus: 1, memoryGb: 0 } })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).problems.map((p) => p.path)).toEqual(['jobId', 'resources.gpus', 'resources.memoryGb']);
    expect(existsSync(dir)).toBe(false);
  });

  it('refuses to build over a non-empty folder', async () => {
    const dir = join(tmp.dir, 'b');
    await Bundle.create(dir, jobSpec());
    await expect(Bundle.create(dir, jobSpec())).rejects.toBeInstanceOf(BundleStateError);
  });

  it('has a stable digest that ignores runtime/ and artifacts/ but covers job.json, inputs and scripts', async () => {
    const { bundle, digest } = await scriptBundle(join(tmp.dir, 'b'), 'echo hi');
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await bundle.computeDigest()).toBe(digest);
    await writeFile(bundle.path('artifacts/out.txt'), 'x');
    await writeFile(bundle.path('runtime/runtime.log'), 'x');
    expect(await bundle.computeDigest()).toBe(digest);
    // Same content built elsewhere gives the same digest.
    const other = await scriptBundle(join(tmp.dir, 'c'), 'echo hi');
    expect(other.digest).toBe(digest);
  });

  it('detects tampering after it was frozen, and refuses writes', async () => {
    const { bundle, digest } = await scriptBundle(join(tmp.dir, 'b'), 'echo hi');
    await expect(bundle.writeInput('more.txt', 'x')).rejects.toThrow(/is frozen; it cannot be changed/);
    await writeFile(bundle.path('scripts/job.sh'), '#!/bin/sh\necho evil\n');
    const err = await bundle.assertDigest().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BundleTamperedError);
    expect((err as BundleTamperedError).expected).toBe(digest);
    expect((err as Error).message).toMatch(/changed after it was frozen/);
  });

  it('validates a directory with precise problems', async () => {
    const dir = join(tmp.dir, 'b');
    const bundle = await Bundle.create(dir, jobSpec({ inputs: [{ path: 'missing.csv' }], entrypoint: { command: ['bash', 'scripts/nope.sh'] } }));
    await symlink('/etc/passwd', bundle.path('inputs/link'));
    const problems = await validateBundleDir(dir);
    expect(problems).toEqual([
      { path: 'inputs/', message: 'inputs/link is a symbolic link; bundles hold only plain files and folders' },
      { path: 'job.json.inputs[0].path', message: 'declares inputs/missing.csv, which is not in the bundle' },
      { path: 'job.json.entrypoint.command[1]', message: 'names scripts/nope.sh, which is not in the bundle' },
    ]);
    await expect(bundle.freeze()).rejects.toBeInstanceOf(ValidationError);
  });

  it('reports a broken job.json by name', async () => {
    const dir = join(tmp.dir, 'b');
    await Bundle.create(dir, jobSpec());
    await writeFile(join(dir, 'job.json'), '{"schemaVersion": "orbit.job.v1"');
    const problems = await validateBundleDir(dir);
    expect(problems[0]?.path).toBe('job.json');
    expect(problems[0]?.message).toMatch(/missing or not JSON/);
    await expect(Bundle.open(dir)).rejects.toThrow(/job.json: cannot be read as JSON/);
  });
});

describe('the generated runtime scripts, run without Orbit', () => {
  it('run.sh runs the entrypoint and writes pid, log, manifest, last_run and exit code', async () => {
    const { bundle } = await scriptBundle(join(tmp.dir, 'b'), 'echo "out $ORBIT_RUN_ID"\necho data > artifacts/data.txt\nexit 3', {
      env: { GREETING: "it's fine" },
    });
    let code = 0;
    try {
      execFileSync('bash', [bundle.path('scripts/orbit/run.sh')], { env: { ...process.env, ORBIT_RUN_ID: 'manual' } });
    } catch (e) {
      code = (e as { status: number }).status;
    }
    expect(code).toBe(3);
    expect((await readFile(bundle.path('runtime/exit_code'), 'utf8')).trim()).toBe('3');
    expect(await readFile(bundle.path('artifacts/job.log'), 'utf8')).toBe('out manual\n');
    const manifest = JSON.parse(await readFile(bundle.path('artifacts/manifest.json'), 'utf8'));
    expect(manifest.files.map((f: { path: string }) => f.path)).toEqual(['data.txt', 'job.log', 'nvml-audit.jsonl', 'runtime-precheck.log']);
    expect(JSON.parse(await readFile(bundle.path('runtime/last_run.json'), 'utf8'))).toMatchObject({ runId: 'manual', exitCode: 3 });
    expect(await readFile(bundle.path('scripts/orbit/run.sh'), 'utf8')).toContain(`export GREETING='it'\\''s fine'`);
  });

  it('manifest verification catches a changed byte, a missing file and a changed size', async () => {
    const { bundle } = await scriptBundle(join(tmp.dir, 'b'), 'printf abcdef > artifacts/a.bin\nprintf xyz > artifacts/b.bin\nprintf 123 > artifacts/c.bin');
    execFileSync('bash', [bundle.path('scripts/orbit/run.sh')]);
    expect((await verifyManifest(bundle.dir)).verified).toBe(true);
    await writeFile(bundle.path('artifacts/a.bin'), 'abcdeF');
    await writeFile(bundle.path('artifacts/b.bin'), 'xyzz');
    const { rm } = await import('node:fs/promises');
    await rm(bundle.path('artifacts/c.bin'));
    const check = await verifyManifest(bundle.dir);
    expect(check.verified).toBe(false);
    expect(check.mismatched).toEqual([
      { path: 'a.bin', reason: 'sha256 differs from manifest' },
      { path: 'b.bin', reason: 'size 4 != manifest 3' },
    ]);
    expect(check.missing).toEqual(['c.bin']);
    expect(check.verifiedFiles).toEqual(['job.log', 'nvml-audit.jsonl', 'runtime-precheck.log']);
  });

  it('refuses a manifest that names a path outside artifacts/', async () => {
    const { bundle } = await scriptBundle(join(tmp.dir, 'b'), 'true');
    await writeFile(
      bundle.path('artifacts/manifest.json'),
      JSON.stringify({ schemaVersion: 'orbit.manifest.v1', createdAt: 'now', files: [{ path: '../../etc/passwd', size: 1, sha256: 'a'.repeat(64) }] }),
    );
    const check = await verifyManifest(bundle.dir);
    expect(check.verified).toBe(false);
    expect(check.problems[0]?.path).toBe('artifacts/manifest.json.files[0].path');
  });
});
