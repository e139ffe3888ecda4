/**
 * A cancelled run is diagnosed (and reported) as cancelled: not healthy, not "failed at task". Each
 * bundle is run for real on a host of this machine (the local transport: stage, launch, the host's own
 * cancel script, collect), so runtime/runtime.log carries the lines a real cancel writes.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDiagnose } from '../../src/cli/diagnose';
import { runReport } from '../../src/cli/report';
import { COLLECTION_REPORT, STOP_REASON, type StopReason } from '../../src/common/protocol';
import { temporalTarget } from '../../src/config';
import { diagnoseBundle, formatDiagnosis, type Diagnosis } from '../../src/diagnose';
import { localHostUnderTest, type HostUnderTest } from '../helpers/hosts-under-test';
import { waitFor } from '../helpers/wait';
import { makeBundle, useTempDirs } from './helpers';

const tempDir = useTempDirs();
const layer = (d: Diagnosis, id: string) => d.layers.find((l) => l.layer === id)!;
// Never reached: every bundle here is a folder, so no Temporal is asked.
const target = { ...temporalTarget({}), address: '127.0.0.1:1' };

describe('diagnose and report of a cancelled run', () => {
  let sut: HostUnderTest;
  beforeAll(async () => {
    sut = await localHostUnderTest('local');
  });
  afterAll(async () => sut?.close());

  /** Runs a job that writes a few lines and then sleeps, stops it through the host's cancel with `why`, and collects it. */
  async function stoppedRun(runId: string, why?: StopReason): Promise<string> {
    const dir = join(await tempDir(), 'bundle');
    await makeBundle(dir, { command: ['bash', 'scripts/job.sh'], scripts: { 'job.sh': 'echo "epoch 1"; echo 1 > "$ORBIT_ARTIFACTS_DIR/epoch.txt"; sleep 300\n' } });
    const { host } = sut;
    await host.stage(runId, dir);
    await host.launch(runId);
    const running = await waitFor(() => host.probe(runId, 'task.log'), (p) => p.state === 'running' && p.taskLogTail.includes('epoch 1'));
    expect(running.state).toBe('running');
    expect(await host.cancel(runId, 5, why)).toBe('stopped');
    const collected = await host.collect(runId, dir);
    // What the collect activity writes beside the files (src/activities/collection.ts).
    await mkdir(join(dir, 'runtime'), { recursive: true });
    await writeFile(
      join(dir, COLLECTION_REPORT),
      JSON.stringify({ collectedAt: new Date().toISOString(), host: 'local', filesFetched: collected.filesFetched, bytesFetched: collected.bytesFetched, filesSkipped: 0 }),
    );
    return dir;
  }

  it('says CANCELLED, with the cancel line of runtime.log and the collection as evidence (diagnose exit 1)', async () => {
    const dir = await stoppedRun('run-cancelled', STOP_REASON.cancelled);
    const d = await diagnoseBundle(dir);
    expect(d.healthy).toBe(false);
    expect(d.cancelled?.summary).toMatch(/^the job was stopped with TERM at \S+Z \(exit 143\); the collection after it fetched \d+ files \(\d+ bytes\); runtime\/runtime\.log records the cancel \(why=cancelled\)$/);
    expect(d.verdict).toBeUndefined(); // no failure of its own
    expect(layer(d, 'task')).toMatchObject({ status: 'skipped', kind: 'cancelled', summary: expect.stringMatching(/^cut short by the cancel: stopped on request \(TERM\), exit 143 after [\d.]+s$/) });
    expect(d.layers.filter((l) => l.status === 'failed')).toEqual([]);
    const evidence = d.cancelled!.evidence;
    expect(evidence.find((e) => e.file === 'runtime/runtime.log' && /cancel requested: TERM to process group \d+ why=cancelled$/.test(e.text))).toBeDefined();
    expect(evidence.find((e) => e.file === 'runtime/runtime.log' && /exit code=143 stopping=1/.test(e.text))).toBeDefined();
    expect(evidence.at(-1)).toMatchObject({ file: COLLECTION_REPORT, text: expect.stringMatching(/^collectedAt=\S+ filesFetched=\d+ bytesFetched=\d+$/) });

    const text = formatDiagnosis(d);
    expect(text.split('\n')[0]).toBe(`${dir}: CANCELLED (stopped on request: neither healthy nor a failed layer)`);
    expect(text).not.toMatch(/FAILED at/);
    expect(text).toContain('evidence (cancel):');

    const out: string[] = [];
    expect(await runDiagnose(dir, target, (s) => out.push(s))).toBe(1);
    expect(out.join('\n')).toContain(`${dir}: CANCELLED`);

    const report: string[] = [];
    expect(await runReport(dir, target, (s) => report.push(s))).toBe(0);
    expect(report[1]).toMatch(/^ {2}diagnosis: cancelled: the job was stopped with TERM at /);
    const html = await readFile(join(dir, 'runtime/report.html'), 'utf8');
    expect(html).toMatch(/<p class="verdict cancelled" id="cancelled"><b>cancelled<\/b>: the job was stopped with TERM/);
    expect(html).not.toContain('failed at <b>task</b>');
  });

  it('is told apart from a run stopped at its timeout: that one still failed, and says so', async () => {
    const dir = await stoppedRun('run-timed-out', STOP_REASON.timedOut);
    const d = await diagnoseBundle(dir);
    expect(d.cancelled).toBeUndefined();
    expect(d.verdict).toMatchObject({ layer: 'task', kind: 'stopped', summary: expect.stringMatching(/^stopped by Orbit at the run's timeout \(TERM\), exit 143/) });
    // Nor does the run's status say cancelled: the bundle's own record is not overruled.
    expect((await diagnoseBundle(dir, { status: 'timed-out' })).cancelled).toBeUndefined();
  });

  it('takes the run status from Temporal when the bundle does not say why the job was stopped', async () => {
    const dir = await stoppedRun('run-no-why');
    const alone = await diagnoseBundle(dir);
    expect(alone.cancelled).toBeUndefined();
    expect(alone.verdict).toMatchObject({ layer: 'task', kind: 'stopped' });

    const detail = 'workflow run-no-why ended CANCELLED; cancel requested 2026-12-01T10:00:00.000Z by 42@box: "wrong data"';
    const d = await diagnoseBundle(dir, { status: 'cancelled', detail });
    expect(d.healthy).toBe(false);
    expect(d.cancelled?.runStatus).toBe(`cancelled (${detail})`);
    expect(d.cancelled?.summary).toMatch(/^the job was stopped with TERM at \S+ \(exit 143\); the collection after it fetched/);
    expect(d.verdict).toBeUndefined();
    expect(formatDiagnosis(d)).toContain(`  run status: cancelled (${detail})`);
  });

  it('says a run cancelled before it was launched never ran, from its status alone', async () => {
    const dir = join(await tempDir(), 'bundle');
    await makeBundle(dir, { command: ['bash', 'scripts/job.sh'], scripts: { 'job.sh': 'sleep 1\n' } });
    const d = await diagnoseBundle(dir, { status: 'cancelled' });
    expect(d.cancelled?.summary).toBe('the run was cancelled before anything ran on a host (no runtime.log was collected)');
    expect(layer(d, 'runtime')).toMatchObject({ status: 'skipped', kind: 'cancelled' });
    expect(d.verdict).toBeUndefined();
  });
});
