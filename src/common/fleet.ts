/**
 * The fleet as data: the hosts of hosts.yaml (and "local") with what each offers, the leases runs
 * hold on them, the queue of runs waiting, and the one scheduling rule. Pure functions over plain
 * data, node-free: the fleet workflow (src/workflows/fleet.ts) keeps a FleetState in its history and
 * calls these; the CLI renders their views. The fleet knows resources and hosts, never tasks.
 *
 * Scheduling rule (`schedule`): requests are taken by priority (higher first), FIFO within a
 * priority. Each takes the best-fitting host that can hold it now (fewest GPUs, then CPUs, then GB
 * left free; ties by name). The first request in that order that cannot start *reserves* the host
 * nearest to holding it: requests behind it may still start on other hosts (backfill), never on the
 * reserved one, so a large job is never starved by a stream of small ones of its priority.
 * A request that asks for all of a host's GPUs holds that host alone.
 */

export const LOCAL_HOST = 'local';

export interface LeaseResources {
  gpus: number;
  gpuType?: string;
  cpus: number;
  memoryGb: number;
  /** Labels the host must all carry. */
  labels?: string[];
}

/** What one host offers, as the worker reads it (hosts.yaml, or the worker's own machine for "local"). */
export interface FleetHostSpec {
  name: string;
  /** The GPU indices jobs may be given (0..n-1, or those nvidia-smi lists for "local"). */
  gpus: number[];
  gpuType?: string;
  cpus: number;
  memoryGb: number;
  labels: string[];
  pricePerHour?: number;
}

/** ok: takes new leases; drained: by hand (`orbit hosts drain`); lost: a run found it lost, until a probe answers; removed: gone from hosts.yaml. */
export type HostCondition = 'ok' | 'drained' | 'lost' | 'removed';

export interface FleetHost {
  spec: FleetHostSpec;
  drained: boolean;
  lost: boolean;
  removed: boolean;
  /** Why it is not ok, and since when. */
  note?: string;
  since?: string;
}

/** The workflow execution that holds (or waits for) a lease: its id and its run id, the fencing of a reset or a re-used id. */
export interface Holder {
  workflowId: string;
  runId: string;
}

export interface LeaseRequest {
  holder: Holder;
  /** Unique within the holder: "launch", "relaunch-1"... A repeated request is ignored. */
  requestId: string;
  resources: LeaseResources;
  priority: number;
  /** The hosts it may go to, in no order (a pin is one name); absent: any host but "local", or "local" when the fleet has no other. */
  hosts?: string[];
  /** Hosts it must not go to (the one a relaunch left). */
  avoid?: string[];
  /**
   * When the run was submitted (its workflow's start time): the FIFO order within a priority, so the
   * order runs were submitted in holds however their requests race to the fleet; a relaunch keeps its
   * run's place. Absent in requests from before it: the fleet's arrival time stands in.
   */
  submittedAt?: string;
}

export interface QueuedRequest extends LeaseRequest {
  seq: number;
  queuedAt: string;
}

export interface Lease {
  /** The fencing token: unique and increasing over the fleet's life; a release names it. */
  token: number;
  holder: Holder;
  requestId: string;
  host: string;
  gpus: number[];
  cpus: number;
  memoryGb: number;
  exclusive: boolean;
  priority: number;
  queuedAt: string;
  grantedAt: string;
  pricePerHour?: number;
}

/** What the holder is sent when its lease is granted. */
export interface LeaseGrant {
  token: number;
  requestId: string;
  host: string;
  gpus: number[];
  grantedAt: string;
  queuedAt: string;
  pricePerHour?: number;
}

export interface LeaseRefusal {
  requestId: string;
  reason: string;
}

export interface FleetStats {
  granted: number;
  released: number;
  /** Leases taken back from holders that ended without a word. */
  reclaimed: number;
  refused: number;
}

export interface FleetState {
  hosts: Record<string, FleetHost>;
  leases: Lease[];
  queue: QueuedRequest[];
  nextToken: number;
  nextSeq: number;
  /** Set once the worker has told the fleet its hosts; nothing is granted or refused before. */
  inventoryAt?: string;
  stats: FleetStats;
}

export function emptyFleet(): FleetState {
  return { hosts: {}, leases: [], queue: [], nextToken: 1, nextSeq: 1, stats: { granted: 0, released: 0, reclaimed: 0, refused: 0 } };
}

