/** What `submit --follow` adds to the phase lines: the task log streamed under them, and after a failure the last traceback and the command that explains it. */
import type { Client } from '@temporalio/client';
import type { TemporalTarget } from '../config';
import type { Io } from './io';
import { lastTraceback, streamTaskLog } from './logs';
import type { FinishedRun } from './outcome';

/** Streams the run's task log (offset-based, as `orbit logs -f`), each line indented under the phases. */
export function streamLogFor(client: Client, target: TemporalTarget, runId: string, io: Io): (signal: AbortSignal) => Promise<unknown> {
  return (signal) => streamTaskLog({ client, target, runId, follow: true, out: (l) => io.out(`    ${l}`), note: (l) => io.note(`orbit: ${l}`), signal });
}

/** For a run that did not succeed: the last Python traceback of its task log, and `orbit diagnose`. */
export async function failureHints(run: FinishedRun): Promise<string[]> {
  const lines: string[] = [];
  const traceback = run.bundleDir ? await lastTraceback(run.bundleDir).catch(() => undefined) : undefined;
  if (traceback?.length) lines.push('  last traceback in the task log:', ...traceback.map((l) => `    ${l}`));
  if (run.status !== 'cancelled') lines.push(`  why: orbit diagnose ${run.workflowId}   (orbit report ${run.workflowId} writes the HTML report)`);
  return lines;
}
