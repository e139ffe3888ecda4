/**
 * `orbit status RUN`: where a run stands. A running run is asked through its status query, with a
 * short deadline and only when a worker polls the task queue; otherwise (no worker, or one too busy
 * to answer) it is read from the workflow's own state (search attributes, memo, the monitor's last
 * heartbeat), so the answer comes in about a second either way.
 */
import type { Client, WorkflowExecutionDescription } from '@temporalio/client';
import type { MonitorHealth, Probe } from '../common/activities';
import { healthLine, type HealthReport } from '../common/health';
import type { PhaseEntry, RunStatus } from '../common/run';
import { taskQueue, workflowUiUrl, type TemporalTarget } from '../config';
import { CliError, EXIT_TEMPORAL, temporalCliError } from './errors';
import { emit, formatTime, type Io, type OutputFormat } from './io';
import { noWorkerWarning, workerPresence } from './presence';
import { queryStatus } from './status-query';

export { queryStatus };


export interface StatusReport {
  runId: string;
  /** Temporal's execution status: running, completed, failed, cancelled, terminated, timed_out. */
  execution: string;
  phase?: string;
  host?: string;
  hostState?: string;
  /** Who answered: the workflow through a worker (`query`), or its recorded state (`history`). */
  answeredBy: 'query' | 'history';
  process?: { state: string; pid?: number | null; artifactBytes: number; taskLogTail: string[] };
  queued?: NonNullable<RunStatus['queued']> & { place?: string };
  lease?: RunStatus['lease'];
  synced?: RunStatus['synced'];
  /** The health rules' latest verdict: from the query, the monitor's heartbeat, or the memo (its headline only). */
  health?: HealthReport | HealthHeadline;
  phases: PhaseEntry[];
  /** Why a run that ended did not succeed. */
  reason?: string;
  store?: string;
  digest?: string;
  bundleDir?: string;
  webUi?: string;
  /** Workers polling the task queue; undefined when Temporal would not say. */
  workers?: string[];
  taskQueue: string;
  startedAt: string;
  closedAt?: string;
}

/** The health verdict as the memo keeps it: its level and its first finding. */
export interface HealthHeadline {
  state: HealthReport['state'];
  rule?: string;
  summary?: string;
  evidence?: string;
  at?: string;
}

/** The newest monitor heartbeat of a running run (fresher than the workflow's own status between returns). */
function liveBeat(d: WorkflowExecutionDescription): { probe?: Probe; health?: MonitorHealth } | undefined {
  for (const a of d.raw.pendingActivities ?? []) {
    const data = a.heartbeatDetails?.payloads?.[0]?.data;
    if (!data) continue;
    try {
      const beat = JSON.parse(Buffer.from(data).toString('utf8')) as { probe?: Probe; health?: MonitorHealth };
      if (beat.probe) return beat;
    } catch {
      /* not a monitor heartbeat */
    }
  }
  return undefined;
}

/** The newest probe a running monitor heartbeated. */
export function liveProbe(d: WorkflowExecutionDescription): Probe | undefined {
  return liveBeat(d)?.probe;
}

function memoHealth(memo: Record<string, unknown>): HealthHeadline | undefined {
  const h = memo.health as Partial<HealthHeadline> | undefined;
  if (!h || (h.state !== 'ok' && h.state !== 'warning' && h.state !== 'unhealthy')) return undefined;
  const s = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return { state: h.state, ...(s(h.rule) ? { rule: s(h.rule) } : {}), ...(s(h.summary) ? { summary: s(h.summary) } : {}), ...(s(h.evidence) ? { evidence: s(h.evidence) } : {}), ...(s(h.at) ? { at: s(h.at) } : {}) };
}

/** One line of the verdict, whichever source it came from. */
export function healthText(h: HealthReport | HealthHeadline): string {
  if ('findings' in h) return healthLine(h);
  return h.rule ? `${h.state}: ${h.rule}: ${h.summary ?? ''}` : h.state;
}