export function conditionOf(h: FleetHost): HostCondition {
  if (h.removed) return 'removed';
  if (h.lost) return 'lost';
  if (h.drained) return 'drained';
  return 'ok';
}

const sameHolder = (a: Holder, b: Holder) => a.workflowId === b.workflowId && a.runId === b.runId;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** What `host` lacks for `req` however empty it is (empty when it could hold it). */
export function unmetBy(req: LeaseResources, host: Pick<FleetHostSpec, 'gpus' | 'gpuType' | 'cpus' | 'memoryGb' | 'labels'>): string[] {
  const out: string[] = [];
  const gpus = host.gpus.length;
  if (req.gpus > gpus) out.push(`needs ${plural(req.gpus, 'gpu')}, has ${gpus}`);
  if (req.gpuType && req.gpus > 0 && gpus > 0) {
    if (!host.gpuType) out.push(`needs gpu type ${req.gpuType}, has no gpuType listed`);
    else if (host.gpuType.toLowerCase() !== req.gpuType.toLowerCase()) out.push(`needs gpu type ${req.gpuType}, has ${host.gpuType}`);
  }
  if (req.cpus > host.cpus) out.push(`needs ${plural(req.cpus, 'cpu')}, has ${host.cpus}`);
  if (req.memoryGb > host.memoryGb) out.push(`needs ${req.memoryGb} GB memory, has ${host.memoryGb}`);
  const missing = (req.labels ?? []).filter((l) => !host.labels.includes(l));
  if (missing.length) out.push(`lacks label${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  return out;
}

export function describeResources(req: LeaseResources): string {
  const parts = [plural(req.gpus, 'gpu') + (req.gpuType && req.gpus > 0 ? ` (${req.gpuType})` : ''), plural(req.cpus, 'cpu'), `${req.memoryGb} GB`];
  if (req.labels?.length) parts.push(`labels ${req.labels.join(', ')}`);
  return parts.join(', ');
}

/** What a host has free now. */
export interface HostUsage {
  freeGpus: number[];
  freeCpus: number;
  freeMemoryGb: number;
  leases: number;
  exclusive: boolean;
}

export function usageOf(state: FleetState, name: string): HostUsage {
  const spec = state.hosts[name]?.spec;
  const held = state.leases.filter((l) => l.host === name);
  const busy = new Set(held.flatMap((l) => l.gpus));
  return {
    freeGpus: (spec?.gpus ?? []).filter((g) => !busy.has(g)),
    freeCpus: (spec?.cpus ?? 0) - held.reduce((s, l) => s + l.cpus, 0),
    freeMemoryGb: (spec?.memoryGb ?? 0) - held.reduce((s, l) => s + l.memoryGb, 0),
    leases: held.length,
    exclusive: held.some((l) => l.exclusive),
  };
}

/** A request that asks for every GPU of a host holds it alone. */
function isExclusive(req: LeaseResources, spec: FleetHostSpec): boolean {
  return req.gpus > 0 && req.gpus === spec.gpus.length;
}

/** Why `req` cannot start on `name` now (undefined when it can). */
export function shortNow(state: FleetState, req: LeaseResources, name: string): string | undefined {
  const host = state.hosts[name]!;
  const cond = conditionOf(host);
  if (cond !== 'ok') return cond;
  const u = usageOf(state, name);
  if (u.exclusive) return 'held whole by one job';
  if (isExclusive(req, host.spec) && u.leases > 0) return `wants the whole host, ${plural(u.leases, 'job')} on it`;
  const short: string[] = [];
  if (u.freeGpus.length < req.gpus) short.push(`${u.freeGpus.length} of ${host.spec.gpus.length} gpus free`);
  if (u.freeCpus < req.cpus) short.push(`${u.freeCpus} of ${host.spec.cpus} cpus free`);
  if (u.freeMemoryGb < req.memoryGb) short.push(`${u.freeMemoryGb} of ${host.spec.memoryGb} GB free`);
  return short.length ? short.join(', ') : undefined;
}

/** The hosts a request may go to (removed ones excluded), whatever their load. */
export function candidatesOf(state: FleetState, req: LeaseRequest): string[] {
  const all = Object.keys(state.hosts).filter((n) => !state.hosts[n]!.removed);
  let names: string[];
  if (req.hosts) names = req.hosts.filter((n) => all.includes(n));
  else {
    const remote = all.filter((n) => n !== LOCAL_HOST);
    names = remote.length ? remote : all.filter((n) => n === LOCAL_HOST);
  }
  return names.filter((n) => !(req.avoid ?? []).includes(n)).sort();
}

/** Why no host could ever hold the request, or undefined when one could. */
export function neverFits(state: FleetState, req: LeaseRequest): string | undefined {
  const names = candidatesOf(state, req);
  const verdicts = names.map((n) => ({ n, unmet: unmetBy(req.resources, state.hosts[n]!.spec) }));
  if (verdicts.some((v) => v.unmet.length === 0)) return undefined;
  if (!verdicts.length) {
    const asked = req.hosts ? `host${req.hosts.length > 1 ? 's' : ''} ${req.hosts.join(', ')}` : 'any host';
    return `no host of the fleet can take it: ${asked}${req.avoid?.length ? ` except ${req.avoid.join(', ')}` : ''} (known: ${Object.keys(state.hosts).filter((n) => !state.hosts[n]!.removed).sort().join(', ') || 'none'})`;
  }
  return `no host of the fleet fits ${describeResources(req.resources)}: ${verdicts.map((v) => `${v.n}: ${v.unmet.join('; ')}`).join(' | ')}`;
}

/**
 * Adds a request to the queue. A repeat of one already queued or granted is ignored; entries of an
 * older execution of the same workflow id (a reset, a re-used id) are dropped first.
 */
export function enqueue(state: FleetState, req: LeaseRequest, now: string): 'queued' | 'duplicate' {
  dropStaleExecutions(state, req.holder);
  const same = (x: { holder: Holder; requestId: string }) => sameHolder(x.holder, req.holder) && x.requestId === req.requestId;
  if (state.queue.some(same) || state.leases.some(same)) return 'duplicate';
  state.queue.push({ ...req, seq: state.nextSeq++, queuedAt: now });
  return 'queued';
}

function dropStaleExecutions(state: FleetState, holder: Holder): void {
  const stale = (h: Holder) => h.workflowId === holder.workflowId && h.runId !== holder.runId;
  const before = state.leases.length;
  state.leases = state.leases.filter((l) => !stale(l.holder));
  state.stats.reclaimed += before - state.leases.length;
  state.queue = state.queue.filter((q) => !stale(q.holder));
}

/** Ends one lease by its token (only its holder's word counts). Returns it, or undefined when it was not held. */
export function releaseLease(state: FleetState, token: number, holder: Holder): Lease | undefined {
  const lease = state.leases.find((l) => l.token === token && sameHolder(l.holder, holder));
  if (!lease) return undefined;
  state.leases = state.leases.filter((l) => l !== lease);
  state.stats.released++;
  return lease;
}

/** Ends everything a holder has: its leases and its place in the queue (its run ended, or it is gone). */
export function releaseHolder(state: FleetState, holder: Holder, reclaimed = false): number {
  const leases = state.leases.filter((l) => sameHolder(l.holder, holder)).length;
  state.leases = state.leases.filter((l) => !sameHolder(l.holder, holder));
  state.queue = state.queue.filter((q) => !sameHolder(q.holder, holder));
  if (reclaimed) state.stats.reclaimed += leases;
  else state.stats.released += leases;
  return leases;
}

/** Queue order: priority (higher first), then submission (else arrival), then arrival. */
export function queueOrder(queue: QueuedRequest[]): QueuedRequest[] {
  const since = (r: QueuedRequest) => Date.parse(r.submittedAt ?? r.queuedAt);
  return [...queue].sort((a, b) => b.priority - a.priority || since(a) - since(b) || a.seq - b.seq);
}

/** Of the hosts that can hold `req` now, the one it fills best. */
function bestFit(state: FleetState, req: LeaseResources, names: string[]): string | undefined {
  const left = (n: string) => {
    const u = usageOf(state, n);
    return [u.freeGpus.length - req.gpus, u.freeCpus - req.cpus, u.freeMemoryGb - req.memoryGb] as const;
  };
  return names
    .map((n) => ({ n, l: left(n) }))
    .sort((a, b) => a.l[0] - b.l[0] || a.l[1] - b.l[1] || a.l[2] - b.l[2] || a.n.localeCompare(b.n))[0]?.n;
}

/** The host a blocked request waits for: one that could hold it, with the most free now. */
function nearest(state: FleetState, req: LeaseRequest, names: string[]): string | undefined {
  const ever = names.filter((n) => conditionOf(state.hosts[n]!) === 'ok' && unmetBy(req.resources, state.hosts[n]!.spec).length === 0);
  const score = (n: string) => {
    const u = usageOf(state, n);
    return [u.freeGpus.length, u.freeCpus, u.freeMemoryGb] as const;
  };
  return ever.sort((a, b) => score(b)[0] - score(a)[0] || score(b)[1] - score(a)[1] || score(b)[2] - score(a)[2] || a.localeCompare(b))[0];
}

export interface ScheduleResult {
  grants: { lease: Lease; grant: LeaseGrant }[];
  refusals: { holder: Holder; refusal: LeaseRefusal }[];
}

/** Grants what can start now and refuses what never could on a view of the hosts newer than the request (see the module comment for the rule). */
export function schedule(state: FleetState, now: string): ScheduleResult {
  const out: ScheduleResult = { grants: [], refusals: [] };
  const inventoryAt = state.inventoryAt;
  if (!inventoryAt) return out;
  let reserved: string | undefined;
  for (const req of queueOrder(state.queue)) {
    const never = neverFits(state, req);
    // Refused only on a view of the hosts taken after it came (a worker may serve hosts the last view lacked).
    if (never && inventoryAt < req.queuedAt) continue;
    if (never) {
      state.queue = state.queue.filter((q) => q !== req);
      state.stats.refused++;
      out.refusals.push({ holder: req.holder, refusal: { requestId: req.requestId, reason: never } });
      continue;
    }
    const names = candidatesOf(state, req).filter((n) => n !== reserved && unmetBy(req.resources, state.hosts[n]!.spec).length === 0);
    const host = bestFit(state, req.resources, names.filter((n) => shortNow(state, req.resources, n) === undefined));
    if (!host) {
      reserved ??= nearest(state, req, names);
      continue;
    }
    const spec = state.hosts[host]!.spec;
    const lease: Lease = {
      token: state.nextToken++,
      holder: req.holder,
      requestId: req.requestId,
      host,
      gpus: usageOf(state, host).freeGpus.slice(0, req.resources.gpus),
      cpus: req.resources.cpus,
      memoryGb: req.resources.memoryGb,
      exclusive: isExclusive(req.resources, spec),
      priority: req.priority,
      queuedAt: req.queuedAt,
      grantedAt: now,
      ...(spec.pricePerHour !== undefined ? { pricePerHour: spec.pricePerHour } : {}),
    };
    state.queue = state.queue.filter((q) => q !== req);
    state.leases.push(lease);
    state.stats.granted++;
    out.grants.push({
      lease,
      grant: { token: lease.token, requestId: lease.requestId, host, gpus: lease.gpus, grantedAt: now, queuedAt: req.queuedAt, ...(lease.pricePerHour !== undefined ? { pricePerHour: lease.pricePerHour } : {}) },
    });
  }
  return out;
}



/** The fleet workflow's type and the names of its signals (src/workflows/fleet.ts defines them; activities and the CLI send them by name). */
export const FLEET_WORKFLOW_TYPE = 'fleet';
export const FLEET_SIGNALS = {
  request: 'leaseRequest',
  release: 'leaseRelease',
  hostLost: 'hostLost',
  hostDrain: 'hostDrain',
  granted: 'leaseGranted',
  refused: 'leaseRefused',
} as const;

/** The fleet workflow of a task queue: one per task queue, so each test's (or team's) worker pool has its own. */
export function fleetWorkflowId(taskQueue: string): string {
  return `orbit-fleet-${taskQueue}`;
}

/** Hours a lease was held, priced (undefined without a price). */
export function leaseCost(pricePerHour: number | undefined, fromIso: string, toIso: string): number | undefined {
  if (pricePerHour === undefined) return undefined;
  const hours = Math.max(0, Date.parse(toIso) - Date.parse(fromIso)) / 3_600_000;
  return Math.round(hours * pricePerHour * 10_000) / 10_000;
}
