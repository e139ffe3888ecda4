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

export interface Diagnosis {
  bundleDir: string;
  healthy: boolean;
  /** The layer that explains the failure; undefined when healthy. */
  verdict?: LayerFinding;
  exitCode: number | null;
  layers: LayerFinding[];
}