export async function statusReport(client: Client, id: string, target: TemporalTarget): Promise<StatusReport> {
  const handle = client.workflow.getHandle(id);
  const d = await handle.describe().catch((e: Error) => {
    throw temporalCliError(e, target) ?? new CliError(`run ${id}: ${e.message}`, EXIT_TEMPORAL);
  });
  // The run's own task queue: its workers are the ones that can answer.
  const queue = d.taskQueue || taskQueue();
  const presence = d.status.name === 'RUNNING' ? await workerPresence(client, queue) : { known: false, workers: [] };
  const running = d.status.name === 'RUNNING';
  const askable = running && (!presence.known || presence.workers.length > 0);
  const status = askable ? await queryStatus(client, id) : undefined;
  const attr = (name: string) => d.typedSearchAttributes.getAll().find((p) => p.key.name === name)?.value as string | undefined;
  const memo = (d.memo ?? {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const beat = running ? liveBeat(d) : undefined;
  const probe = beat?.probe ?? status?.probe;
  const health = beat?.health?.report ?? status?.health ?? memoHealth(memo);
  const report: StatusReport = {
    runId: id,
    execution: d.status.name.toLowerCase(),
    phase: status?.phase ?? attr('OrbitPhase'),
    host: status?.host ?? attr('OrbitHost'),
    hostState: status?.hostState,
    answeredBy: status ? 'query' : 'history',
    process: probe ? { state: probe.state, pid: probe.pid, artifactBytes: probe.artifactBytes, taskLogTail: probe.taskLogTail } : undefined,
    queued: status?.queued ? { ...status.queued, place: await (await import('./fleet')).queuePlace(client, id, status.queued) } : undefined,
    lease: status?.lease,
    synced: status?.synced.files ? status.synced : undefined,
    ...(health ? { health } : {}),
    phases: status?.phases ?? [],
    store: str(memo.store),
    digest: str(memo.digest),
    bundleDir: str(memo.bundleDir),
    webUi: workflowUiUrl(target, id),
    workers: presence.known ? presence.workers : undefined,
    taskQueue: queue,
    startedAt: d.startTime.toISOString(),
    closedAt: d.closeTime?.toISOString(),
  };
  if (!running) {
    // Loaded only for an ended run: the outcome module brings the bundle and plugin code.
    const { awaitRun } = await import('./outcome');
    const ended = await awaitRun(handle).catch(() => undefined);
    if (ended?.error && ended.status !== 'succeeded') report.reason = ended.error;
  }
  return report;
}

export function printStatus(r: StatusReport, io: Io): void {
  const head = r.phase ? `, phase ${r.phase}${r.host ? ` on ${r.host}` : ''}` : '';
  io.out(`run ${r.runId}: ${r.execution}${head}${r.hostState && r.hostState !== 'reachable' ? ` (host ${r.hostState})` : ''}`);
  io.out(`  started: ${formatTime(r.startedAt)}${r.closedAt ? `; ended ${formatTime(r.closedAt)}` : ''}`);
  if (r.process) io.out(`  process: ${r.process.state}${r.process.pid ? ` pid ${r.process.pid}` : ''}, artifacts ${r.process.artifactBytes} bytes`);
  for (const l of r.process?.taskLogTail ?? []) io.out(`    ${l}`);
  if (r.queued?.place) io.out(`  ${r.queued.place}`);
  if (r.lease) io.out(`  lease: ${r.lease.host} gpus [${r.lease.gpus.join(',')}] since ${formatTime(r.lease.grantedAt)} (token ${r.lease.token})`);
  if (r.synced) io.out(`  synced while running: ${r.synced.files} files, ${r.synced.bytes} bytes`);
  if (r.health) {
    io.out(`  health: ${healthText(r.health)}`);
    const f = 'findings' in r.health ? r.health.findings : [];
    if (f[0]?.evidence) io.out(`    ${f[0].evidence.file ? `${f[0].evidence.file}${f[0].evidence.line ? `:${f[0].evidence.line}` : ''}: ` : ''}${f[0].evidence.text.slice(0, 300)}`);
    for (const more of f.slice(1)) io.out(`    also ${more.level}: ${more.rule}: ${more.summary}`);
  }
  for (const p of r.phases) io.out(`  ${formatTime(p.at)}  ${p.phase}`);
  if (r.reason) io.out(`  reason: ${r.reason}`);
  if (r.store) io.out(`  store: ${r.store} (bundle ${r.digest}; orbit pull ${r.runId} brings it here)`);
  else if (r.bundleDir) io.out(`  bundle: ${r.bundleDir}`);
  if (r.webUi) io.out(`  Web UI: ${r.webUi}`);
  if (r.execution === 'running' && r.answeredBy === 'history') io.out('  (from the workflow\'s recorded state: no worker answered the status query)');
  if (r.execution === 'running' && r.workers) {
    const warning = noWorkerWarning({ known: true, workers: r.workers }, r.taskQueue);
    if (warning) io.note(`orbit: ${warning}`);
  }
}

export async function statusCommand(id: string, format: OutputFormat, io: Io, client: Client, target: TemporalTarget): Promise<number> {
  const report = await statusReport(client, id, target);
  await emit(io, format, report, () => printStatus(report, io));
  return 0;
}
