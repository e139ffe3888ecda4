/**
 * A job that fills its host's disk. The real case runs a bundle by hand (scripts/orbit/run.sh) inside
 * a 48 MB tmpfs, where the job writes checkpoints until the disk is full: the wrapper's own records
 * (exit line, manifest, last_run.json, exit_code) must survive it, and the diagnosis must name the disk,
 * not "still going" or a plain exception. The others are bundles as a fuller disk leaves them: the
 * wrapper's files unwritten, the exit code only in runtime.log's exit line.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main';
import { diagnoseBundle, formatDiagnosis, type Diagnosis } from '../../src/diagnose';
import { makeBundle, runWrapper, useTempDirs } from './helpers';

const tempDir = useTempDirs();
const layer = (d: Diagnosis, id: string) => d.layers.find((l) => l.layer === id)!;
/** A runtime.log stamp `s` seconds from now (after the real start line of the run by hand). */
const at = (s: number) => new Date(Date.now() + s * 1000).toISOString();

/** Checkpoints of 4 MB each until a write fails: a training loop on a disk too small for it. */
const FILL_DISK = `import os
out = os.environ["ORBIT_ARTIFACTS_DIR"]
step = 0
while True:
    step += 1
    print("saving checkpoint step-%d" % step, flush=True)
    d = os.path.join(out, "checkpoints", "step-%d" % step)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "model.bin"), "wb") as f:
        f.write(os.urandom(4 * 1024 * 1024))
`;

