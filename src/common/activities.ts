/** Activity inputs and results: plain data, shared by workflows, activities, hosts and the CLI. Node-free. */
import type { HealthReport } from './health';
import type { StopReason } from './protocol';

/** What the workflow knows of the run's host: it answers; it did not answer lately; it stayed silent past hostLostAfterMs. */
export type HostState = 'reachable' | 'unreachable' | 'lost';

export interface StageResult {
  filesSent: number;
  bytesSent: number;
  filesSkipped: number;
}

export interface LaunchResult {
  pid: number | null;
  /** True when this call found the run already launched and started nothing. */
  alreadyLaunched: boolean;
}

export type ProbeState = 'missing' | 'not-launched' | 'starting' | 'running' | 'exited' | 'vanished';

export interface Probe {
  state: ProbeState;
  pid: number | null;
  exitCode: number | null;
  artifactBytes: number;
  /** Free space (MB, df's "available") of the filesystem holding the run folder; absent when the host could not say. */
  diskFreeMb?: number;
  /** Total size (MB) of that filesystem; absent when the host could not say. */
  diskTotalMb?: number;
  runtimeLogTail: string[];
  taskLogTail: string[];
}


export interface RunRef {
  runId: string;
  /** Name of the host in the worker's registry ("local" for the embedded default). */
  host: string;
}

/**
 * Where a run's bundle is: in a store (`store`, its URL, and `digest`: any worker fetches it from
 * there), or, for runs started before the store, `bundleDir`, a folder on the worker's disk.
 */
export interface BundleAt {
  store?: string;
  digest?: string;
  bundleDir?: string;
}

export interface StageInput extends RunRef, BundleAt {
  /** The digest the bundle had when the client froze it; staging refuses a changed bundle. */
  digest: string;
}

export interface LaunchInput extends RunRef, BundleAt {
  /** Extra environment for this launch only (e.g. ORBIT_RESUME_FROM); plain values, never secrets. */
  env?: Record<string, string>;
}

export interface MonitorInput extends RunRef, BundleAt {
  logFile: string;
  pollIntervalMs: number;
  /** Epoch ms after which the run is stopped as timed out. */
  deadlineMs: number;
  killGraceSeconds: number;
  /** Return after this long even if the run goes on, so the workflow can record progress. */
  chunkMs: number;
  /** Copy new and grown files back this often while the job runs (0: never). */
  syncIntervalMs: number;
  /** A host that has not answered for this long is lost. */
  hostLostAfterMs: number;
  /** Longest one probe may take before the host counts as not answering. */
  probeTimeoutMs: number;
  /** The host state the workflow knows, and since when it has not answered: the loss clock runs across calls. */
  hostState?: HostState;
  unreachableSince?: number;
  /** The health verdict so far and when output last grew: the rules' clocks run across calls (absent: the job just started). */
  health?: MonitorHealth;
}

/** What the monitor carries of a run's health between calls (and in its heartbeat). */
export interface MonitorHealth {
  report?: HealthReport;
  /** Epoch ms when the task log or the progress series last grew (the job's launch before). */
  lastOutputMs?: number;
  /** What was seen then: a digest of the probe's task-log tail, and the progress series' length. */
  seen?: { tail: string; points: number };
}

export interface MonitorResult {
  /** The run ended (exited, vanished or was stopped at its deadline). */
  finished: boolean;
  timedOut: boolean;
  /** The host did not answer for hostLostAfterMs. */
  hostLost: boolean;
  hostState: HostState;
  /** The last probe that got an answer, if any. */
  probe?: Probe;
  /** Files and bytes copied back by syncs during this call. */
  synced: { files: number; bytes: number };
  /** Epoch ms since when the host has not answered, when unreachable. */
  unreachableSince?: number;
  /** The health rules' verdict (bundles with rules); the call returns early when it changes. */
  health?: MonitorHealth;
}

/** What a monitor heartbeats, and resumes from after a worker restart. */
export interface MonitorHeartbeat {
  probe?: Probe;
  hostState: HostState;
  unreachableSince?: number;
  lastSyncAt?: number;
  health?: MonitorHealth;
}

export interface ProbeInput extends RunRef {
  logFile: string;
  probeTimeoutMs: number;
}

export interface ResumeInput extends RunRef, BundleAt {}

export interface ResumeStaged {
  /** Absolute path on the host of the staged unit folder, for ORBIT_RESUME_FROM; null when none was synced. */
  remotePath: string | null;
  /** Its path under the local bundle, e.g. artifacts/checkpoints/step-40. */
  localPath: string | null;
  filesSent: number;
}

export interface CollectInput extends RunRef, BundleAt {}

/** For a run whose host never came back: what the local copy holds. */
export interface ReportLocalInput extends BundleAt {
  /** Absent in runs recorded before the store (their bundleDir says where). */
  runId?: string;
  host: string;
  reason: string;
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
  /** Files under artifacts/ that the manifest does not list (written after it, or never listed): collected, not verified. */
  unverified?: string[];
  /** Why the manifest could not be used, when it is there but unusable (over the size limit, not JSON); absent otherwise. */
  manifestProblem?: string;
  /**
   * Set when the collection ended early for a failure no retry can fix: `local` (the worker's disk,
   * names or permissions) or `remote` (the run folder on the host is not what a run leaves). What was
   * collected before it is kept.
   */
  ended?: { class: 'local' | 'remote'; reason: string };
  /** Counts behind the (capped) lists above. */
  totals: { missing: number; mismatched: number; refused: number; unverified?: number };
}

export interface CancelInput extends RunRef {
  killGraceSeconds: number;
  /** Why the job is stopped, recorded in runtime/runtime.log (absent: no reason is written). */
  why?: StopReason;
}
