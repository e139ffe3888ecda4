/**
 * A run whose host was lost: the workflow gave up on it at the collection deadline (the run ended
 * `lost`, the worker wrote runtime/collection.json of what the local copy holds), or it is waiting
 * for the host now (phase `recovering`). The bundle is a real run by hand whose "host" vanished
 * mid-run (its whole process group killed): what a sync had brought back before the host went away.
 */
import { spawn } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { runDiagnose } from '../../src/cli/diagnose';
import { lostAtOf, runEnding } from '../../src/cli/run-ending';
import { COLLECTION_REPORT } from '../../src/common/protocol';
import type { RunResult, RunStatus } from '../../src/common/run';
import { temporalTarget } from '../../src/config';
import { diagnoseBundle, formatDiagnosis, type Diagnosis } from '../../src/diagnose';
import { makeBundle, useTempDirs, VENV_BIN, waitFor } from './helpers';

const tempDir = useTempDirs();
const layer = (d: Diagnosis, id: string) => d.layers.find((l) => l.layer === id)!;
// Never reached: every bundle here is a folder, so no Temporal is asked.
const target = { ...temporalTarget({}), address: '127.0.0.1:1' };
const LOST_AT = '2026-11-25T10:20:00.000Z';
const GAVE_UP = '2026-11-25T16:20:00.000Z';

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(relative(dir, join(e.parentPath, e.name)));
  return out.sort();
}

/** A job that logs three steps and then runs on; its host vanishes (every process of the run killed) after the third. */
async function vanishedRun(): Promise<string> {
  const dir = join(await tempDir(), 'bundle');
  await makeBundle(dir, { command: ['bash', 'scripts/job.sh'], scripts: { 'job.sh': 'for i in 1 2 3; do echo "step $i"; echo $i > "$ORBIT_ARTIFACTS_DIR/step-$i.txt"; done; sleep 300\n' } });
  const child = spawn('bash', [join(dir, 'scripts/orbit/run.sh')], { env: { ...process.env, PATH: `${VENV_BIN}:${process.env['PATH']}` }, stdio: 'ignore', detached: true });
  const exited = new Promise((done) => child.on('exit', done));
  expect(await waitFor(async () => (await readFile(join(dir, 'artifacts/task.log'), 'utf8').catch(() => '')).includes('step 3'))).toBe(true);
  process.kill(-child.pid!, 'SIGKILL');
  await exited;
  return dir;
}

/** runtime/collection.json as reportLocal writes it for a host that never came back (src/activities/collection.ts). */
async function reportLocal(dir: string, host: string): Promise<void> {
  const present = await filesUnder(join(dir, 'artifacts'));
  const report = {
    collectedAt: GAVE_UP,
    host,
    partial: true,
    reason: `host ${host} did not answer before the collection deadline`,
    present,
    manifest: { verified: false, manifestPresent: false, verifiedFiles: [], missing: [], mismatched: [], problems: [] },
    missingOutputs: [],
  };
  await writeFile(join(dir, COLLECTION_REPORT), JSON.stringify(report, null, 2) + '\n');
}

