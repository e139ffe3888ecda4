import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseGpuAudit, parsePrecheckLog } from '../../src/diagnose';
import { alive, FAKE_GPU_BIN, FIXTURES, makeBundle, readLines, ROOT, runWrapper, useTempDirs, VENV_BIN, waitFor } from './helpers';

const tempDir = useTempDirs();
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const AUDIT = join(ROOT, 'src/bundle/templates/gpu_audit.py');

async function precheckOf(parts: Parameters<typeof makeBundle>[1]) {
  const dir = join(await tempDir(), 'bundle');
  await makeBundle(dir, parts);
  const { exitCode } = await runWrapper(dir);
  const text = await readFile(join(dir, 'artifacts/runtime-precheck.log'), 'utf8');
  return { dir, exitCode, text, log: parsePrecheckLog(text) };
}

describe('precheck (scripts/orbit/precheck.py), on this machine', () => {
  it('records the interpreter, each module with its version and real path, CUDA and the driver', async () => {
    const { exitCode, log, text } = await precheckOf({ command: ['true'], precheck: { python: { modules: [{ name: 'torch', minVersion: '2.0' }, { name: 'json' }] } } });
    expect(exitCode).toBe(0);
    const byWhat = Object.fromEntries(log.entries.map((e) => [e.what, e]));
    expect(byWhat['interpreter']?.message).toMatch(/^executable=\/\S+ real=\/\S+ version=3\.\d+\.\d+ implementation=CPython prefix=\S+\/\.venv$/);
    expect(byWhat['module torch']).toMatchObject({ status: 'ok', version: '2.13.0+cpu', path: join(VENV_BIN, '..', 'lib/python3.11/site-packages/torch/__init__.py').replace('/bin/..', '') });
    expect(byWhat['module json']?.status).toBe('ok');
    expect(byWhat['cuda']?.message).toBe('torch.version.cuda=None');
    expect(byWhat['driver']?.message).toBe('none (nvidia-smi not found)');
    expect(log.verdict).toMatchObject({ ok: true, text: 'precheck: ok' });
    expect(text.split('\n')[0]).toMatch(/^# orbit precheck \S+Z bundle=\//);
  });

  it('fails a module older than its minVersion', async () => {
    const { exitCode, log } = await precheckOf({ command: ['true'], precheck: { python: { modules: [{ name: 'torch', minVersion: '99.1' }] } } });
    expect(exitCode).toBe(86);
    expect(log.entries.find((e) => e.what === 'module torch')?.message).toMatch(/^version=2\.13\.0\+cpu is older than the required minVersion=99\.1 path=\//);
  });

  it('gives a clear line when the interpreter is missing: fatal when modules are required, a warning otherwise', async () => {
    const required = await precheckOf({ command: ['true'], precheck: { python: { interpreter: '/nonexistent/python3', modules: [{ name: 'json' }] } } });
    expect(required.exitCode).toBe(86);
    expect(required.text).toMatch(/^\[FAIL\] interpreter: \/nonexistent\/python3 not found on this host \(PATH=.*\); the job requires the Python modules listed in scripts\/orbit\/precheck.json\nprecheck: FAIL\n$/);
    const optional = await precheckOf({ command: ['true'], precheck: { python: { interpreter: '/nonexistent/python3', modules: [] } } });
    expect(optional.exitCode).toBe(0);
    expect(optional.text).toMatch(/^\[warn\] interpreter: \/nonexistent\/python3 not found on this host .*so it goes on\nprecheck: ok\n$/);
  });

  /** A staged copy of a library, as a plugin would declare it: the module must come from it, every file as listed. */
  const forkCheck = (manifest: string) => ({ kind: 'tree-manifest' as const, label: 'fork mylib', noun: 'fork', manifest, module: 'mylib' });
  const fork = (init: string) => ({
    'fork/mylib/__init__.py': init,
    'fork/FORK_MANIFEST.json': JSON.stringify({ repository: 'https://example.org/me/mylib', commit: 'b'.repeat(40), files: { 'mylib/__init__.py': sha(init) } }),
  });

  it('verifies a staged fork: imported from its folder, every file matching its FORK_MANIFEST.json', async () => {
    const { dir, exitCode, log } = await precheckOf({
      command: ['true'],
      inputs: fork('VERSION = "2.0-fork"\n__version__ = VERSION\n'),
      env: { PYTHONPATH: 'inputs/fork' },
      precheck: { python: { modules: [{ name: 'mylib' }] }, provenance: [forkCheck('inputs/fork/FORK_MANIFEST.json')] },
    });
    expect(exitCode).toBe(0);
    expect(log.entries.find((e) => e.what === 'fork mylib')?.message).toBe(
      `repository=https://example.org/me/mylib commit=${'b'.repeat(40)} files=1 verified path=${dir}/inputs/fork/mylib/__init__.py`,
    );
    expect(log.entries.find((e) => e.what === 'module mylib')).toMatchObject({ version: '2.0-fork', path: `${dir}/inputs/fork/mylib/__init__.py` });
  });

  it('fails when another copy of the module shadows the staged fork, stating expected vs found', async () => {
    const { dir, exitCode, log } = await precheckOf({
      command: ['true'],
      inputs: { ...fork('VERSION = "2.0-fork"\n'), 'site/mylib/__init__.py': '__version__ = "1.0"\n' },
      env: { PYTHONPATH: 'inputs/site:inputs/fork' },
      precheck: { python: { modules: [{ name: 'mylib' }] }, provenance: [forkCheck('inputs/fork/FORK_MANIFEST.json')] },
    });
    expect(exitCode).toBe(86);
    expect(log.entries.find((e) => e.what === 'fork mylib')?.message).toBe(
      `expected mylib from the staged fork https://example.org/me/mylib@${'b'.repeat(40)} under ${dir}/inputs/fork, found ${dir}/inputs/site/mylib/__init__.py (version=1.0): the job would run another copy of mylib`,
    );
  });

  it('is refused at freeze when the fork manifest is not in the bundle', async () => {
    const dir = join(await tempDir(), 'bundle');
    await expect(makeBundle(dir, { command: ['true'], precheck: { provenance: [forkCheck('inputs/nope/FORK_MANIFEST.json')] } })).rejects.toThrow(
      'job.json.precheck.provenance[0].manifest: names inputs/nope/FORK_MANIFEST.json, which is not in the bundle',
    );
  });
});

describe('GPU audit (scripts/orbit/gpu_audit.py)', () => {
  it('writes one no-gpu record on this machine (no GPU) and exits', async () => {
    const out = join(await tempDir(), 'audit.jsonl');
    const path = (process.env['PATH'] ?? '').split(':').filter((p) => !p.includes('fixtures')).join(':');
    execFileSync(join(VENV_BIN, 'python3'), [AUDIT, '--parent', String(process.pid), '--out', out], { env: { ...process.env, PATH: path }, timeout: 20_000 });
    const lines = await readLines(out);
    expect(lines).toHaveLength(1);
    const record = JSON.parse(lines[0]!);
    expect(record).toEqual({ time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), gpu: null, status: 'no-gpu', reason: 'pynvml not installed; nvidia-smi not found on PATH' });
  });

  it('parses recorded nvidia-smi output (parse_nvidia_smi_csv), N/A cells as null and stray lines kept as unparsed', () => {
    const out = execFileSync(join(VENV_BIN, 'python3'), [AUDIT, '--parse', join(FIXTURES, 'query-gpu-2x-a100.csv')], { encoding: 'utf8' });
    const records = out.trim().split('\n').map((l) => JSON.parse(l));
    const a100 = { time: 'recorded', name: 'NVIDIA A100-SXM4-80GB', mem_total_mib: 81920, source: 'nvidia-smi' };
    expect(records).toEqual([
      { ...a100, gpu: 0, util_pct: 87, mem_used_mib: 61234, temp_c: 64, power_w: 312.45 },
      { ...a100, gpu: 1, util_pct: 91, mem_used_mib: 60998, temp_c: 66, power_w: 327.1 },
      { ...a100, gpu: 0, util_pct: 88, mem_used_mib: 61302, temp_c: 64, power_w: 315.02 },
      { ...a100, gpu: 1, util_pct: 0, mem_used_mib: 4, temp_c: 35, power_w: null },
      { ...a100, gpu: 0, util_pct: null, mem_used_mib: 61302, temp_c: 65, power_w: 309.87 },
      { ...a100, gpu: 1, util_pct: 90, mem_used_mib: 61010, temp_c: 66, power_w: 325.55 },
      { time: 'recorded', status: 'unparsed', line: 'No devices were found' },
    ]);
  });

  it('samples through nvidia-smi -l and exits, with its nvidia-smi, when its parent is gone', async () => {
    const dir = await tempDir();
    const out = join(dir, 'audit.jsonl');
    const pids = join(dir, 'nvsmi.pids');
    // A parent shell that starts the audit, prints its pid, and dies after 2 s.
    const parent = spawn('bash', ['-c', `python3 ${AUDIT} --parent $$ --out ${out} & echo $!; sleep 2`], {
      env: { ...process.env, PATH: `${FAKE_GPU_BIN}:${VENV_BIN}:${process.env['PATH']}`, FAKE_NVIDIA_SMI_CSV: join(FIXTURES, 'query-gpu-2x-a100.csv'), FAKE_NVIDIA_SMI_PIDS: pids },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const auditPid = Number(await new Promise<string>((res) => parent.stdout.once('data', (d: Buffer) => res(d.toString().trim()))));
    await new Promise((r) => parent.on('exit', r));
    expect(await waitFor(() => !alive(auditPid), 10_000)).toBe(true);
    const smiPids = (await readLines(pids)).map((l) => Number(l.split(' ')[0]));
    expect(smiPids.length).toBeGreaterThanOrEqual(2); // the first query, then the -l stream
    for (const pid of smiPids) expect(await waitFor(() => !alive(pid), 5_000), `nvidia-smi ${pid}`).toBe(true);
    const audit = parseGpuAudit(await readFile(out, 'utf8'));
    expect(audit.noGpu).toBeUndefined();
    expect(audit.samples.map((s) => [s.gpu, s.memUsedMib])).toEqual([
      [0, 61234],
      [1, 60998],
      [0, 61302],
      [1, 4],
      [0, 61302],
      [1, 61010],
    ]);
  });

  it('never outlives the job: run.sh stops it, and its nvidia-smi, when the wrapper gets TERM', async () => {
    const root = await tempDir();
    const dir = join(root, 'bundle');
    const pids = join(root, 'nvsmi.pids');
    await makeBundle(dir, { command: ['sleep', '60'] });
    let wrapper = 0;
    const done = runWrapper(dir, {
      extraPath: [FAKE_GPU_BIN],
      env: { FAKE_NVIDIA_SMI_CSV: join(FIXTURES, 'oom-climb.csv'), FAKE_NVIDIA_SMI_PIDS: pids },
      onStart: (pid) => (wrapper = pid),
    });
    const runtimeLog = join(dir, 'runtime/runtime.log');
    expect(await waitFor(async () => /exec sleep 60/.test(await readFile(runtimeLog, 'utf8').catch(() => '')), 20_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 1500)); // let the audit take a few samples
    process.kill(wrapper, 'SIGTERM');
    const { exitCode } = await done;
    expect(exitCode).toBe(143);
    const log = await readFile(runtimeLog, 'utf8');
    const auditPid = Number(/audit started pid=(\d+)/.exec(log)?.[1]);
    expect(auditPid).toBeGreaterThan(0);
    expect(alive(auditPid)).toBe(false);
    for (const line of await readLines(pids)) expect(alive(Number(line.split(' ')[0])), line).toBe(false);
    expect(log).toMatch(/stop requested: forwarding TERM[\s\S]*exit code=143 stopping=1 disk_free_mb=\d+ disk_total_mb=\d+\n.*audit stopped\n.*manifest written\n.*done\n$/);
    const manifest = JSON.parse(await readFile(join(dir, 'artifacts/manifest.json'), 'utf8'));
    expect(manifest.files.map((f: { path: string }) => f.path)).toEqual(['nvml-audit.jsonl', 'runtime-precheck.log', 'task.log']);
    expect(parseGpuAudit(await readFile(join(dir, 'artifacts/nvml-audit.jsonl'), 'utf8')).samples.length).toBeGreaterThan(2);
  });

  it('run.sh logs the phases in order: staged, probe, precheck, audit, start, exec, exit', async () => {
    const dir = join(await tempDir(), 'bundle');
    await makeBundle(dir, { command: ['true'] });
    expect((await runWrapper(dir)).exitCode).toBe(0);
    const phases = (await readLines(join(dir, 'runtime/runtime.log'))).map((l) => l.split(' ')[1]);
    expect(phases).toEqual(['staged', 'probe', 'precheck', 'audit', 'start', 'exec', 'exit', 'audit', 'manifest', 'done']);
    const probe = (await readLines(join(dir, 'runtime/runtime.log')))[1]!;
    expect(probe).toMatch(/ probe host=\S+ os=".+" python3=\S+\/python3 python_version=3\.\d+\.\d+ disk_free_mb=\d+ disk_total_mb=\d+ gpus=0 nvidia_smi=none$/);
    // The exit line carries the disk as the job left it; the reserve the wrapper held for its own records is given back.
    expect((await readLines(join(dir, 'runtime/runtime.log')))[6]).toMatch(/ exit code=0 stopping=0 disk_free_mb=\d+ disk_total_mb=\d+$/);
    expect(existsSync(join(dir, '.orbit-disk-reserve'))).toBe(false);
  });
});