describe('a job that fills the disk, on a real 48 MB tmpfs', () => {
  let mountPoint = '';
  let mounted = false;
  beforeAll(async () => {
    mountPoint = await mkdtemp(join(tmpdir(), 'orbit-diskfull-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', mountPoint], { stdio: 'pipe' });
      mounted = true;
    } catch (e) {
      throw new Error(`this test needs a 48 MB tmpfs: \`mount -t tmpfs -o size=48m tmpfs ${mountPoint}\` failed (run as root, or with CAP_SYS_ADMIN): ${String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim()}`);
    }
  });
  afterAll(async () => {
    if (mounted) execFileSync('umount', [mountPoint]);
    if (mountPoint) await rm(mountPoint, { recursive: true, force: true });
  });

  it('keeps the wrapper\'s records and names the disk (disk-full), not the exception alone', async () => {
    const dir = join(mountPoint, 'bundle');
    await makeBundle(dir, { command: ['python3', 'scripts/fill.py'], scripts: { 'fill.py': FILL_DISK } });
    const { exitCode } = await runWrapper(dir);
    // The wrapper's bookkeeping survived the full disk: exit code, last run, manifest, and the exit line.
    expect(exitCode).toBe(1);
    expect(JSON.parse(await readFile(join(dir, 'runtime/last_run.json'), 'utf8')).exitCode).toBe(1);
    expect(existsSync(join(dir, 'artifacts/manifest.json'))).toBe(true);
    expect(existsSync(join(dir, '.orbit-disk-reserve'))).toBe(false);
    const log = await readFile(join(dir, 'runtime/runtime.log'), 'utf8');
    expect(log).toMatch(/ probe .* disk_free_mb=\d+ disk_total_mb=48 gpus=/);
    expect(log).toMatch(/ exit code=1 stopping=0 disk_free_mb=\d disk_total_mb=48\n[\s\S]* manifest written\n.* done\n$/);

    const d = await diagnoseBundle(dir);
    expect(d.exitCode).toBe(1);
    expect(d.verdict).toMatchObject({ layer: 'runtime', kind: 'disk-full' });
    expect(d.verdict?.summary).toMatch(/^the host's disk filled up \(\d MB free of 48 MB when the job ended\): "No space left on device" in artifacts\/task\.log$/);
    const files = d.verdict!.evidence.map((e) => e.file);
    expect(files).toContain('artifacts/task.log');
    expect(d.verdict!.evidence.find((e) => e.file === 'artifacts/task.log')?.text).toMatch(/No space left on device/);
    expect(d.verdict!.evidence.find((e) => e.file === 'runtime/runtime.log')?.text).toMatch(/ exit code=1 stopping=0 disk_free_mb=\d disk_total_mb=48$/);
    // The task layer still says what the process did.
    expect(layer(d, 'task')).toMatchObject({ status: 'failed', kind: 'exception' });
    expect(layer(d, 'task').summary).toMatch(/^the process raised OSError: \[Errno 28\] No space left on device/);

    const out: string[] = [];
    expect(await main(['diagnose', dir], (s) => out.push(s))).toBe(1);
    const text = out.join('\n');
    expect(text.split('\n')[0]).toBe(`${dir}: FAILED at runtime (did the bundle stage and probe, on a host with disk to spare that kept answering? no)`);
    expect(text.split('\n')[1]).toMatch(/^ {2}the host's disk filled up/);
    expect(text).toContain('evidence (runtime):');
  });
});

describe('a bundle the full disk left without its records', () => {
  /** A run of `job.sh` by hand, then its runtime/ and artifacts/ as a disk full before the end leaves them. */
  async function leftBy(fullDisk: { exitCodeFile?: string; lastRun?: boolean; runtimeTail: (log: string) => string; taskLog?: string }) {
    const dir = join(await tempDir(), 'bundle');
    await makeBundle(dir, { command: ['bash', 'scripts/job.sh'], scripts: { 'job.sh': 'echo "epoch 1"; exit 1\n' } });
    await runWrapper(dir);
    const log = await readFile(join(dir, 'runtime/runtime.log'), 'utf8');
    // Up to the start of the job: the lines before it are the wrapper's, as written.
    const head = log.slice(0, log.indexOf(' exit code='));
    await writeFile(join(dir, 'runtime/runtime.log'), fullDisk.runtimeTail(head.slice(0, head.lastIndexOf('\n') + 1)));
    await writeFile(join(dir, 'runtime/exit_code'), fullDisk.exitCodeFile ?? '');
    if (!fullDisk.lastRun) await rm(join(dir, 'runtime/last_run.json'));
    await rm(join(dir, 'artifacts/manifest.json'));
    if (fullDisk.taskLog !== undefined) await writeFile(join(dir, 'artifacts/task.log'), fullDisk.taskLog);
    return dir;
  }

  it('reads the exit code from runtime.log\'s exit line when runtime/exit_code is empty, and names the disk', async () => {
    const dir = await leftBy({
      runtimeTail: (head) =>
        `${head}${at(1)} exit code=1 stopping=0\n${at(1.1)} audit stopped\n${at(1.3)} manifest FAILED\n${at(1.4)} done\n`,
    });
    const d = await diagnoseBundle(dir);
    expect(d.exitCode).toBe(1);
    expect(d.verdict).toMatchObject({ layer: 'runtime', kind: 'disk-full' });
    expect(d.verdict?.summary).toMatch(
      /^the host's disk filled up \(\d+ MB free of \d+ MB when the wrapper started\): the wrapper could not write artifacts\/manifest\.json; runtime\/exit_code was not written: exit code 1 is from the exit line of runtime\/runtime\.log$/,
    );
    expect(d.verdict?.evidence.map((e) => e.text)).toEqual([
      expect.stringMatching(/^\S+Z exit code=1 stopping=0$/),
      expect.stringMatching(/^\S+Z manifest FAILED$/),
      expect.stringMatching(/ probe host=.* disk_free_mb=\d+ disk_total_mb=\d+ gpus=/),
    ]);
    // Not "still going": the task layer has the exit code too.
    expect(layer(d, 'task')).toMatchObject({ status: 'failed', kind: 'exit' });
    expect(layer(d, 'task').summary).toMatch(/^exited with code 1 after [\d.]+s/);
    expect(formatDiagnosis(d)).not.toContain('still going');
  });

  it('names the disk from ENOSPC in the task log and a near-zero exit reading, over the exception', async () => {
    const dir = await leftBy({
      lastRun: false,
      taskLog: 'step 1\nTraceback (most recent call last):\n  File "train.py", line 9, in <module>\n    torch.save(model, path)\nOSError: [Errno 28] No space left on device\n',
      runtimeTail: (head) => `${head}${at(1)} exit code=1 stopping=0 disk_free_mb=0 disk_total_mb=20480\n`,
    });
    const d = await diagnoseBundle(dir);
    expect(d.verdict).toMatchObject({ layer: 'runtime', kind: 'disk-full' });
    expect(d.verdict?.summary).toBe(
      `the host's disk filled up (0 MB free of 20480 MB when the job ended): "No space left on device" in artifacts/task.log; runtime/exit_code was not written: exit code 1 is from the exit line of runtime/runtime.log`,
    );
    expect(d.verdict?.evidence.map((e) => [e.file, e.line])).toEqual([
      ['artifacts/task.log', 5],
      ['runtime/runtime.log', expect.any(Number)],
    ]);
    expect(layer(d, 'task')).toMatchObject({ status: 'failed', kind: 'exception', summary: expect.stringMatching(/^the process raised OSError: \[Errno 28\] No space left on device \(exit 1/) });
  });

  it('does not call a clean run disk-full for a nearly full disk, nor a failure without a sign of the disk', async () => {
    const clean = await leftBy({
      exitCodeFile: '0\n',
      lastRun: true,
      runtimeTail: (head) => `${head}${at(1)} exit code=0 stopping=0 disk_free_mb=1 disk_total_mb=48\n${at(1.3)} manifest written\n`,
    });
    expect(layer(await diagnoseBundle(clean), 'runtime')).toMatchObject({ status: 'ok' });
    const failed = await leftBy({ exitCodeFile: '1\n', lastRun: true, runtimeTail: (head) => `${head}${at(1)} exit code=1 stopping=0 disk_free_mb=9000 disk_total_mb=20480\n` });
    const d = await diagnoseBundle(failed);
    expect(layer(d, 'runtime').status).toBe('ok');
    expect(d.verdict).toMatchObject({ layer: 'task', kind: 'exit' });
  });
});