describe('diagnose of a run whose host was lost', () => {
  it('names the lost host (host-lost), when it stopped answering and what was synced, not "still going" (diagnose exit 1)', async () => {
    const dir = await vanishedRun();
    await reportLocal(dir, 'gpu-1');
    const ending = { status: 'lost', phase: 'lost', host: 'gpu-1', hostState: 'lost', lostAt: LOST_AT };
    const d = await diagnoseBundle(dir, ending);
    expect(d.healthy).toBe(false);
    expect(d.exitCode).toBeNull();
    expect(d.verdict).toMatchObject({ layer: 'runtime', kind: 'host-lost' });
    expect(d.verdict?.summary).toMatch(
      new RegExp(
        `^host gpu-1 stopped answering \\(found lost at ${LOST_AT}\\) and did not come back before the collection deadline \\(given up at ${GAVE_UP}\\); ` +
          `the job's last synced output is artifacts/task\\.log:3 "step 3" \\(\\d+ files under artifacts/ kept, 0 verified\\)$`,
      ),
    );
    expect(d.verdict?.evidence[0]).toEqual({ file: COLLECTION_REPORT, text: `host=gpu-1 partial=true reason="host gpu-1 did not answer before the collection deadline" collectedAt=${GAVE_UP}` });
    expect(d.verdict?.evidence.map((e) => e.file)).toEqual([COLLECTION_REPORT, 'runtime/runtime.log', 'artifacts/task.log']);
    expect(layer(d, 'task')).toMatchObject({ status: 'failed', kind: 'no-exit-code' });
    expect(layer(d, 'task').summary).toBe('no exit code recorded, and the run ended lost: its wrapper was killed, or its host lost, before it could record one');
    const text = formatDiagnosis(d);
    expect(text).not.toContain('still going');
    expect(text.split('\n')[0]).toBe(`${dir}: FAILED at runtime (did the bundle stage and probe, on a host with disk to spare that kept answering? no)`);
    expect(text.split('\n')[1]).toMatch(/^ {2}host gpu-1 stopped answering/);

    // From the bundle alone (no run status): runtime/collection.json says the host never came back.
    const alone = await diagnoseBundle(dir);
    expect(alone.verdict).toMatchObject({ layer: 'runtime', kind: 'host-lost' });
    expect(alone.verdict?.summary).toMatch(/^host gpu-1 stopped answering and did not come back before the collection deadline \(given up at \S+\); the job's last synced output is artifacts\/task\.log:3 "step 3"/);
    const out: string[] = [];
    expect(await runDiagnose(dir, target, (s) => out.push(s))).toBe(1);
    expect(out.join('\n')).toContain('host gpu-1 stopped answering');
  });

  it('says a recovering run waits for its host that is not answering (host-not-answering)', async () => {
    const dir = await vanishedRun();
    const d = await diagnoseBundle(dir, { status: 'running', phase: 'recovering', host: 'gpu-1', hostState: 'lost', lostAt: LOST_AT });
    expect(d.verdict).toMatchObject({ layer: 'runtime', kind: 'host-not-answering' });
    expect(d.verdict?.summary).toBe(`host gpu-1 is not answering (found lost at ${LOST_AT}); the run waits for it (phase recovering); the job's last synced output is artifacts/task.log:3 "step 3"`);
    expect(layer(d, 'task').summary).toBe('no exit code recorded: the run is still going');
    // Unreachable, not yet lost: the same, with the host's state.
    const unreachable = await diagnoseBundle(dir, { status: 'running', phase: 'running', host: 'gpu-1', hostState: 'unreachable' });
    expect(unreachable.verdict?.summary).toMatch(/^host gpu-1 is not answering; the run waits for it \(phase running, host unreachable\);/);
  });

  it('leaves a running run with a reachable host to the task layer, its evidence without a line twice', async () => {
    const dir = await vanishedRun();
    const d = await diagnoseBundle(dir, { status: 'running', phase: 'running', host: 'gpu-1', hostState: 'reachable' });
    expect(layer(d, 'runtime').status).toBe('ok');
    expect(d.verdict).toMatchObject({ layer: 'task', kind: 'no-exit-code', summary: 'no exit code recorded: the run is still going' });
    const keys = d.verdict!.evidence.map((e) => `${e.file}:${e.line}`);
    expect(keys.filter((k) => k.startsWith('runtime/runtime.log')).length).toBeGreaterThan(1);
    expect(new Set(keys).size).toBe(keys.length);
    // The start line is the second-to-last of runtime.log: named once, though it is both the start and among the last lines.
    expect(d.verdict!.evidence.filter((e) => / start pid=/.test(e.text))).toHaveLength(1);
    // A collection's own report (no `reason`) is not a lost host.
    await writeFile(join(dir, COLLECTION_REPORT), JSON.stringify({ collectedAt: GAVE_UP, host: 'gpu-1', filesFetched: 3, bytesFetched: 9 }));
    expect(layer(await diagnoseBundle(dir), 'runtime').status).toBe('ok');
    await rm(join(dir, COLLECTION_REPORT));
  });
});

describe('runEnding (src/cli/run-ending.ts): the host state the diagnosis gets from Temporal', () => {
  const attrs = (m: Record<string, string>) => ({ get: (k: { name: string }) => m[k.name] });
  const phases = [
    { phase: 'running' as const, at: '2026-11-25T10:00:00.000Z', host: 'gpu-1' },
    { phase: 'recovering' as const, at: LOST_AT, host: 'gpu-1' },
  ];
  function fakeClient(handle: Record<string, unknown>): Client {
    return { workflow: { getHandle: () => handle }, connection: { withDeadline: (_ms: number, fn: () => Promise<unknown>) => fn() } } as unknown as Client;
  }

  it('asks a running run its status: phase, host, host state and when the host was found lost', async () => {
    const status = { runId: 'r', host: 'gpu-1', phase: 'recovering', hostState: 'lost', phases } as unknown as RunStatus;
    const client = fakeClient({
      describe: async () => ({ status: { name: 'RUNNING' }, typedSearchAttributes: attrs({ OrbitPhase: 'running', OrbitHost: 'gpu-1', OrbitHostState: 'reachable' }) }),
      query: async () => status,
    });
    expect(await runEnding(client, 'r')).toEqual({ status: 'running', phase: 'recovering', host: 'gpu-1', hostState: 'lost', lostAt: LOST_AT });
  });

  it('falls back to the search attributes when the status query gets no answer', async () => {
    const client = fakeClient({
      describe: async () => ({ status: { name: 'RUNNING' }, typedSearchAttributes: attrs({ OrbitPhase: 'recovering', OrbitHost: 'gpu-1', OrbitHostState: 'lost' }) }),
      query: async () => {
        throw new Error('no worker');
      },
    });
    expect(await runEnding(client, 'r')).toEqual({ status: 'running', phase: 'recovering', host: 'gpu-1', hostState: 'lost' });
  });

  it('reads a run that ended lost from its result: host, when it was lost, the reasons', async () => {
    const reasons = ['host gpu-1 was lost and did not come back within 21600s; kept what was synced (0 verified files)'];
    const result = { runId: 'r', status: 'lost', exitCode: null, host: 'gpu-1', digest: 'd', phases: [...phases, { phase: 'lost', at: GAVE_UP, host: 'gpu-1' }], relaunches: [], reasons } as unknown as RunResult;
    const failure = ApplicationFailure.create({ message: reasons[0], type: 'RunLost', nonRetryable: true, details: [result] });
    const client = fakeClient({
      describe: async () => ({ status: { name: 'FAILED' }, typedSearchAttributes: attrs({ OrbitPhase: 'lost', OrbitHost: 'gpu-1', OrbitHostState: 'lost' }) }),
      result: async () => {
        throw new WorkflowFailedError('Workflow execution failed', failure, 0 as never);
      },
    });
    expect(await runEnding(client, 'r')).toEqual({ status: 'lost', phase: 'lost', host: 'gpu-1', hostState: 'lost', lostAt: LOST_AT, reasons, detail: reasons[0] });
    expect(lostAtOf(undefined)).toBeUndefined();
  });
});
