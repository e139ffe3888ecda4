/**
 * `submit --follow`: the run's phases as they happen, the task log streamed under them, and on an
 * interrupt a line saying the run goes on. Returns when the workflow has ended.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { healthLine, sameHealth, type HealthReport } from '../common/health';
import { isOutcome, type RunStatus } from '../common/run';
import { formatTime, type Io } from './io';
import { queryStatus } from './status-query';

export interface FollowOptions {
  /** Streams the task log under the phase lines (orbit logs -f); resolves when the run has ended. */
  streamLog?: (signal: AbortSignal) => Promise<unknown>;
}

export async function follow(client: Client, handle: WorkflowHandle, io: Io, options: FollowOptions = {}): Promise<void> {
  const stopLog = new AbortController();
  const onInterrupt = () => {
    io.note(`\norbit: stopped following; run ${handle.workflowId} goes on (orbit status ${handle.workflowId}, orbit logs -f ${handle.workflowId}, orbit cancel ${handle.workflowId})`);
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  const log = options.streamLog?.(stopLog.signal).catch((e: unknown) => io.note(`orbit: the task log could not be streamed: ${(e as Error).message.split('\n')[0]}`));
  try {
    let shown = 0;
    let health: HealthReport | undefined;
    for (;;) {
      const status: RunStatus | undefined = await queryStatus(client, handle.workflowId, 5000);
      for (const p of status?.phases.slice(shown) ?? []) {
        const pid = p.phase === 'running' && status?.launch?.pid ? ` (pid ${status.launch.pid} on ${p.host ?? status.host})` : '';
        io.out(`[${formatTime(p.at)}] ${p.phase}${pid}`);
      }
      shown = status?.phases.length ?? shown;
      // A change of the health verdict gets a line of its own (the first ok stays quiet).
      if (status?.health && !sameHealth(status.health, health)) {
        if (health || status.health.state !== 'ok') io.out(`[${formatTime(status.health.at)}] health ${healthLine(status.health)}`);
        health = status.health;
      }
      if (status && isOutcome(status.phase)) break;
      const d = await handle.describe();
      if (d.status.name !== 'RUNNING') break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    await log;
  } finally {
    stopLog.abort();
    process.removeListener('SIGINT', onInterrupt);
  }
}
