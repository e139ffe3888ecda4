import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main';
import { diagnoseBundle, formatDiagnosis, type Diagnosis } from '../../src/diagnose';
import { FAKE_GPU_BIN, FIXTURES, LOSS_SERIES, makeBundle, runWrapper, useTempDirs } from './helpers';

const tempDir = useTempDirs();
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const layer = (d: Diagnosis, id: string) => d.layers.find((l) => l.layer === id)!;

/** A Python task that logs `losses` to artifacts/checkpoints/step-N/logging.jsonl the way a fitting loop would. */
function lossTask(losses: string, exit = 0): string {
  return `import json, math, os
losses = ${losses}
out = os.path.join(os.environ["ORBIT_ARTIFACTS_DIR"], "checkpoints", "step-%d" % len(losses))
os.makedirs(out)
with open(os.path.join(out, "logging.jsonl"), "w") as f:
    for i, loss in enumerate(losses, 1):
        f.write(json.dumps({"step": i, "loss": loss, "lr": 0.01}) + "\\n")
        print("step", i, "loss", loss, flush=True)
raise SystemExit(${exit})
`;
}

async function runAndDiagnose(parts: Parameters<typeof makeBundle>[1], run: Parameters<typeof runWrapper>[1] = {}) {
  const dir = join(await tempDir(), 'bundle');
  await makeBundle(dir, parts);
  const { exitCode } = await runWrapper(dir, run);
  return { dir, exitCode, diagnosis: await diagnoseBundle(dir) };
}

