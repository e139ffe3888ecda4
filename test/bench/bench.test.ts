/**
 * The benchmarks (bench/*.ts) still run: each with --tiny against one dev server of this file's
 * own, asserting that it prints its figure lines. Not a timed test: the figures' values are not
 * checked (docs/benchmarks.md has the measured ones).
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DevServer } from '../../temporal/dev-server';
import { tempDir } from '../helpers/bundles';
import { startTestDevServer } from '../helpers/dev-server';

const REPO = resolve(__dirname, '../..');

/** Each script and the lines it must print (one regex per figure). */
const EXPECTED: Record<string, RegExp[]> = {
  overhead: [/^\[overhead\] per-run time .*raw .*orbit/m, /^\[overhead\] ratio orbit\/raw \d+\.\d+ \(target <= 1\.10\)/m, /^\[overhead\] fixed overhead orbit-raw -?\d+\.\d+ s/m, /^\[overhead\] phases of an orbit run/m],
  collect: [/^\[collect\] throughput .* ratio orbit\/rsync \d+\.\d+ \(target >= 1\.0\)/m, /^\[collect\] cpu per GiB mixed .* ratio orbit\/rsync \d+\.\d+ \(goal <= 1\.0\) (MET|MISSED)/m, /^\[collect\] throughput mixed with a CPU burner .* ratio orbit\/rsync \d+\.\d+ \(goal >= 1\.0\) (MET|MISSED)/m, /^\[collect\] resume orbit: .* extra .*% of the total \(target <= 2%\)/m, /^\[collect\] resume rsync: .* extra/m],
  hostloss: [/^\[hostloss\] detection latency, host killed .* ratio to the bound \d+\.\d+/m, /^\[hostloss\] detection latency, host frozen .* ratio to the bound \d+\.\d+/m, /^\[hostloss\] raw ssh/m],
  scale: [/^\[scale\] N \d+: .*last completed after/m, /^\[scale\] where a run's time went \(phases from its result\): start->first phase median \d+\.\d+ s .*; collecting median \d+\.\d+ s/m, /^\[scale\] failures \d+ of \d+/m, /^\[scale\] worker peak RSS \d+ MiB/m, /^\[scale\] history events per run .* median \d+/m, /^\[scale\] history events flat in job duration/m],
  fleet: [
    /^\[fleet\] single leased .* Orbit's single-run overhead -?\d+\.\d+ s/m,
    /^\[fleet\] makespan \d+\.\d+ s .* ratio \d+\.\d+ \(target <= 1\.10\)/m,
    /^\[fleet\] slot utilization while queued \d+\.\d+% \(target >= 90%\)/m,
    /^\[fleet\] overlapping GPU leases \d+ \(target 0\)/m,
    /^\[fleet\] slot free -> next job start: median \d+\.\d+ s, p90 \d+\.\d+ s/m,
    /^\[fleet\] {3}split, median \(p90\): /m,
    /^\[fleet\] fleet history: \d+ run\(s\) .*max \d+/m,
    /^\[fleet\] history events per run \(runBundle, leased/m,
  ],
  store: [
    /^\[store\] submit .* ratio raw\/orbit \d+\.\d+ \(target >= 0\.9\)/m,
    /^\[store\] resubmit the same bundle: moved \d+ of \d+ bytes = \d+\.\d+% \(worst of \d+; target < 1%\)/m,
    /^\[store\] collect .* ratio local\/\(local \+ S3\) \d+\.\d+ \(target >= 0\.8\)/m,
    /^\[store\] moto RSS \d+ MiB at the end/m,
  ],
  health: [
    /^\[health\] detection latency not-finite \d+\.\d+ s \(ratio to the bound \d+\.\d+, target <= 1\.00\)/m,
    /^\[health\] detection latency stalled +\d+\.\d+ s/m,
    /^\[health\] detection latency no-output +\d+\.\d+ s/m,
    /^\[health\] detection latency gpu-memory \d+\.\d+ s/m,
    /^\[health\] monitor CPU per run-minute on\/off \d+\.\d+ \(medians .* target <= 1\.20\)/m,
  ],
  workdir: [
    /^\[workdir\] project: \d+ files staged/m,
    /^\[workdir\] copy: orbit \d+\.\d+ s .* ratio orbit\/rsync \d+\.\d+ \(target <= 2\) (MET|MISSED); same \d+ files/m,
    /^\[workdir\] refusal over a limit of .* ratio \d+\.\d+ \(target <= 1\)/m,
  ],
  cli: [
    /^\[cli\] load average \(1, 5, 15 min\): /m,
    /^\[cli\] ratio bin\/orbit --help \/ node -e 0 \d+\.\d+ \(target <= 2\.0\)/m,
    /^\[cli\] ratio bin\/orbit status ID \/ temporal workflow describe -w ID \d+\.\d+ \(target <= 3\.0\)/m,
    /^\[cli\] ratio bin\/orbit list \/ temporal workflow list \d+\.\d+ \(target <= 3\.0\)/m,
  ],
};

function runScript(name: string, temporalAddress: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(join(REPO, 'node_modules/.bin/tsx'), [join(REPO, 'bench', `${name}.ts`), '--tiny', '--temporal', temporalAddress], {
      cwd: REPO,
      env: { ...process.env, PATH: `${join(REPO, '.venv/bin')}:${process.env.PATH}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('close', (code) => done({ code, stdout, stderr }));
  });
}

describe('benchmarks run on a tiny size and print their figures', () => {
  let server: DevServer;
  let tmp: Awaited<ReturnType<typeof tempDir>>;

  beforeAll(async () => {
    tmp = await tempDir('orbit-bench-test-');
    ({ server } = await startTestDevServer({ dataDir: join(tmp.dir, 'temporal') }));
  });

  afterAll(async () => {
    await server?.stop();
    await tmp?.cleanup();
  });

  for (const [name, patterns] of Object.entries(EXPECTED)) {
    it.concurrent(`bench/${name}.ts --tiny`, async () => {
      const r = await runScript(name, server.address);
      expect(r.code, `${name} failed:\n${r.stdout}\n${r.stderr.slice(-4000)}`).toBe(0);
      for (const p of patterns) expect(r.stdout).toMatch(p);
    }, 240_000); // five at once on two cores: a tiny run took up to 90 s there
  }
});
