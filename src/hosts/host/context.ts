import type { Transport } from '../transport';

/** What the generic host operations (./stage.ts, ./process.ts, ./collect.ts) need of the host they act on. */
export interface HostContext {
  readonly name: string;
  readonly transport: Transport;
  /** The run's folder on the host, `<workRoot>/<runId>`; throws for a run id that is not safe there. */
  runDir(runId: string): string;
}
