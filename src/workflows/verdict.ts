/** How a run ended, from what the steps found: a pure function, unit-tested on its own. */
import type { CollectSummary, ProbeState } from '../common/activities';
import type { RunVerdictStatus } from '../common/run';

export interface VerdictFacts {
  /** The host never came back before the collection deadline. */
  lost: boolean;
  timedOut: boolean;
  exitCode: number | null;
  /** The state of the last probe that got an answer. */
  probeState?: ProbeState;
  collect: CollectSummary;
  host: string;
  runSeconds: number;
  collectDeadlineMs: number;
  /** Reasons found on the way (a job stopped after its host was lost). */
  earlier: string[];
}

export interface Verdict {
  status: RunVerdictStatus;
  reasons: string[];
}

export function verdictOf(f: VerdictFacts): Verdict {
  const reasons = [...f.earlier];
  const c = f.collect;
  if (f.lost) {
    reasons.push(`host ${f.host} was lost and did not come back within ${f.collectDeadlineMs / 1000}s; kept what was synced (${c.verifiedCount} verified files)`);
    return { status: 'lost', reasons };
  }
  if (f.timedOut) reasons.push(`stopped after its run timeout of ${f.runSeconds}s`);
  if (f.probeState === 'vanished') reasons.push('the process disappeared without writing an exit code');
  else if (f.probeState === 'missing') reasons.push(`the run folder is gone from host ${f.host}`);
  else if (f.probeState === 'not-launched') reasons.push("the run folder's runtime/ was removed on the host (by the job?): no pid or exit code to go by");
  else if (f.exitCode !== 0) reasons.push(`entrypoint exited with code ${f.exitCode}`);
  if (c.ended) reasons.push(`collection stopped (${c.ended.class === 'local' ? "the worker's side" : "the host's run folder"}): ${c.ended.reason}; what was collected before is kept`);
  if (!c.manifestPresent) reasons.push(c.manifestProblem ? `artifacts/manifest.json ${c.manifestProblem}` : 'artifacts/manifest.json is missing');
  else if (!c.verified && !c.ended) {
    const extra = c.totals.unverified ? `, ${c.totals.unverified} not in the manifest` : '';
    reasons.push(`artifacts failed verification (${c.totals.missing} missing, ${c.totals.mismatched} mismatched, ${c.totals.refused} refused${extra})`);
  }
  if (c.missingOutputs.length) reasons.push(`expected outputs missing: ${c.missingOutputs.join(', ')}`);
  return { status: reasons.length === 0 ? 'succeeded' : f.timedOut ? 'timed-out' : 'failed', reasons };
}
