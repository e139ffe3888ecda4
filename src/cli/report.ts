/** `orbit report RUN`: writes the run's static HTML report into its bundle, at runtime/report.html. */
import type { TemporalTarget } from '../config';
import { writeReport } from '../report';
import { resolveBundleDir } from './diagnose';

/** Writes the report and prints where it is and the one-line verdict; 0 once written. */
export async function runReport(runOrPath: string, target: TemporalTarget, out: (s: string) => void): Promise<number> {
  const dir = await resolveBundleDir(runOrPath, target);
  const { path, diagnosis } = await writeReport(dir);
  out(`report written: ${path}`);
  out(diagnosis.healthy ? '  diagnosis: healthy' : `  diagnosis: failed at ${diagnosis.verdict?.layer}: ${diagnosis.verdict?.summary}`);
  return 0;
}
