/**
 * A run's side of the fleet (./fleet.ts): ask for a lease and wait, queued, for the grant; release it
 * as soon as the job no longer runs; tell the fleet when a host was lost. Every call to the fleet is a
 * durable signal (or, for the request, an activity that signals-with-start), so a worker killed in
 * the middle repeats it from history, and the fleet ignores a repeat.
 */
import { ApplicationFailure, condition, getExternalWorkflowHandle, type ExternalWorkflowHandle, log, upsertMemo, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { fleetWorkflowId, leaseCost, type LeaseGrant } from '../common/fleet';
import { ENV } from '../common/protocol';
import { DEFAULT_LEASE, type LeaseRecord } from '../common/run';
import { SA_GPUS } from '../common/search-attributes';
import { hostLostSignal, leaseGrantedSignal, leaseRefusedSignal, leaseReleaseSignal } from './fleet';
import type { RunContext } from './run-context';

export const PLACEMENT_REFUSED = 'PlacementError';

const fleetHandle = () => getExternalWorkflowHandle(fleetWorkflowId(workflowInfo().taskQueue));
const holder = () => ({ workflowId: workflowInfo().workflowId, runId: workflowInfo().runId });

export { leaseGrantedSignal, leaseRefusedSignal };

/**
 * Queues for a lease (phase `queued`) and waits until the fleet grants one; the run moves to the
 * granted host. `hosts` restricts where it may go (a pin, the relaunch hosts); `avoid` excludes.
 */
export async function acquireLease(ctx: RunContext, options: { hosts?: string[]; avoid?: string[] } = {}): Promise<LeaseGrant> {
  const { input, status, inbox } = ctx;
  const requestId = ctx.leaseRecords.length === 0 ? 'launch' : `relaunch-${ctx.leaseRecords.length}`;
  const resources = input.resources ?? DEFAULT_LEASE;
  const priority = input.priority ?? 0;
  inbox.waitingFor = requestId;
  inbox.grant = undefined;
  status.queued = { since: new Date().toISOString(), requestId, resources, priority, ...(options.hosts ? { hosts: options.hosts } : {}) };
  ctx.setPhase('queued');
  await ctx.acts.control.requestLease.executeWithOptions({ startToCloseTimeout: '1m', summary: `queue for ${resources.gpus} gpu(s)` }, [
    { request: { holder: holder(), requestId, resources, priority, submittedAt: workflowInfo().startTime.toISOString(), ...(options.hosts ? { hosts: options.hosts } : {}), ...(options.avoid?.length ? { avoid: options.avoid } : {}) } },
  ]);
  await condition(() => inbox.grant !== undefined || inbox.refusal !== undefined);
  await handBackStale(ctx);
  if (inbox.refusal) throw ApplicationFailure.nonRetryable(`${input.runId} cannot be placed: ${inbox.refusal.reason}`, PLACEMENT_REFUSED);
  const grant = inbox.grant!;
  inbox.waitingFor = undefined;
  status.queued = undefined;
  status.lease = grant;
  ctx.leaseRecords.push({ token: grant.token, host: grant.host, gpus: grant.gpus, queuedAt: grant.queuedAt, grantedAt: grant.grantedAt, ...(grant.pricePerHour !== undefined ? { pricePerHour: grant.pricePerHour } : {}) });
  if (grant.host !== status.host) ctx.moveTo(grant.host);
  upsertSearchAttributes([{ key: SA_GPUS, value: grant.gpus.join(',') }]);
  upsertMemo({ lease: { host: grant.host, gpus: grant.gpus, token: grant.token, grantedAt: grant.grantedAt } });
  log.info(`run ${input.runId}: leased ${grant.host} gpus [${grant.gpus.join(',')}] (token ${grant.token})`);
  return grant;
}

/** The environment a lease gives the job. */
export function leaseEnv(grant: LeaseGrant | undefined): Record<string, string> {
  if (!grant) return {};
  const gpus = grant.gpus.join(',');
  return { [ENV.cudaVisibleDevices]: gpus, [ENV.gpus]: gpus, [ENV.lease]: String(grant.token), [ENV.host]: grant.host };
}

/** Grants that came for a request the run no longer waits on go straight back. */
async function handBackStale(ctx: RunContext): Promise<void> {
  for (const g of ctx.inbox.stale.splice(0)) await toFleet('a stale grant', (f) => f.signal(leaseReleaseSignal, { holder: holder(), token: g.token }));
}

/**
 * Ends the lease the run holds now (the job no longer runs on it) and records its cost. The signal
 * goes out with the run's next command (collection, a new request) instead of a round trip of its own.
 */
export function releaseLease(ctx: RunContext): void {
  const grant = ctx.status.lease;
  if (!grant) return;
  ctx.status.lease = undefined;
  closeRecord(ctx.leaseRecords.find((r) => r.token === grant.token));
  ctx.inbox.sent.push(toFleet('a release', (f) => f.signal(leaseReleaseSignal, { holder: holder(), token: grant.token })));
}

/** At the run's end, whatever way: nothing held, nothing queued, every signal to the fleet delivered. */
export async function releaseEverything(ctx: RunContext): Promise<void> {
  if (!ctx.leased) return;
  for (const r of ctx.leaseRecords) closeRecord(r);
  const holding = ctx.status.lease !== undefined || ctx.inbox.waitingFor !== undefined;
  ctx.status.lease = undefined;
  ctx.inbox.waitingFor = undefined;
  if (holding) ctx.inbox.sent.push(toFleet('the final release', (f) => f.signal(leaseReleaseSignal, { holder: holder() })));
  await Promise.all(ctx.inbox.sent.splice(0));
}

export function reportHostLost(ctx: RunContext, host: string): void {
  if (!ctx.leased) return;
  ctx.inbox.sent.push(toFleet('a lost host', (f) => f.signal(hostLostSignal, { host, why: `run ${ctx.input.runId} found it lost` })));
}

function closeRecord(r: LeaseRecord | undefined): void {
  if (!r || r.releasedAt) return;
  r.releasedAt = new Date().toISOString();
  const cost = leaseCost(r.pricePerHour, r.grantedAt, r.releasedAt);
  if (cost !== undefined) r.cost = cost;
}

/** The total cost of a run's leases, when priced. */
export function costOf(records: LeaseRecord[]): number | undefined {
  const priced = records.filter((r) => r.cost !== undefined);
  return priced.length ? Math.round(priced.reduce((s, r) => s + r.cost!, 0) * 10_000) / 10_000 : undefined;
}

/** A signal to the fleet; one it cannot take (the fleet was terminated) is logged, never fatal to the run. */
async function toFleet(what: string, send: (fleet: ExternalWorkflowHandle) => Promise<void>): Promise<void> {
  try {
    await send(fleetHandle());
  } catch (e) {
    log.warn(`the fleet did not take ${what}: ${String(e)}`);
  }
}
