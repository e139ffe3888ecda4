import { ERROR } from '../common/errors';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { sha256File, walkFiles } from './hash';
import {
  ARTIFACTS_DIR,
  FROZEN_FILE,
  FROZEN_PARTS,
  GPU_AUDIT_SCRIPT,
  INPUTS_DIR,
  JOB_FILE,
  MANIFEST_SCRIPT,
  PRECHECK_CONFIG,
  PRECHECK_SCRIPT,
  RUN_SCRIPT,
  RUNTIME_DIR,
  SCRIPTS_DIR,
} from '../common/layout';
import { formatProblem, parseWith, ValidationError, type Problem } from './parse';
import { renderRuntimeScripts } from './render';
import { isSafeRelativePath, jobSpecSchema, type JobSpec, type JobSpecInput } from './schema';


/** Thrown when a frozen bundle's content no longer matches its digest. */
export class BundleTamperedError extends Error {
  constructor(
    readonly dir: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`bundle ${dir} changed after it was frozen: digest ${actual} != frozen ${expected}; build a new bundle instead of editing one`);
    this.name = ERROR.bundleTampered;
  }
}

/** Thrown when a bundle is written to after it was frozen, or created over an existing one. */
export class BundleStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = ERROR.bundleState;
  }
}

/**
 * A bundle directory: `job.json`, `inputs/`, `scripts/`, `runtime/`, `artifacts/`.
 * Built by the control plane, frozen by a digest over job.json + inputs + scripts, readable without Orbit.
 */
export class Bundle {
  private constructor(
    readonly dir: string,
    readonly spec: JobSpec,
  ) {}

  /** Creates the five-part layout in an empty or missing `dir`, with job.json and the core runtime scripts. */
  static async create(dir: string, specInput: JobSpecInput): Promise<Bundle> {
    const parsed = parseWith(jobSpecSchema, specInput);
    if (!parsed.ok) throw new ValidationError('job.json', parsed.problems);
    const abs = resolve(dir);
    if (existsSync(abs) && (await readdir(abs)).length > 0) {
      throw new BundleStateError(`bundle directory ${abs} already exists and is not empty; choose a new one`);
    }
    for (const part of [INPUTS_DIR, SCRIPTS_DIR, RUNTIME_DIR, ARTIFACTS_DIR]) await mkdir(join(abs, part), { recursive: true });
    const bundle = new Bundle(abs, parsed.value);
    await writeFile(join(abs, JOB_FILE), JSON.stringify(parsed.value, null, 2) + '\n');
    for (const script of renderRuntimeScripts(parsed.value)) await bundle.writeScript(script.rel, script.data, script.executable);
    return bundle;
  }

