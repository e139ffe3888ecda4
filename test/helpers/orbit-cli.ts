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

/**
 * Runs bin/orbit in a pseudo-terminal (util-linux `script`), as a user at a terminal sees it: stdout
 * and stderr together in `output`, CRLF line ends turned into LF.
 */
export async function orbitInTerminal(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 240_000): Promise<{ code: number; output: string }> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [join(ROOT, 'bin/orbit'), ...args].map(quote).join(' ');
  try {
    const r = await run('script', ['-q', '-e', '-c', command, '/dev/null'], { env, timeout: timeoutMs, maxBuffer: 16 << 20 });
    return { code: 0, output: r.stdout.replace(/\r\n/g, '\n') };
  } catch (e) {
    const err = e as { code?: number; stdout?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, output: (err.stdout ?? '').replace(/\r\n/g, '\n') };
  }
}
