/**
 * The remote protocol between Orbit's host code (src/hosts) and what runs on a host (run.sh and the
 * scripts the host code sends): the files a run leaves in its folder, the lines the scripts print, and
 * the exit codes that mean something. Written once here; node-free.
 *
 * A run's folder on a host is `<workRoot>/<runId>/`, the bundle's layout (./layout.ts) plus:
 *   runtime/.launched/        made (mkdir) by the first launch attempt; "launched" only with a proof the job
 *                             started: .launched/pid, runtime/pid or runtime/exit_code (else a retry starts it)
 *   runtime/.launched/pid     the pid of the detached wrapper (setsid: also its process group id)
 *   runtime/.launched/identity  `key=value` lines: `token=` (written before the spawn: "spawning"), then
 *                             `pid=` and `starttime=` (field 22 of /proc/<pid>/stat) once the wrapper is spawned
 *   runtime/.launch.lock      flock'd by the launch script (when the host has flock): one launch attempt at a time
 *   runtime/wrapper.out       stdout and stderr of run.sh itself
 *   runtime/pid               written by run.sh as its first act (the process group to signal)
 *   runtime/exit_code         written by run.sh as its last act, after artifacts/manifest.json
 */
import { RUNTIME_DIR } from './layout';

export const LAUNCH_MARKER_DIR = `${RUNTIME_DIR}/.launched`;
export const LAUNCH_PID_FILE = `${LAUNCH_MARKER_DIR}/pid`;
/**
 * The identity of the run's process group, recorded by the launch: only a group whose leader has this
 * start time, or (the leader gone) whose member carries this token in its environment, is signalled.
 */
export const RUN_IDENTITY_FILE = `${LAUNCH_MARKER_DIR}/identity`;
/** The lock file two launch attempts of one run serialise on (flock; released however the holder ends). */
export const LAUNCH_LOCK_FILE = `${RUNTIME_DIR}/.launch.lock`;
export const WRAPPER_OUT_FILE = `${RUNTIME_DIR}/wrapper.out`;
/** The full collection report in the local bundle (the workflow gets a capped summary). */
export const COLLECTION_REPORT = `${RUNTIME_DIR}/collection.json`;
/** Where a relaunch stages the unit folder to resume from, inside the run folder. */
export const RESUME_DIR = 'resume';

/** Lines the host scripts print: one word, at the start of a line. */
export const MARK = {
  /** A launch that started the job. */
  launched: 'ORBIT_LAUNCHED',
  /** A launch that found the job launched already and started nothing. */
  existing: 'ORBIT_EXISTING',
  /** Followed by a message: the run folder or its run.sh is not there (exit code EXIT.notStaged). */
  error: 'ORBIT_ERR',
  /** A cancel that found no job running: nothing was signalled. */
  notRunning: 'ORBIT_NOT_RUNNING',
  /** A cancel that stopped the job with TERM within the grace period. */
  stopped: 'ORBIT_STOPPED',
  /** A cancel that had to KILL the job's process group. */
  killed: 'ORBIT_KILLED',
  /**
   * Followed by a pid, on stderr: printed by the SSH login shell before it becomes bash, so a
   * timed-out or aborted script can be killed with its whole session (process group).
   */
  sessionPid: 'ORBIT_PID',
  /** Followed by a section name: the start of one section of the `orbit hosts check` script's output. */
  checkSection: '@@ORBIT-CHECK',
} as const;

/** Lines that open the log tails in the probe script's output (after its `key=value` lines). */
export const PROBE_SECTION = {
  runtimeLog: '--runtime.log',
  taskLog: '--task.log',
} as const;

export const EXIT = {
  /** A host script's own exit: the run was never staged on this host. */
  notStaged: 3,
  /** run.sh: the dependency precheck failed and the entrypoint never started. */
  precheckFailed: 86,
  /** run.sh could not enter its own bundle folder. */
  noBundle: 90,
  /** Recorded by cancel when the job had to be killed before it wrote its own exit code. */
  killed: 137,
  /** The usual exit of a job stopped by TERM. */
  terminated: 143,
  /** The SSH transport's own: a script sent ahead of stdin could not be read whole. */
  scriptNotRead: 97,
} as const;

/**
 * Why Orbit stops a job, written by the cancel script as `why=<reason>` on its `cancel requested` line
 * in runtime/runtime.log, so the bundle itself says whether a cancel or the run's timeout ended the job.
 * A stop without a reason (after a failure, a lost host's job) writes no `why=`.
 */
export const STOP_REASON = { cancelled: 'cancelled', timedOut: 'timed-out' } as const;
export type StopReason = (typeof STOP_REASON)[keyof typeof STOP_REASON];

/** Environment that run.sh reads or sets for the job. */
export const ENV = {
  runId: 'ORBIT_RUN_ID',
  /** A random token the launch generates, one per started wrapper: every process of the run carries it (RUN_IDENTITY_FILE). */
  runToken: 'ORBIT_RUN_TOKEN',
  bundleDir: 'ORBIT_BUNDLE_DIR',
  artifactsDir: 'ORBIT_ARTIFACTS_DIR',
  inputsDir: 'ORBIT_INPUTS_DIR',
  /** The job's results folder (artifacts/ or job.json `outputDir` under it): synced while it runs, collected at the end. */
  outputDir: 'ORBIT_OUTPUT_DIR',
  /** The folder of the job's checkpoints (job.json sync.atomicDirs[0]): a sub-folder counts once it holds the marker. */
  checkpointDir: 'ORBIT_CHECKPOINT_DIR',
  /** The marker file a checkpoint folder holds once complete, written last (e.g. COMPLETE). */
  checkpointMarker: 'ORBIT_CHECKPOINT_MARKER',
  /** The progress series file (job.json progress.file): JSON lines {step, metric, ...}, what health, diagnosis and report read. */
  metricsFile: 'ORBIT_METRICS_FILE',
  /** The task's config, inputs/config.json, when the plugin wrote one. */
  taskConfig: 'ORBIT_TASK_CONFIG',
  /** Set on a relaunch: the staged unit folder to continue from. */
  resumeFrom: 'ORBIT_RESUME_FROM',
  /** The GPU indices the run's lease gives it, comma-separated (also set as CUDA_VISIBLE_DEVICES). */
  gpus: 'ORBIT_GPUS',
  cudaVisibleDevices: 'CUDA_VISIBLE_DEVICES',
  /** The lease's fencing token. */
  lease: 'ORBIT_LEASE',
  /** The host the lease is on. */
  host: 'ORBIT_HOST',
} as const;