  /** Opens an existing bundle; throws ValidationError if job.json is missing or invalid. */
  static async open(dir: string): Promise<Bundle> {
    const abs = resolve(dir);
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(join(abs, JOB_FILE), 'utf8'));
    } catch (e) {
      throw new ValidationError(`bundle ${abs}`, [{ path: JOB_FILE, message: `cannot be read as JSON (${(e as Error).message})` }]);
    }
    const parsed = parseWith(jobSpecSchema, raw, JOB_FILE);
    if (!parsed.ok) throw new ValidationError(`bundle ${abs}`, parsed.problems);
    return new Bundle(abs, parsed.value);
  }

  path(rel: string): string {
    return join(this.dir, rel);
  }

  /** Writes a file under `inputs/`. */
  async writeInput(rel: string, data: string | Buffer): Promise<void> {
    await this.writePart(INPUTS_DIR, rel, data, false);
  }

  /** Copies a local file under `inputs/`. */
  async copyInput(source: string, rel: string): Promise<void> {
    const target = await this.partPath(INPUTS_DIR, rel);
    await copyFile(source, target);
  }

  /** Writes a file under `scripts/`. */
  async writeScript(rel: string, data: string | Buffer, executable = false): Promise<void> {
    await this.writePart(SCRIPTS_DIR, rel, data, executable);
  }

  private async partPath(part: string, rel: string): Promise<string> {
    if (!isSafeRelativePath(rel)) throw new BundleStateError(`${part}/${rel}: not a safe relative path`);
    if (await this.frozenDigest()) throw new BundleStateError(`bundle ${this.dir} is frozen; it cannot be changed`);
    const target = join(this.dir, part, rel);
    await mkdir(dirname(target), { recursive: true });
    return target;
  }

  private async writePart(part: string, rel: string, data: string | Buffer, executable: boolean): Promise<void> {
    const target = await this.partPath(part, rel);
    await writeFile(target, data);
    if (executable) await chmod(target, 0o755);
  }

  /** Content digest over job.json + inputs/ + scripts/: paths, sizes and sha256 of every file, in order. */
  async computeDigest(): Promise<string> {
    const h = createHash('sha256');
    h.update('orbit.bundle.v1\n');
    for (const part of FROZEN_PARTS) {
      const files = part === JOB_FILE ? [{ path: JOB_FILE, size: 0 }] : await walkFiles(this.dir, part);
      for (const f of files) h.update(`${f.path}\0${await sha256File(join(this.dir, f.path))}\n`);
    }
    return `sha256:${h.digest('hex')}`;
  }

  /** Freezes the bundle: validates it, records its digest in runtime/frozen.json and returns the digest. */
  async freeze(): Promise<string> {
    const problems = await this.validate();
    if (problems.length) throw new ValidationError(`bundle ${this.dir}`, problems);
    const digest = await this.computeDigest();
    const tmp = this.path(FROZEN_FILE + '.tmp');
    await writeFile(tmp, JSON.stringify({ digest, frozenAt: new Date().toISOString() }, null, 2) + '\n');
    await rename(tmp, this.path(FROZEN_FILE));
    return digest;
  }

  /** The digest recorded when frozen, or undefined while the bundle is still being built. */
  async frozenDigest(): Promise<string | undefined> {
    try {
      const raw = JSON.parse(await readFile(this.path(FROZEN_FILE), 'utf8')) as { digest?: unknown };
      return typeof raw.digest === 'string' ? raw.digest : undefined;
    } catch {
      return undefined;
    }
  }

  /** Throws BundleTamperedError unless the content still matches `expected` (default: the frozen digest). */
  async assertDigest(expected?: string): Promise<string> {
    const want = expected ?? (await this.frozenDigest());
    if (!want) throw new BundleStateError(`bundle ${this.dir} is not frozen; freeze it before running it`);
    const actual = await this.computeDigest();
    if (actual !== want) throw new BundleTamperedError(this.dir, want, actual);
    return actual;
  }

  /** Every problem that keeps this directory from being a runnable bundle, each naming its file or field. */
  async validate(): Promise<Problem[]> {
    return validateBundleDir(this.dir);
  }
}

/** Checks a directory against the bundle contract and returns precise problems (empty when valid). */
export async function validateBundleDir(dir: string): Promise<Problem[]> {
  const abs = resolve(dir);
  const problems: Problem[] = [];
  for (const part of [INPUTS_DIR, SCRIPTS_DIR, RUNTIME_DIR, ARTIFACTS_DIR]) {
    if (!existsSync(join(abs, part))) problems.push({ path: `${part}/`, message: 'folder is missing' });
  }
  let spec: JobSpec | undefined;
  try {
    const parsed = parseWith(jobSpecSchema, JSON.parse(await readFile(join(abs, JOB_FILE), 'utf8')), JOB_FILE);
    if (parsed.ok) spec = parsed.value;
    else problems.push(...parsed.problems);
  } catch (e) {
    problems.push({ path: JOB_FILE, message: `missing or not JSON (${(e as Error).message})` });
  }
  for (const part of [INPUTS_DIR, SCRIPTS_DIR]) {
    try {
      await walkFiles(abs, part);
    } catch (e) {
      problems.push({ path: `${part}/`, message: (e as Error).message });
    }
  }
  for (const rel of [RUN_SCRIPT, MANIFEST_SCRIPT, PRECHECK_SCRIPT, PRECHECK_CONFIG, GPU_AUDIT_SCRIPT]) {
    if (!existsSync(join(abs, rel))) problems.push({ path: rel, message: 'core runtime script is missing; rebuild the bundle' });
  }
  if (spec) {
    spec.inputs.forEach((input, i) => {
      if (!existsSync(join(abs, INPUTS_DIR, input.path))) {
        problems.push({ path: `${JOB_FILE}.inputs[${i}].path`, message: `declares inputs/${input.path}, which is not in the bundle` });
      }
    });
    spec.precheck.provenance.forEach((check, i) => {
      if (!existsSync(join(abs, check.manifest))) {
        problems.push({ path: `${JOB_FILE}.precheck.provenance[${i}].manifest`, message: `names ${check.manifest}, which is not in the bundle` });
      }
    });
    spec.entrypoint.command.forEach((arg, i) => {
      if (arg.startsWith(`${SCRIPTS_DIR}/`) && !existsSync(join(abs, arg))) {
        problems.push({ path: `${JOB_FILE}.entrypoint.command[${i}]`, message: `names ${arg}, which is not in the bundle` });
      }
    });
  }
  return problems;
}

export { formatProblem };
