/**
 * Where the repository is, found the same way from the TypeScript sources (src/, temporal/: tsx,
 * vitest) and from the compiled JavaScript (dist/src/, dist/temporal/: `npm run build`), whose
 * folders sit one level deeper.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

let root: string | undefined;

/** The repository's root: the nearest folder at or above this file's that holds a package.json. */
export function repoRoot(): string {
  return (root ??= findPackageRoot(__dirname));
}

/** The nearest folder at or above `from` that holds a package.json. */
export function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json in ${from} or any folder above it`);
  }
}
