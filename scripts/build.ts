/**
 * `npm run build`: the compiled JavaScript bin/orbit runs instead of the TypeScript sources.
 *   1. tsc -p tsconfig.build.json: src/ and temporal/ into dist/src/ and dist/temporal/;
 *   2. the files the code reads beside itself (bundle templates, the plugins' Python scripts: every
 *      non-TypeScript file under src/) copied to the same places under dist/src/;
 *   3. the workflow code bundled once into dist/workflow-bundle.js (a worker from dist loads it
 *      instead of running webpack at each start);
 *   4. dist/.built, last, dated when the build began: bin/orbit uses dist only while no source is
 *      newer than it. A failed or interrupted build leaves no stamp, so bin/orbit runs the sources.
 * `--if-stale` builds only when dist/ is not fresh by that same test (scripts/setup.sh, npm test).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { DefaultLogger } from '@temporalio/worker';
import { repoRoot } from '../src/paths';
import { WORKFLOW_BUNDLE_FILE, writeWorkflowBundle } from '../src/worker/workflow-bundle';

const ROOT = repoRoot();
const DIST = join(ROOT, 'dist');
const STAMP = join(DIST, '.built');

/** Every file under `dir` (relative paths), Python caches left out. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !e.parentPath.split('/').includes('__pycache__') && !e.name.endsWith('.pyc'))
    .map((e) => relative(dir, join(e.parentPath, e.name)));
}

/**
 * bin/orbit's test, the same files: dist/.built is there and no file under src/ or temporal/ (but
 * temporal/data/), no tsconfig*.json and not package-lock.json is newer than it.
 */
function distIsFresh(): boolean {
  if (!existsSync(STAMP)) return false;
  const built = statSync(STAMP).mtimeMs;
  const sources = [
    ...filesUnder(join(ROOT, 'src')).map((f) => join(ROOT, 'src', f)),
    ...filesUnder(join(ROOT, 'temporal'))
      .filter((f) => f !== 'data' && !f.startsWith('data/'))
      .map((f) => join(ROOT, 'temporal', f)),
    ...readdirSync(ROOT).filter((f) => /^tsconfig.*\.json$/.test(f) || f === 'package-lock.json').map((f) => join(ROOT, f)),
  ];
  return sources.every((f) => statSync(f).mtimeMs <= built);
}

async function main(): Promise<void> {
  if (process.argv.includes('--if-stale') && distIsFresh()) {
    console.log('build: dist/ is fresh, nothing to do');
    return;
  }
  const t0 = Date.now();
  rmSync(DIST, { recursive: true, force: true });
  mkdirSync(DIST);
  // Written now, renamed at the end: its time is the build's start, so a source saved during the build counts as newer.
  const pending = `${STAMP}.pending`;
  writeFileSync(pending, '');

  const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (tsc.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed (exit ${tsc.status ?? tsc.signal})`);

  const assets = filesUnder(join(ROOT, 'src')).filter((f) => !f.endsWith('.ts'));
  for (const f of assets) {
    const to = join(DIST, 'src', f);
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(join(ROOT, 'src', f), to);
  }

  const bytes = await writeWorkflowBundle(join(ROOT, 'src', 'workflows', 'index.ts'), join(DIST, WORKFLOW_BUNDLE_FILE), new DefaultLogger('WARN'));

  renameSync(pending, STAMP);
  console.log(`build: dist/ in ${((Date.now() - t0) / 1000).toFixed(1)} s (${assets.length} assets, ${WORKFLOW_BUNDLE_FILE} ${(bytes / 2 ** 20).toFixed(1)} MiB)`);
}

main().catch((e: Error) => {
  console.error(`build: ${e.message}`);
  process.exit(1);
});
