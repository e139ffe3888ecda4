/**
 * How a run stands or ended as Temporal records it, for the diagnosis: its status, phase, host state,
 * when its host was found lost, its reasons, its last live health verdict (runEnding).
 */
import type { Client } from '@temporalio/client';
import { isOutcome, type PhaseEntry } from '../common/run';
import { SA_HOST, SA_HOST_STATE, SA_PHASE } from '../common/search-attributes';
import type { LiveHealth, RunEnding } from '../diagnose/findings';
import { awaitRun } from './outcome';
import { cancelLine, cancelRecord } from './run-history';
import { queryStatus } from './status-query';

/** When the workflow last found its host lost: the start of its last `recovering` phase. */
export function lostAtOf(phases: readonly PhaseEntry[] | undefined): string | undefined {
  return [...(phases ?? [])].reverse().find((p) => p.phase === 'recovering')?.at;
}

/**
 * The run's ending from Temporal (what `orbit diagnose RUN` and `orbit report RUN` hand the diagnosis):
 * its workflow status, its phase, host and host state, and for a cancelled run the cancel request. A
 * running run is asked through its status query (a short deadline), else read from its search
 * attributes; a run that ended lost adds its result (host, when it was found lost, the reasons).
 */
export async function runEnding(client: Client, runId: string): Promise<RunEnding> {
  const handle = client.workflow.getHandle(runId);
  const d = await handle.describe();
  if (d.status.name === 'CANCELLED') {
    const c = await cancelRecord(handle);
    return { status: 'cancelled', detail: `workflow ${runId} ended CANCELLED${c ? `; ${cancelLine(c)}` : ''}` };
  }
  const attr = (k: typeof SA_PHASE) => {
    const v = d.typedSearchAttributes.get(k);
    return typeof v === 'string' && v ? v : undefined;
  };
  const phase = attr(SA_PHASE);
  const health = liveHealthOf(d.memo);
  const known = { ...(attr(SA_HOST) ? { host: attr(SA_HOST)! } : {}), ...(attr(SA_HOST_STATE) ? { hostState: attr(SA_HOST_STATE)! } : {}) };
  if (d.status.name === 'RUNNING') {
    const s = await queryStatus(client, runId);
    const lostAt = lostAtOf(s?.phases);
    const now = s ? { phase: s.phase, host: s.host, hostState: s.hostState } : { ...(phase ? { phase } : {}), ...known };
    const live = s?.health ? { state: s.health.state, ...(s.health.findings[0] ? { rule: s.health.findings[0].rule, summary: s.health.findings[0].summary } : {}), at: s.health.at } : health;
    return { status: 'running', ...now, ...(lostAt ? { lostAt } : {}), ...(live ? { health: live } : {}) };
  }
  const status = phase && isOutcome(phase) ? phase : d.status.name.toLowerCase();
  const ending: RunEnding = { status, ...(phase ? { phase } : {}), ...known, ...(health ? { health } : {}) };
  if (status !== 'lost') return ending;
  const ended = await awaitRun(handle).catch(() => undefined);
  const r = ended?.result;
  if (!r) return ending;
  const lostAt = lostAtOf(r.phases);
  return { ...ending, host: r.host, ...(lostAt ? { lostAt } : {}), reasons: r.reasons, ...(ended.error ? { detail: ended.error } : {}) };
}

/** The health verdict the workflow keeps in its memo (`health`), when it is one. */
export function liveHealthOf(memo: Record<string, unknown> | undefined): LiveHealth | undefined {
  const h = memo?.['health'] as Partial<LiveHealth> | undefined;
  if (!h || (h.state !== 'ok' && h.state !== 'warning' && h.state !== 'unhealthy')) return undefined;
  const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  return { state: h.state, ...(str(h.rule) ? { rule: str(h.rule) } : {}), ...(str(h.summary) ? { summary: str(h.summary) } : {}), ...(str(h.at) ? { at: str(h.at) } : {}) };
}
