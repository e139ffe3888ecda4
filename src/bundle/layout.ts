/** The five-part bundle layout. Node-free: shared by the client, activities and host transports. */
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
