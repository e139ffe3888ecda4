/** The fleet's state as the fleet query shows it: hosts with their load, leases, the queue in order with what each waits for. Node-free. */
import { candidatesOf, conditionOf, describeResources, queueOrder, shortNow, unmetBy, type FleetState, type FleetStats, type HostCondition, type Lease, type LeaseResources, type QueuedRequest } from './fleet';


export interface QueueEntryView {
  position: number;
  workflowId: string;
  requestId: string;
  priority: number;
  resources: LeaseResources;
  hosts?: string[];
  queuedAt: string;
  /** What it waits for, host by host. */
  waitingFor: string;
}

export interface HostView {
  name: string;
  condition: HostCondition;
  note?: string;
  since?: string;
  gpus: { total: number; busy: number[] };
  cpus: { total: number; busy: number };
  memoryGb: { total: number; busy: number };
  gpuType?: string;
  labels: string[];
  pricePerHour?: number;
  leases: number;
}

export interface FleetView {
  hosts: HostView[];
  leases: Lease[];
  queue: QueueEntryView[];
  stats: FleetStats;
  inventoryAt?: string;
}

function waitingFor(state: FleetState, req: QueuedRequest): string {
  if (!state.inventoryAt) return 'the worker to report its hosts';
  const names = candidatesOf(state, req);
  const parts = names.map((n) => `${n}: ${unmetBy(req.resources, state.hosts[n]!.spec).join('; ') || shortNow(state, req.resources, n) || 'reserved for an earlier job'}`);
  return `${describeResources(req.resources)} (${parts.join(' | ') || 'no host'})`;
}

export function fleetView(state: FleetState): FleetView {
  const hosts = Object.values(state.hosts)
    .sort((a, b) => a.spec.name.localeCompare(b.spec.name))
    .map((h): HostView => {
      const held = state.leases.filter((l) => l.host === h.spec.name);
      return {
        name: h.spec.name,
        condition: conditionOf(h),
        ...(h.note ? { note: h.note } : {}),
        ...(h.since ? { since: h.since } : {}),
        gpus: { total: h.spec.gpus.length, busy: held.flatMap((l) => l.gpus).sort((a, b) => a - b) },
        cpus: { total: h.spec.cpus, busy: held.reduce((s, l) => s + l.cpus, 0) },
        memoryGb: { total: h.spec.memoryGb, busy: held.reduce((s, l) => s + l.memoryGb, 0) },
        ...(h.spec.gpuType ? { gpuType: h.spec.gpuType } : {}),
        labels: h.spec.labels,
        ...(h.spec.pricePerHour !== undefined ? { pricePerHour: h.spec.pricePerHour } : {}),
        leases: held.length,
      };
    });
  const queue = queueOrder(state.queue).map((q, i) => ({
    position: i + 1,
    workflowId: q.holder.workflowId,
    requestId: q.requestId,
    priority: q.priority,
    resources: q.resources,
    ...(q.hosts ? { hosts: q.hosts } : {}),
    queuedAt: q.queuedAt,
    waitingFor: waitingFor(state, q),
  }));
  return { hosts, leases: state.leases, queue, stats: state.stats, ...(state.inventoryAt ? { inventoryAt: state.inventoryAt } : {}) };
}

