import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

/** A temp folder removed by the returned cleanup. */
export async function tempDir(prefix = 'orbit-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A fresh temporary folder per call, removed after the test. */
export function useTempDirs(prefix = 'orbit-test-'): () => Promise<string> {
  const made: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(made.splice(0).map((cleanup) => cleanup()));
  });
  return async () => {
    const { dir, cleanup } = await tempDir(prefix);
    made.push(cleanup);
    return dir;
  };
}
