/** The five-part bundle layout and the files in it that Orbit reads or writes. Node-free: shared by the client, workflows, activities and hosts. */
export const JOB_FILE = 'job.json';
export const INPUTS_DIR = 'inputs';
export const SCRIPTS_DIR = 'scripts';
export const RUNTIME_DIR = 'runtime';
export const ARTIFACTS_DIR = 'artifacts';

/** Parts the control plane builds and freezes; covered by the digest and staged to hosts. */
export const FROZEN_PARTS = [JOB_FILE, INPUTS_DIR, SCRIPTS_DIR] as const;
/** Parts the execution plane writes; collected back from hosts. */
export const COLLECTED_PARTS = [RUNTIME_DIR, ARTIFACTS_DIR] as const;

export const RUN_SCRIPT = 'scripts/orbit/run.sh';
export const MANIFEST_SCRIPT = 'scripts/orbit/manifest.py';
export const MANIFEST_FILE = 'artifacts/manifest.json';
export const LAST_RUN_FILE = 'runtime/last_run.json';
export const RUNTIME_LOG = 'runtime/runtime.log';
export const PID_FILE = 'runtime/pid';
export const EXIT_CODE_FILE = 'runtime/exit_code';
export const SECRET_ENV_FILE = 'runtime/.secret-env';
/** Written locally when the bundle is frozen; never staged, never overwritten by a collection. */
export const FROZEN_FILE = 'runtime/frozen.json';
/** Suffix of a file being received; renamed into place once verified. */
export const PARTIAL_SUFFIX = '.orbit-part';

/** Generated runtime helpers beside run.sh: the dependency precheck, its config, and the GPU audit. */
export const PRECHECK_SCRIPT = 'scripts/orbit/precheck.py';
export const PRECHECK_CONFIG = 'scripts/orbit/precheck.json';
export const GPU_AUDIT_SCRIPT = 'scripts/orbit/gpu_audit.py';
/** The optional Python helper of the job contract (docs/job-contract.md); its folder is on the job's PYTHONPATH. */
export const JOB_HELPER = 'scripts/orbit/python/orbit_job.py';
export const JOB_HELPER_DIR = 'scripts/orbit/python';
/** The task's config under inputs/, when a plugin writes one: ORBIT_TASK_CONFIG. */
export const TASK_CONFIG_INPUT = 'config.json';
/** What the precheck found: interpreter, each required module's version and real path, forks, CUDA, driver. */
export const PRECHECK_LOG = 'artifacts/runtime-precheck.log';
/** One JSON line per GPU per second while the entrypoint runs (or one no-gpu record). */
export const GPU_AUDIT_LOG = 'artifacts/nvml-audit.jsonl';
/** The static run report `orbit report` writes; local only, outside the digest and the manifest. */
export const REPORT_FILE = 'runtime/report.html';
