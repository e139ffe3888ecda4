import { afterEach } from 'vitest';
import { tempDir } from './temp-dirs';

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
