/** What a diagnosis is made of: the layers it walks, and a finding per layer with its evidence. */

export type LayerId = 'runtime' | 'precheck' | 'task' | 'progress' | 'gpu';
export const LAYERS: readonly LayerId[] = ['runtime', 'precheck', 'task', 'progress', 'gpu'];

export const LAYER_QUESTIONS: Record<LayerId, string> = {
  runtime: 'did the bundle stage and probe on the host?',
  precheck: 'did the dependencies resolve?',
  task: 'did the process run to a clean exit?',
  progress: 'did the declared metrics make progress?',
  gpu: 'did GPU memory climb to the limit before the end?',
};

/** One line of a file that supports a finding. `file` is relative to the bundle. */
export interface Evidence {
  file: string;
  line?: number;
  text: string;
}

export interface LayerFinding {
  layer: LayerId;
  status: 'ok' | 'failed' | 'skipped';
  /** One line: what this layer shows. */
  summary: string;
  evidence: Evidence[];
  /** A finer label of a failure, e.g. "missing-module", "exception", "signal", "nan". */
  kind?: string;
}

/** How the run ended as Temporal records it, when the caller knows (`orbit diagnose RUN` with a run id asks). */
export interface RunEnding {
  /** An outcome (succeeded, failed, cancelled, timed-out, lost), or the workflow's status while it runs. */
  status: string;
  /** One line on where the status comes from, e.g. the cancel request (who, when, why). */
  detail?: string;
}

/**
 * A run that was cancelled: neither healthy nor a failed layer. Known from the run's status (Temporal)
 * and/or runtime/runtime.log, where the cancel that stopped the job wrote `cancel requested ... why=cancelled`.
 */
export interface CancelFinding {
  summary: string;
  /** The lines of the runtime/ files the collection brought that show the cancel, the stop and the collection. */
  evidence: Evidence[];
  /** The run's status as the caller gave it (`cancelled` and where that comes from), when it did. */
  runStatus?: string;
}

export interface Diagnosis {
  bundleDir: string;
  /** Every layer passed and the run was not cancelled. */
  healthy: boolean;
  /** Set when the run was cancelled: the verdict then, whatever the layers show of the stop itself. */
  cancelled?: CancelFinding;
  /** The layer that explains the failure; undefined when healthy (and for a cancelled run with no failure of its own). */
  verdict?: LayerFinding;
  exitCode: number | null;
  layers: LayerFinding[];
}
