/**
 * What a cancelled run's workflow history says about its end: who asked for the cancel, when and why
 * (the request's `reason`, kept by Temporal as the cancel-requested event's `cause`), and what the
 * collection after the cancel brought back. A cancelled run ends with a cancellation, not a RunResult,
 * so this is where `orbit result`, `orbit status`, `orbit cancel` and `orbit diagnose` read it from.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { tsToMs } from '@temporalio/common/lib/time';
import type { CollectSummary } from '../common/activities';
import { isOutcome, type PhaseEntry } from '../common/run';
import { SA_HOST, SA_HOST_STATE, SA_PHASE } from '../common/search-attributes';
import type { LiveHealth, RunEnding } from '../diagnose/findings';
import { formatTime } from './io';

export interface CancelRecord {
  /** ISO time of the cancel request. */
  requestedAt?: string;
  /** Who asked: the client's identity (`pid@host` by default). */
  identity?: string;
  /** The reason given with the request (`orbit cancel --reason`). */
  reason?: string;
  /** The last collection of the run, when one completed (for a cancelled run: the one after the cancel). */
  collect?: CollectSummary;
}

type HistoryEvent = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];

function decode(payload: unknown): unknown {
  try {
    return defaultPayloadConverter.fromPayload(payload as Parameters<typeof defaultPayloadConverter.fromPayload>[0]);
  } catch {
    return undefined;
  }
}

/** The cancel request and the last collection in `events`; undefined when no cancel was requested. */
export function cancelRecordOf(events: HistoryEvent[]): CancelRecord | undefined {
  const types = new Map<string, string>();
  let record: CancelRecord | undefined;
  let collect: CollectSummary | undefined;
  for (const e of events) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name) types.set(String(e.eventId), scheduled.activityType.name);
    const completed = e.activityTaskCompletedEventAttributes;
    if (completed && types.get(String(completed.scheduledEventId)) === 'collect') {
      const value = decode(completed.result?.payloads?.[0]);
      if (value && typeof value === 'object') collect = value as CollectSummary;
    }
    const cancel = e.workflowExecutionCancelRequestedEventAttributes;
    if (cancel && !record) {
      const at = e.eventTime ? tsToMs(e.eventTime) : undefined;
      record = {
        ...(at !== undefined ? { requestedAt: new Date(at).toISOString() } : {}),
        ...(cancel.identity ? { identity: cancel.identity } : {}),
        ...(cancel.cause ? { reason: cancel.cause } : {}),
      };
    }
  }
  return record && (collect ? { ...record, collect } : record);
}

/** The cancel of a run read from its history; undefined when none was requested or the history cannot be read. */
export async function cancelRecord(handle: WorkflowHandle): Promise<CancelRecord | undefined> {
  try {
    const history = await handle.fetchHistory();
    return cancelRecordOf(history.events ?? []);
  } catch {
    return undefined;
  }
}

/** One line: `cancel requested 2026-12-01 10:00:00 UTC by 123@box: "wrong data"` (the record itself keeps ISO). */
export function cancelLine(c: CancelRecord): string {
  return `cancel requested${c.requestedAt ? ` ${formatTime(c.requestedAt)}` : ''}${c.identity ? ` by ${c.identity}` : ''}${c.reason ? `: ${JSON.stringify(c.reason)}` : ''}`;
}

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
    const { queryStatus } = await import('./status');
    const s = await queryStatus(client, runId);
    const lostAt = lostAtOf(s?.phases);
    const now = s ? { phase: s.phase, host: s.host, hostState: s.hostState } : { ...(phase ? { phase } : {}), ...known };
    const live = s?.health ? { state: s.health.state, ...(s.health.findings[0] ? { rule: s.health.findings[0].rule, summary: s.health.findings[0].summary } : {}), at: s.health.at } : health;
    return { status: 'running', ...now, ...(lostAt ? { lostAt } : {}), ...(live ? { health: live } : {}) };
  }
  const status = phase && isOutcome(phase) ? phase : d.status.name.toLowerCase();
  const ending: RunEnding = { status, ...(phase ? { phase } : {}), ...known, ...(health ? { health } : {}) };
  if (status !== 'lost') return ending;
  const { awaitRun } = await import('./outcome');
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
