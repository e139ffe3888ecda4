/** Activity inputs and results: plain data, safe to import from workflow code (types only). */
import type { Probe, StageResult, LaunchResult } from '../hosts/shell-host';

export type { Probe, StageResult, LaunchResult };

export interface RunRef {
  runId: string;
  /** Name of the host in the worker's registry ("local" for the embedded default). */
  host: string;
}

export interface StageInput extends RunRef {
  bundleDir: string;
  /** The digest the bundle had when the client froze it; staging refuses a changed bundle. */
  digest: string;
}

export interface LaunchInput extends RunRef {
  bundleDir: string;
}

export interface MonitorInput extends RunRef {
  logFile: string;
  pollIntervalMs: number;
  /** Epoch ms after which the run is stopped as timed out. */
  deadlineMs: number;
  killGraceSeconds: number;
  /** Return after this long even if the run goes on, so the workflow can record progress. */
  chunkMs: number;
}

export interface MonitorResult {
  /** The run ended (exited, vanished or was stopped at its deadline). */
  finished: boolean;
  timedOut: boolean;
  probe: Probe;
}

export interface CollectInput extends RunRef {
  bundleDir: string;
}

/** What a collection did, compact enough for workflow history; the full lists are in runtime/collection.json. */
export interface CollectSummary {
  filesFetched: number;
  bytesFetched: number;
  filesSkipped: number;
  manifestPresent: boolean;
  verified: boolean;
  verifiedCount: number;
  missing: string[];
  mismatched: string[];
  refused: string[];
  missingOutputs: string[];
  /** Counts behind the (capped) lists above. */
  totals: { missing: number; mismatched: number; refused: number };
}

export interface CancelInput extends RunRef {
  killGraceSeconds: number;
}
