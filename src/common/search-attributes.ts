/** Orbit's custom search attributes: registered by temporal/ start-up, set by the client, updated by workflows. */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SA_TASK_TYPE = defineSearchAttributeKey('OrbitTaskType', SearchAttributeType.KEYWORD);
export const SA_JOB_KIND = defineSearchAttributeKey('OrbitJobKind', SearchAttributeType.KEYWORD);
export const SA_HOST = defineSearchAttributeKey('OrbitHost', SearchAttributeType.KEYWORD);
export const SA_PHASE = defineSearchAttributeKey('OrbitPhase', SearchAttributeType.KEYWORD);
export const SA_HOST_STATE = defineSearchAttributeKey('OrbitHostState', SearchAttributeType.KEYWORD);
export const SA_BUNDLE_DIGEST = defineSearchAttributeKey('OrbitBundleDigest', SearchAttributeType.KEYWORD);
export const SA_SWEEP = defineSearchAttributeKey('OrbitSweep', SearchAttributeType.KEYWORD);
/** Set when a run ended without its job ending by itself: `stopped` (Orbit stopped it) or `orphaned` (Orbit could not: it may still run on its host). */
export const SA_JOB_STATE = defineSearchAttributeKey('OrbitJobState', SearchAttributeType.KEYWORD);

/** The health rules' verdict while the job runs: ok, warning or unhealthy (bundles that declare rules). */
export const SA_HEALTH = defineSearchAttributeKey('OrbitHealth', SearchAttributeType.KEYWORD);

/** The GPUs a run's lease gives it on its host, e.g. "0,1" (empty for none). */
export const SA_GPUS = defineSearchAttributeKey('OrbitGpus', SearchAttributeType.KEYWORD);

/** Name and type of each, as `temporal operator search-attribute create --name N --type T` takes them. */
export const ORBIT_SEARCH_ATTRIBUTES: ReadonlyArray<{ name: string; type: 'Keyword' }> = [
  SA_TASK_TYPE,
  SA_JOB_KIND,
  SA_HOST,
  SA_PHASE,
  SA_HOST_STATE,
  SA_BUNDLE_DIGEST,
  SA_SWEEP,
  SA_JOB_STATE,
  SA_GPUS,
  SA_HEALTH,
].map((k) => ({ name: k.name, type: 'Keyword' as const }));
