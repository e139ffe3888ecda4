/** `orbit report RUN`: writes the run's static HTML report into its bundle, at runtime/report.html. */
import type { TemporalTarget } from '../config';
import { writeReport } from '../report';
import type { Diagnosis } from '../diagnose';
import { resolveRun } from './diagnose';

/** The diagnosis in one line: healthy, cancelled (and any failure of its own), or the layer that failed. */
export function verdictLine(d: Diagnosis): string {
  if (d.healthy) return 'healthy';
  const failed = d.verdict ? `failed at ${d.verdict.layer}: ${d.verdict.summary}` : undefined;
  if (d.cancelled) return `cancelled: ${d.cancelled.summary}${failed ? `; also ${failed}` : ''}`;
  return failed ?? 'not healthy';
}

/** Writes the report and prints where it is and the one-line verdict; 0 once written. */
export async function runReport(runOrPath: string, target: TemporalTarget, out: (s: string) => void): Promise<number> {
  const { dir, ending } = await resolveRun(runOrPath, target);
  const { path, diagnosis } = await writeReport(dir, ending);
  out(`report written: ${path}`);
  out(`  diagnosis: ${verdictLine(diagnosis)}`);
  return 0;
}
