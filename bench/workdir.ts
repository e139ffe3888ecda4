/**
 * Figure 12, staging the user's workdir (src/plugins/workload/workdir.ts) against rsync doing the same
 * selection, side by side on one generated project:
 *   - Copy time: Orbit's scan + stage into a fresh bundle (every file hashed for inputs/workdir.json)
 *     vs `rsync -a --filter=':- .gitignore' --exclude=.git` into a fresh folder, interleaved, median
 *     of `--reps`. Both must select the same files (checked). Target: orbit/rsync <= 2.
 *   - Refusal of an oversized folder: time to refuse (the walk stops at twice the limit) vs the
 *     time of a full scan of the same folder. Target: refusal <= full scan.
 * The project: `--files` small source files in nested folders (.gitignore at two levels), a few
 * larger data files, and ignored folders (a venv-like tree, caches) that must not be copied.
 *
 *   npx tsx bench/workdir.ts [--tiny] [--files N] [--reps R]
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { Bundle } from '../src/bundle';
import { MB, scanSource, scanWorkdir, stageWorkdir } from '../src/plugins/workload/workdir';
import { jobSpec, tempDir } from '../test/helpers/bundles';
import { line, machine, median, parseArgs, runMain, s, verdict } from './lib';

const B = 'workdir';
const run = promisify(execFile);
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

async function makeProject(root: string, files: number, dataMb: number): Promise<void> {
  await writeFile(join(root, '.gitignore'), '.venv/\n__pycache__/\n*.ckpt\nruns/\n');
  for (let i = 0; i < files; i++) {
    const dir = join(root, 'src', `pkg${i % 20}`, `mod${i % 7}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `f${i}.py`), `# file ${i}\n${'x = 1\n'.repeat(20 + (i % 200))}`);
    if (i % 50 === 0) {
      await mkdir(join(dir, '__pycache__'), { recursive: true });
      await writeFile(join(dir, '__pycache__', `f${i}.pyc`), randomBytes(2000));
    }
  }
  // No negation here: rsync's dir-merge does not let a deeper `!pattern` re-include what a higher
  // .gitignore drops, git does (and Orbit, checked against git ls-files in test/plugins/workdir.test.ts).
  await writeFile(join(root, 'src', '.gitignore'), 'generated/\n');
  await mkdir(join(root, 'src', 'generated'), { recursive: true });
  await writeFile(join(root, 'src', 'generated', 'big.bin'), randomBytes(MB));
  await mkdir(join(root, 'data'), { recursive: true });
  for (let i = 0; i < 4; i++) await writeFile(join(root, 'data', `part${i}.bin`), randomBytes((dataMb * MB) / 4));
  await writeFile(join(root, 'model.ckpt'), randomBytes(4 * MB));
  for (let i = 0; i < files / 2; i++) {
    const dir = join(root, '.venv', 'lib', `p${i % 30}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `m${i}.py`), 'pass\n');
  }
}

async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) if (e.isFile()) out.push(relative(root, join(e.parentPath, e.name)));
  return out.sort();
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const args = parseArgs();
  const files = args.num('files', args.tiny ? 300 : 3000);
  const reps = args.num('reps', args.tiny ? 2 : 5);
  const dataMb = args.tiny ? 4 : 40;
  console.log(`# ${await machine()}`);
  const tmp = await tempDir('orbit-bench-workdir-');
  try {
    const project = join(tmp.dir, 'project');
    await mkdir(project, { recursive: true });
    await makeProject(project, files, dataMb);
    const source = { kind: 'local' as const, path: project, exclude: [], maxSizeMb: 10_000 };
    const scan = await scanSource(source);
    line(B, `project: ${scan.files.length} files staged, ${(scan.totalBytes / MB).toFixed(1)} MiB (${scan.ignoredByGitignore} entries ignored by .gitignore); load ${load()}`);

    const ours: number[] = [];
    const theirs: number[] = [];
    const raw: number[] = [];
    for (let r = 0; r < reps; r++) {
      const bundleDir = join(tmp.dir, `bundle-${r}`);
      const rsyncDir = join(tmp.dir, `rsync-${r}`);
      ours.push(
        await time(async () => {
          await scanSource(source);
          const bundle = await Bundle.create(bundleDir, jobSpec());
          await stageWorkdir(bundle, source, 'workdir');
        }),
      );
      theirs.push(await time(() => run('rsync', ['-a', '--filter=:- .gitignore', '--exclude=.git', `${project}/`, `${rsyncDir}/`])));
      // The same files copied by node with nothing else (no scan, no hash): this runtime's own floor.
      const rawDir = join(tmp.dir, `raw-${r}`);
      raw.push(
        await time(async () => {
          for (const f of scan.files) {
            await mkdir(dirname(join(rawDir, f.path)), { recursive: true });
            await copyFile(join(project, f.path), join(rawDir, f.path));
          }
        }),
      );
      await rm(rawDir, { recursive: true, force: true });
      if (r === 0) {
        const a = await listFiles(join(bundleDir, 'inputs', 'workdir'));
        const b = await listFiles(rsyncDir);
        if (a.join('\n') !== b.join('\n')) throw new Error(`orbit and rsync selected different files: ${a.length} vs ${b.length}: ${a.filter((x) => !b.includes(x)).concat(b.filter((x) => !a.includes(x))).join(', ')}`);
      }
      await rm(bundleDir, { recursive: true, force: true });
      await rm(rsyncDir, { recursive: true, force: true });
    }
    const ratio = median(ours) / median(theirs);
    line(B, `copy: orbit ${s(median(ours))} (scan + stage + sha256 of every file), rsync ${s(median(theirs))}, median of ${reps}; ratio orbit/rsync ${ratio.toFixed(2)} (target <= 2) ${verdict(ratio <= 2)}; same ${scan.files.length} files; load ${load()}`);
    line(B, `copy: raw node copy of the same files (mkdir + copyFile, one at a time) ${s(median(raw))}; ratio orbit/raw-node ${(median(ours) / median(raw)).toFixed(2)}`);

    // Refusal: the same folder with a limit of a tenth of its size.
    const limit = scan.totalBytes / 10;
    const refuse: number[] = [];
    const full: number[] = [];
    let message = '';
    for (let r = 0; r < reps; r++) {
      refuse.push(await time(async () => { message = (await scanWorkdir(project, { maxBytes: limit })).problems[0]?.message ?? ''; }));
      full.push(await time(() => scanWorkdir(project, { maxBytes: 100 * scan.totalBytes })));
    }
    if (!message) throw new Error('the oversized folder was not refused');
    line(B, `refusal over a limit of ${(limit / MB).toFixed(1)} MiB: ${s(median(refuse))} vs full scan ${s(median(full))}; ratio ${(median(refuse) / median(full)).toFixed(2)} (target <= 1) ${verdict(median(refuse) <= median(full))}; load ${load()}`);
    line(B, `refusal message: ${message.slice(0, 160)}...`);
  } finally {
    await tmp.cleanup();
  }
}

runMain(main);
