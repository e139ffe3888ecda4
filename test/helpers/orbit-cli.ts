import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const ROOT = resolve(__dirname, '../..');

/** Runs bin/orbit as a user would; never rejects, returns the exit code and both outputs. */
export async function orbit(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 240_000): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(join(ROOT, 'bin/orbit'), args, { env, timeout: timeoutMs, maxBuffer: 16 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}