describe('orbit diagnose, on real bundles run by scripts/orbit/run.sh', () => {
  it('calls a run that staged, resolved, exited 0 and improved its loss healthy (CLI exit 0)', async () => {
    const { dir, exitCode, diagnosis } = await runAndDiagnose({
      command: ['python3', 'scripts/fit.py'],
      scripts: { 'fit.py': lossTask('[1.0 / (1 + 0.2 * i) for i in range(40)]') },
      progress: LOSS_SERIES,
      precheck: { python: { modules: [{ name: 'json' }] } },
    });
    expect(exitCode).toBe(0);
    expect(diagnosis.healthy).toBe(true);
    expect(diagnosis.layers.map((l) => [l.layer, l.status])).toEqual([
      ['runtime', 'ok'],
      ['precheck', 'ok'],
      ['task', 'ok'],
      ['progress', 'ok'],
      ['gpu', 'skipped'],
    ]);
    expect(layer(diagnosis, 'gpu').summary).toMatch(/^no GPU on the host: /);
    const out: string[] = [];
    expect(await main(['diagnose', dir], (s) => out.push(s))).toBe(0);
    expect(out.join('\n')).toContain(`${dir}: healthy (exit code 0)`);
  });

  it('names the precheck when a required module does not exist, and the entrypoint never starts (exit 86)', async () => {
    const { dir, exitCode, diagnosis } = await runAndDiagnose({
      command: ['bash', 'scripts/job.sh'],
      scripts: { 'job.sh': 'touch "$ORBIT_ARTIFACTS_DIR/started"\n' },
      precheck: { python: { modules: [{ name: 'json' }, { name: 'orbit_no_such_module' }] } },
    });
    expect(exitCode).toBe(86);
    expect(existsSync(join(dir, 'artifacts/started'))).toBe(false);
    expect(diagnosis.verdict?.layer).toBe('precheck');
    expect(diagnosis.verdict?.kind).toBe('missing-module');
    expect(layer(diagnosis, 'task').status).toBe('skipped');
    expect(diagnosis.verdict?.evidence[0]).toEqual({
      file: 'artifacts/runtime-precheck.log',
      line: expect.any(Number),
      text: "[FAIL] module orbit_no_such_module: not importable: ModuleNotFoundError: No module named 'orbit_no_such_module'",
    });
    const lastRun = JSON.parse(await readFile(join(dir, 'runtime/last_run.json'), 'utf8'));
    expect(lastRun.exitCode).toBe(86);
    const manifest = JSON.parse(await readFile(join(dir, 'artifacts/manifest.json'), 'utf8'));
    expect(manifest.files.map((f: { path: string }) => f.path)).toEqual(['runtime-precheck.log']);
    const out: string[] = [];
    expect(await main(['diagnose', dir], (s) => out.push(s))).toBe(1);
    const text = out.join('\n');
    expect(text).toContain(`${dir}: FAILED at precheck (did the dependencies resolve? no)`);
    expect(text).toMatch(new RegExp(`${dir}/artifacts/runtime-precheck.log:\\d+\\n\\s+\\[FAIL\\] module orbit_no_such_module`));
  });

  // The job.json shape of bundles built before precheck.provenance (modules[].fork): still read, same check.
  it('names the precheck when the module is not the staged fork: a hash differs', async () => {
    const init = 'VERSION = "1.0-fork"\n';
    const { exitCode, diagnosis } = await runAndDiagnose({
      command: ['python3', '-c', 'import mylib; print(mylib.VERSION)'],
      inputs: {
        'fork/mylib/__init__.py': init,
        'fork/mylib/core.py': 'def f():\n    return 2\n',
        'fork/FORK_MANIFEST.json': JSON.stringify({
          repository: 'https://example.org/me/mylib',
          commit: 'a'.repeat(40),
          files: { 'mylib/__init__.py': sha(init), 'mylib/core.py': sha('def f():\n    return 1\n') },
        }),
      },
      env: { PYTHONPATH: 'inputs/fork' },
      precheck: { python: { modules: [{ name: 'mylib', fork: 'inputs/fork/FORK_MANIFEST.json' }] } },
    });
    expect(exitCode).toBe(86);
    expect(diagnosis.verdict?.layer).toBe('precheck');
    expect(diagnosis.verdict?.kind).toBe('fork-mismatch');
    expect(diagnosis.verdict?.summary).toContain(
      `fork mylib: staged fork https://example.org/me/mylib@${'a'.repeat(40)} does not match its manifest: mylib/core.py: expected sha256 ${sha('def f():\n    return 1\n')}, found ${sha('def f():\n    return 2\n')}`,
    );
  });

  it('names the task layer, with the exception, when the task raises', async () => {
    const { dir, exitCode, diagnosis } = await runAndDiagnose({
      command: ['python3', 'scripts/job.py'],
      scripts: { 'job.py': 'print("loading")\ndef load():\n    raise ValueError("column 3 is not a number")\nload()\n' },
      logFile: 'logs/job.log',
    });
    expect(exitCode).toBe(1);
    expect(diagnosis.verdict?.layer).toBe('task');
    expect(diagnosis.verdict?.kind).toBe('exception');
    expect(diagnosis.verdict?.summary).toMatch(/^the process raised ValueError: column 3 is not a number \(exit 1 after [\d.]+s\)$/);
    expect(diagnosis.verdict?.evidence.map((e) => [e.file, e.text.trim()])).toEqual([
      ['artifacts/logs/job.log', 'Traceback (most recent call last):'],
      ['artifacts/logs/job.log', `File "${dir}/scripts/job.py", line 3, in load`],
      ['artifacts/logs/job.log', 'ValueError: column 3 is not a number'],
      ['runtime/runtime.log', expect.stringMatching(/ exit code=1 stopping=0 disk_free_mb=\d+ disk_total_mb=\d+$/)],
    ]);
  });

  it('names the progress layer when the loss goes NaN, though the process exited 0', async () => {
    const { exitCode, diagnosis } = await runAndDiagnose({
      command: ['python3', 'scripts/fit.py'],
      scripts: { 'fit.py': lossTask('[2.0, 1.5, 1.1, 0.9, float("nan"), float("nan")]') },
      progress: LOSS_SERIES,
    });
    expect(exitCode).toBe(0);
    expect(diagnosis.verdict?.layer).toBe('progress');
    expect(diagnosis.verdict?.kind).toBe('nan');
    expect(diagnosis.verdict?.summary).toBe('loss became NaN at step 5 (it was 0.9 at step 4); 2 of 6 points are not finite');
    expect(diagnosis.verdict?.evidence.map((e) => e.file)).toEqual(['artifacts/checkpoints/step-6/logging.jsonl', 'artifacts/checkpoints/step-6/logging.jsonl']);
    expect(diagnosis.verdict?.evidence[1]?.text).toContain('"loss": NaN');
  });

  it('names the progress layer when the loss stalls', async () => {
    const { diagnosis } = await runAndDiagnose({
      command: ['python3', 'scripts/fit.py'],
      scripts: { 'fit.py': lossTask('[0.7 + 0.001 * ((i * 7) % 5) for i in range(160)]') },
      progress: LOSS_SERIES,
    });
    expect(diagnosis.verdict?.layer).toBe('progress');
    expect(diagnosis.verdict?.kind).toBe('stalled');
  });

  it('names the GPU layer when the process is killed while memory climbs (recorded nvidia-smi output)', async () => {
    const { dir, exitCode, diagnosis } = await runAndDiagnose(
      {
        command: ['python3', 'scripts/job.py'],
        scripts: { 'job.py': 'import os, signal, time\nprint("allocating", flush=True)\ntime.sleep(3)\nos.kill(os.getpid(), signal.SIGKILL)\n' },
      },
      { extraPath: [FAKE_GPU_BIN], env: { FAKE_NVIDIA_SMI_CSV: join(FIXTURES, 'oom-climb.csv'), FAKE_NVIDIA_SMI_TICK: '0.1' } },
    );
    expect(exitCode).toBe(137);
    expect(layer(diagnosis, 'task')).toMatchObject({ status: 'failed', kind: 'signal' });
    expect(diagnosis.verdict?.layer).toBe('gpu');
    expect(diagnosis.verdict?.kind).toBe('memory-limit');
    expect(diagnosis.verdict?.summary).toMatch(/^GPU 0 memory climbed from 10240 MiB to 81664 of 81920 MiB \(99\.7%\) within \d+s, just before the end, [\d.]+s before the exit: out of GPU memory$/);
    expect(diagnosis.verdict?.evidence.map((e) => e.file)).toEqual(['artifacts/nvml-audit.jsonl', 'artifacts/nvml-audit.jsonl', 'runtime/runtime.log']);
    expect(diagnosis.verdict?.evidence[2]?.text).toMatch(/ exit code=137 stopping=0 /);
    const runtimeLog = await readFile(join(dir, 'runtime/runtime.log'), 'utf8');
    expect(runtimeLog).toMatch(/ probe .* gpus=1\n/);
    expect(await readFile(join(dir, 'artifacts/runtime-precheck.log'), 'utf8')).toContain('[info] driver: nvidia_driver=550.54.15');
    const text = formatDiagnosis(diagnosis);
    // The header's question is answered "no" by a failure, for the GPU layer too.
    expect(text.split('\n')[0]).toBe(`${dir}: FAILED at gpu (did GPU memory stay clear of the limit to the end? no)`);
    expect(text).toContain('evidence (gpu):');
    expect(text).toContain('evidence (task):');
  });

  it('names the task layer when the entrypoint does not exist', async () => {
    const { dir, exitCode, diagnosis } = await runAndDiagnose({ command: ['python3', 'inputs/no-such-script.py'] });
    expect(exitCode).toBe(2);
    expect(diagnosis.verdict?.layer).toBe('task');
    expect(diagnosis.verdict?.kind).toBe('entrypoint');
    expect(diagnosis.verdict?.summary).toBe(
      `the entrypoint could not start: python3: can't open file '${dir}/inputs/no-such-script.py': [Errno 2] No such file or directory (exit 2)`,
    );
  });

  it('names the task layer when a program on the entrypoint is not found (exit 127)', async () => {
    const { exitCode, diagnosis } = await runAndDiagnose({ command: ['orbit-no-such-program', '--flag'] });
    expect(exitCode).toBe(127);
    expect(diagnosis.verdict).toMatchObject({ layer: 'task', kind: 'entrypoint' });
    expect(diagnosis.verdict?.summary).toMatch(/orbit-no-such-program: command not found \(exit 127\)$/);
  });

  it('names the runtime layer for a bundle that never ran', async () => {
    const dir = join(await tempDir(), 'bundle');
    await makeBundle(dir, { command: ['true'] });
    const diagnosis = await diagnoseBundle(dir);
    expect(diagnosis.verdict?.layer).toBe('runtime');
    expect(diagnosis.verdict?.summary).toMatch(/^runtime\/runtime.log is missing: the wrapper never ran on a host/);
  });

  it('finds a run id\'s bundle under ORBIT_HOME/runs when Temporal cannot be reached', async () => {
    const home = await tempDir();
    const dir = join(home, 'runs', 'job-20261125-100000-abcd');
    await makeBundle(dir, { command: ['true'] });
    await runWrapper(dir);
    const saved = { home: process.env['ORBIT_HOME'], port: process.env['ORBIT_TEMPORAL_PORT'], address: process.env['TEMPORAL_ADDRESS'] };
    process.env['ORBIT_HOME'] = home;
    process.env['ORBIT_TEMPORAL_PORT'] = '1'; // nothing listens there
    delete process.env['TEMPORAL_ADDRESS'];
    try {
      const out: string[] = [];
      expect(await main(['diagnose', 'job-20261125-100000-abcd'], (s) => out.push(s))).toBe(0);
      expect(out.join('\n')).toContain(`${dir}: healthy (exit code 0)`);
    } finally {
      for (const [k, v] of [['ORBIT_HOME', saved.home], ['ORBIT_TEMPORAL_PORT', saved.port], ['TEMPORAL_ADDRESS', saved.address]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('refuses an argument that is neither a bundle folder nor a run id', async () => {
    await expect(main(['diagnose', '/tmp/not a bundle'], () => undefined)).rejects.toThrow(/not a bundle folder \(no job.json\) and not a run id/);
  });
});
