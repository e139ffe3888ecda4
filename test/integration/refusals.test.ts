/**
 * Refusals are final at once and say why: a frozen bundle changed after freezing (a symlink added to
 * inputs/, a file edited) is refused on the first attempt, not retried, and the reason naming the
 * file reaches the run's status and result and the sweep's results.
 */
import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ERROR } from '../../src/common/errors';
import { blobKey, bundleKey } from '../../src/store/cas';
import { sweepCommand, type SweepContext } from '../../src/cli/sweep';
import type { FiringResults } from '../../src/cli/sweep-results';
import { temporalTarget } from '../../src/config';
import type { TaskRegistry } from '../../src/plugins/registry';
import type { SweepRecord } from '../../src/sweeps/store';
import { runBundle, statusQuery, type RunBundleInput } from '../../src/workflows';
import { scriptBundle, tempDir } from '../helpers/bundles';
import { orbit } from '../helpers/orbit-cli';
import { testRegistry } from '../helpers/sleeper-plugin';
import { startInProcessWorker, type InProcessWorker } from '../helpers/worker';
import { within } from '../helpers/wait';

type HistoryEvent = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];
type Failure = NonNullable<NonNullable<HistoryEvent['activityTaskFailedEventAttributes']>['failure']>;


/** Each try of the named activity in a history: the attempt that was recorded last, and how it ended. */
function activityTries(events: HistoryEvent[], type: string): { attempt: number; failure?: Failure }[] {
  return events
    .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type)
    .map((scheduled) => {
      const id = String(scheduled.eventId);
      const started = events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === id);
      const failed = events.find((e) => String(e.activityTaskFailedEventAttributes?.scheduledEventId) === id);
      return { attempt: started?.activityTaskStartedEventAttributes?.attempt ?? 0, failure: failed?.activityTaskFailedEventAttributes?.failure ?? undefined };
    });
}

