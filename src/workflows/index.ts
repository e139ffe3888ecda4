export { runBundle, statusQuery } from './run-bundle';
export type { RunBundleInput, RunResult, RunStatus, Phase } from './run-bundle';
