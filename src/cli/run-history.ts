/**
 * What a cancelled run's workflow history says about its end: who asked for the cancel, when and why
 * (the request's `reason`, kept by Temporal as the cancel-requested event's `cause`), and what the
 * collection after the cancel brought back. A cancelled run ends with a cancellation, not a RunResult,
 * so this is where `orbit result`, `orbit status`, `orbit cancel` and `orbit diagnose` read it from.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { tsToMs } from '@temporalio/common/lib/time';
import type { CollectSummary } from '../common/activities';
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