describe('refusals are final at once and say why', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let worker: InProcessWorker;
  let client: Client;
  let registry: TaskRegistry;
  let ctx: SweepContext;
  let cliEnv: NodeJS.ProcessEnv;
  const taskQueue = `refusals-${randomUUID()}`;
  const tag = randomUUID().slice(0, 6);
  const schedules: string[] = [];

  beforeAll(async () => {
    tmp = await tempDir('orbit-refusals-');
    const address = inject('temporalAddress');
    const port = address.split(':')[1]!;
    const home = join(tmp.dir, 'home');
    worker = await startInProcessWorker({ address, taskQueue, orbitHome: home });
    client = worker.client;
    registry = await testRegistry();
    const target = temporalTarget({ ORBIT_TEMPORAL_PORT: port, TEMPORAL_UI_URL: inject('temporalUiUrl') });
    ctx = { client, registry, home, taskQueue, target };
    cliEnv = { ...process.env, ORBIT_HOME: home, ORBIT_TEMPORAL_PORT: port, ORBIT_TASK_QUEUE: taskQueue };
    delete cliEnv.TEMPORAL_ADDRESS;
  });

  afterAll(async () => {
    for (const name of schedules) await client.schedule.getHandle(name).delete().catch(() => undefined);
    await worker?.stop();
    if (!process.env.ORBIT_KEEP_TEST_FILES) await tmp?.cleanup();
  });

  const UNSAFE = 'inputs/passwd is a symbolic link; bundles hold only plain files and folders';
  const linkedRun = `linked-${tag}`;

  it('a symlink added to inputs/ after freezing: the stage is refused on its first attempt, naming the file; the run fails at once', async () => {
    const bundleDir = join(tmp.dir, 'bundles', 'linked');
    const { bundle, digest } = await scriptBundle(bundleDir, 'echo ran > artifacts/out.txt');
    await symlink('/etc/passwd', join(bundleDir, 'inputs', 'passwd'));
    const input: RunBundleInput = { runId: linkedRun, bundleDir, digest, host: 'local', logFile: bundle.spec.entrypoint.logFile, timeouts: bundle.spec.timeouts, tuning: { pollIntervalMs: 200 } };
    const handle = await client.workflow.start(runBundle, { taskQueue, workflowId: linkedRun, args: [input] });

    const err = await within(60_000, 'the run to end', handle.result()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const tries = activityTries((await handle.fetchHistory()).events ?? [], 'stage');
    expect(tries.map((t) => t.attempt)).toEqual([1]);
    expect(tries[0]!.failure?.applicationFailureInfo).toMatchObject({ type: ERROR.unsafeEntry, nonRetryable: true });
    expect(tries[0]!.failure?.message).toBe(UNSAFE);
    expect(existsSync(join(ctx.home, 'work', linkedRun, 'scripts', 'job.sh'))).toBe(false); // nothing was staged

    const status = await handle.query(statusQuery); // a closed workflow answers through the worker
    expect(status.phase).toBe('failed');
    const shown = await orbit(['status', linkedRun], cliEnv);
    expect(shown.stdout).toContain(`run ${linkedRun}: failed, phase failed`);
  });

  it('the refusal reason reaches the run status (status.error) and `orbit result` (the run of the case above)', async () => {
    const status = await client.workflow.getHandle(linkedRun).query(statusQuery);
    expect(status.error).toContain(UNSAFE);
    const result = await orbit(['result', linkedRun], cliEnv);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(UNSAFE);
  });

  it('sweep cells run from the store: a local edit changes nothing, a tampered or missing bundle in the store is refused at staging, once', async () => {
    const name = `r${tag}-changed`;
    schedules.push(name);
    const file = join(tmp.dir, `${name}.yaml`);
    await writeFile(
      file,
      `name: ${name}\nbase: { task: sleeper, score: 1 }\nmatrix:\n  case:\n    - { name: ok, set: { score: 5 } }\n    - { name: edited, set: { score: 6 } }\n    - { name: gone, set: { score: 7 } }\nschedule: { interval: 1d }\npollInterval: 200ms\n`,
    );
    const sweep = async (...argv: string[]): Promise<string> => {
      const lines: string[] = [];
      expect(await sweepCommand(argv, (s) => lines.push(s), { registry: async () => registry, context: async () => ctx })).toBe(0);
      return lines.join('\n');
    };
    await sweep('create', file);
    const dir = join(ctx.home, 'sweeps', name);
    const record = JSON.parse(await readFile(join(dir, 'sweep.json'), 'utf8')) as SweepRecord;
    const cell = (n: string) => record.cells.find((c) => c.name === n)!;
    const storeDir = join(ctx.home, 'store');
    // The client's own copy of a cell is not what runs: editing it changes nothing.
    await appendFile(join(dir, cell('ok').bundle, 'inputs', 'request.json'), ' ');
    // In the store: one cell's request blob rewritten, another cell's manifest gone.
    const request = await readFile(join(dir, cell('edited').bundle, 'inputs', 'request.json'));
    const blob = blobKey(createHash('sha256').update(request).digest('hex'));
    await writeFile(join(storeDir, blob), Buffer.from(request.toString('utf8').replace('6', '9')));
    await rm(join(storeDir, bundleKey(cell('gone').digest)));

    await sweep('trigger', name);
    const firing = await within(
      30_000,
      'the firing to start',
      (async () => {
        for (;;) {
          const id = (await client.schedule.getHandle(name).describe()).info.recentActions[0]?.action.workflow.workflowId;
          if (id) return id;
          await new Promise((r) => setTimeout(r, 250));
        }
      })(),
    );
    const err = await within(60_000, 'the firing to end', client.workflow.getHandle(firing).result()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);

    const r = JSON.parse(await sweep('results', name, '--format', 'json')) as FiringResults;
    expect(r.cells.map((c) => [c.cell, c.status])).toEqual([
      ['ok', 'succeeded'],
      ['edited', 'failed'],
      ['gone', 'failed'],
    ]);
    expect(r.cells[0]!.metrics).toMatchObject({ score: 5 });
    expect(r.cells[1]!.error).toContain(`store file://${storeDir}: object ${blob} (inputs/request.json)`);
    expect(r.cells[1]!.error).toContain('changed or truncated');
    expect(r.cells[2]!.error).toContain(`bundle ${cell('gone').digest} is not there (${bundleKey(cell('gone').digest)})`);
    // Refused once: a corrupt or missing object is final, not retried.
    for (const c of r.cells.slice(1)) {
      const stages = activityTries((await client.workflow.getHandle(c.workflowId).fetchHistory()).events ?? [], 'stage');
      expect(stages.map((t) => t.attempt)).toEqual([1]);
    }
    const table = await sweep('results', name);
    expect(table).toMatch(/edited\s+edited\s+failed/);
  });
});
