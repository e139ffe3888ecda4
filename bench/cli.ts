/**
 * Figure 10, start-up: whole commands timed from outside (spawn to exit), side by side in one run,
 * the repetitions interleaved (each round runs every command once, in turn), medians and ratios:
 *   - `bin/orbit --help` against `node -e 0` (the floor any node command pays); target <= 2x;
 *   - `bin/orbit status ID` against `temporal workflow describe -w ID`, and `bin/orbit list` against
 *     `temporal workflow list` (the Temporal CLI, a Go binary, doing the same round trips); target
 *     <= 3x each. ID is a workflow started with `temporal workflow start` of a type no worker serves.
 * bin/orbit runs the compiled dist/ when `npm run build` made it and it is fresh, else the sources
 * through tsx: the first lines say which (and `node dist/src/cli/main.js --help` is timed beside it
 * when dist is there). The load average is printed before and after: a busy machine moves every row.
 *
 *   npx tsx bench/cli.ts [--tiny] [--reps 20] [--temporal HOST:PORT]
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTemporalBinary } from '../temporal/binary';
import { line, machine, median, parseArgs, REPO, run, runMain, s, temporal, verdict } from './lib';

const B = 'cli';

interface Timed {
  label: string;
  cmd: string;
  args: string[];
  ms: number[];
}

const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

/** Whether bin/orbit would run dist/ now: the same test as bin/orbit's. */
function orbitRunsDist(): boolean {
  const stamp = join(REPO, 'dist', '.built');
  if (!existsSync(stamp)) return false;
  const newer = execFileSync('bash', ['-c', `find src temporal tsconfig*.json package-lock.json -path temporal/data -prune -o -newer dist/.built -type f ! -name '*.pyc' -print -quit`], { cwd: REPO, encoding: 'utf8' });
  return newer.trim() === '';
}

async function main(): Promise<void> {
  const args = parseArgs();
  const reps = args.num('reps', args.tiny ? 2 : 20);
  line(B, `machine: ${await machine()}`);
  const temporalBin = findTemporalBinary();
  const dist = orbitRunsDist();
  line(B, `bin/orbit runs ${dist ? 'dist/ (compiled, fresh)' : 'the TypeScript sources through tsx (no fresh dist/: npm run build)'}; temporal: ${temporalBin}`);

  const t = await temporal(args);
  const home = await mkdtemp(join(tmpdir(), 'orbit-bench-cli-'));
  try {
    // TEMPORAL_ADDRESS for both: orbit then talks to that server (and starts nothing), as the Temporal CLI does.
    const env = { ...process.env, TEMPORAL_ADDRESS: t.address, TEMPORAL_NAMESPACE: 'default', ORBIT_HOME: home, PATH: `${join(REPO, '.venv/bin')}:${process.env.PATH}` };
    const id = `bench-cli-${randomUUID().slice(0, 8)}`;
    await run(temporalBin, ['workflow', 'start', '--type', 'runBundle', '--task-queue', `bench-cli-nobody-${id}`, '--workflow-id', id, '--input', '{}'], { env });

    const orbit = join(REPO, 'bin', 'orbit');
    const commands: Timed[] = [
      { label: 'node -e 0', cmd: process.execPath, args: ['-e', '0'], ms: [] },
      { label: 'temporal --help', cmd: temporalBin, args: ['--help'], ms: [] },
      { label: 'bin/orbit --help', cmd: orbit, args: ['--help'], ms: [] },
      ...(existsSync(join(REPO, 'dist', 'src', 'cli', 'main.js')) ? [{ label: 'node dist/src/cli/main.js --help', cmd: process.execPath, args: [join(REPO, 'dist', 'src', 'cli', 'main.js'), '--help'], ms: [] }] : []),
      { label: 'temporal workflow describe -w ID', cmd: temporalBin, args: ['workflow', 'describe', '-w', id], ms: [] },
      { label: 'bin/orbit status ID', cmd: orbit, args: ['status', id], ms: [] },
      { label: 'temporal workflow list', cmd: temporalBin, args: ['workflow', 'list'], ms: [] },
      { label: 'bin/orbit list', cmd: orbit, args: ['list'], ms: [] },
    ];
    // One round unmeasured (page cache, the server's first queries), then `reps` interleaved rounds.
    for (const c of commands) await run(c.cmd, c.args, { env, allowFail: true });
    const loadBefore = load();
    for (let r = 0; r < reps; r++) {
      for (const c of commands) {
        const res = await run(c.cmd, c.args, { env, allowFail: true });
        if (res.code !== 0) throw new Error(`${c.label} exited ${res.code}: ${(res.stderr || res.stdout).trim().slice(-1000)}`);
        c.ms.push(res.ms);
      }
    }
    const loadAfter = load();
    line(B, `load average (1, 5, 15 min): ${loadBefore} before, ${loadAfter} after; ${reps} interleaved round(s)`);
    const med = new Map(commands.map((c) => [c.label, median(c.ms)]));
    for (const c of commands) line(B, `${c.label.padEnd(34)} median ${s(med.get(c.label)!)}  (min ${s(Math.min(...c.ms))}, max ${s(Math.max(...c.ms))})`);
    const ratio = (a: string, b: string, target: number) => {
      const x = med.get(a)! / med.get(b)!;
      line(B, `ratio ${a} / ${b} ${x.toFixed(2)} (target <= ${target.toFixed(1)}) ${verdict(x <= target)}`);
    };
    ratio('bin/orbit --help', 'node -e 0', 2);
    ratio('bin/orbit status ID', 'temporal workflow describe -w ID', 3);
    ratio('bin/orbit list', 'temporal workflow list', 3);
  } finally {
    await t.close();
    await rm(home, { recursive: true, force: true });
  }
}

runMain(main);
