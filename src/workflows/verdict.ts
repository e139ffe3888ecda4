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
  else if (f.exitCode !== 0) reasons.push(`entrypoint exited with code ${f.exitCode}`);
  if (!c.manifestPresent) reasons.push('artifacts/manifest.json is missing');
  else if (!c.verified) reasons.push(`artifacts failed verification (${c.totals.missing} missing, ${c.totals.mismatched} mismatched, ${c.totals.refused} refused)`);
  if (c.missingOutputs.length) reasons.push(`expected outputs missing: ${c.missingOutputs.join(', ')}`);
  return { status: reasons.length === 0 ? 'succeeded' : f.timedOut ? 'timed-out' : 'failed', reasons };
}
