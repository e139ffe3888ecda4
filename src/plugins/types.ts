/**
 * The plugin boundary. A TaskPlugin knows one kind of task; it runs only in the client, before a
 * workflow starts (parse, validate, build a bundle) and after it ends (summarize). The execution
 * core never imports a plugin.
 */
import type { z } from 'zod';
import type { Bundle, ManifestCheck, Problem } from '../bundle';
import type { OutcomeStatus } from '../common/run';

/** What the client hands a plugin when it builds a bundle. */
export interface TaskSubmission<Req> {
  /** The parsed, validated request. */
  request: Req;
  /** Job id (a slug), chosen by the submitter or derived from the request file name. */
  jobId: string;
  /** Folder of the request file: relative paths in a request resolve against it. */
  baseDir: string;
}

/** The outcome of a run as the client sees it, handed to the plugin to summarize. */
export interface RunOutcome {
  status: OutcomeStatus;
  exitCode: number | null;
  manifest: ManifestCheck;
}

/** A plugin's summary of a finished run: a headline and a few named metrics. */
export interface TaskSummary {
  headline: string;
  metrics: Record<string, number | string | null>;
  /** Files worth opening, relative to the bundle. */
  highlights: string[];
}

export interface TaskPlugin<Schema extends z.ZodType = z.ZodType> {
  /** Name used in request files (`task: <taskType>`). */
  readonly taskType: string;
  /** Opaque kind recorded in job.json. */
  readonly jobKind: string;
  /** One line for `orbit tasks`. */
  readonly description: string;
  readonly requestSchema: Schema;
  /** Parses raw YAML/JSON; problems name the field and the fix. */
  parse(raw: unknown): { ok: true; value: z.infer<Schema> } | { ok: false; problems: Problem[] };
  /** Semantic checks beyond the schema (files exist, values agree); empty when valid. */
  validate(request: z.infer<Schema>, baseDir: string): Promise<Problem[]>;
  /** Creates the bundle in `bundleDir` (empty or missing). Does not freeze it: the client does. */
  buildBundle(bundleDir: string, submission: TaskSubmission<z.infer<Schema>>): Promise<Bundle>;
  /** Lines `orbit submit` prints about a bundle just built (e.g. what of a workdir was staged); optional. */
  describeBundle?(bundle: Bundle): string[];
  /** Reads the collected bundle and says what the run achieved. */
  summarizeResult(bundle: Bundle, outcome: RunOutcome): Promise<TaskSummary>;
}
