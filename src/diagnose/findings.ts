/** What a diagnosis is made of: the layers it walks, and a finding per layer with its evidence. */

export type LayerId = 'runtime' | 'precheck' | 'task' | 'progress' | 'gpu';
export const LAYERS: readonly LayerId[] = ['runtime', 'precheck', 'task', 'progress', 'gpu'];

/**
 * The question each layer answers, phrased so that a failed layer answers "no": `orbit diagnose`
 * prints it as `FAILED at <layer> (<question> no)`.
 */
export const LAYER_QUESTIONS: Record<LayerId, string> = {
  runtime: 'did the bundle stage and probe, on a host with disk to spare that kept answering?',
  precheck: 'did the dependencies resolve?',
  task: 'did the process run to a clean exit?',
  progress: 'did the declared metrics make progress?',
  gpu: 'did GPU memory stay clear of the limit to the end?',
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
  /** A finer label of a failure, e.g. "missing-module", "exception", "signal", "nan", "disk-full", "host-lost". */
  kind?: string;
}

/** How the run ended as Temporal records it, when the caller knows (`orbit diagnose RUN` with a run id asks). */
export interface RunEnding {
  /** An outcome (succeeded, failed, cancelled, timed-out, lost), or the workflow's status while it runs (running). */
  status: string;
  /** One line on where the status comes from, e.g. the cancel request (who, when, why). */
  detail?: string;
  /** The workflow's phase (its status query, else OrbitPhase), e.g. running, recovering, collecting, lost. */
  phase?: string;
  /** The workflow's view of the host: reachable, unreachable or lost. */
  hostState?: string;
  /** The run's host, by its name in the worker's registry. */
  host?: string;
  /** ISO time the workflow found the host lost (its first `recovering` phase). */
  lostAt?: string;
  /** The verdict's reasons, for a run that ended with one (RunResult.reasons). */
  reasons?: string[];
  /** The health rules' last live verdict (the status query while it runs, else the memo). */
  health?: LiveHealth;
}

/** The live health verdict as the workflow recorded it (docs/health.md). */
export interface LiveHealth {
  state: 'ok' | 'warning' | 'unhealthy';
  rule?: string;
  summary?: string;
  at?: string;
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
  /** The workflow's last live health verdict, when the caller asked Temporal: an unhealthy one makes the run not healthy, whatever the layers say. */
  liveHealth?: LiveHealth;
}

/** `list` without repeated lines: one entry per file and line (per file and text for entries without a line), first kept. */
export function dedupeEvidence(list: readonly Evidence[]): Evidence[] {
  const seen = new Set<string>();
  return list.filter((e) => {
    const key = `${e.file}\0${e.line ?? `\0${e.text}`}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
