/**
 * The fleet's hosts changing condition: the worker's inventory (added, updated, removed), lost and
 * answering again, drained by hand. Pure and node-free, over the state of ./fleet.ts, which never
 * imports this file.
 */
import type { FleetHostSpec, FleetState } from './fleet';

/** The worker's view of the hosts: new ones are added, changed ones updated, missing ones marked removed (their leases run on). */
export function setInventory(state: FleetState, specs: FleetHostSpec[], now: string): void {
  const names = new Set(specs.map((s) => s.name));
  for (const spec of specs) {
    const h = state.hosts[spec.name];
    if (h) {
      h.spec = spec;
      if (h.removed) Object.assign(h, { removed: false, note: undefined, since: undefined });
    } else state.hosts[spec.name] = { spec, drained: false, lost: false, removed: false };
  }
  for (const [name, h] of Object.entries(state.hosts)) {
    if (names.has(name) || h.removed) continue;
    Object.assign(h, { removed: true, note: 'not in hosts.yaml any more', since: now });
  }
  // A removed host with nothing on it is forgotten.
  for (const [name, h] of Object.entries(state.hosts)) if (h.removed && !state.leases.some((l) => l.host === name)) delete state.hosts[name];
  state.inventoryAt = now;
}

export function markLost(state: FleetState, name: string, why: string, now: string): boolean {
  const h = state.hosts[name];
  if (!h || h.lost) return false;
  Object.assign(h, { lost: true, note: why, since: now });
  return true;
}

export function markAnswering(state: FleetState, name: string): boolean {
  const h = state.hosts[name];
  if (!h?.lost) return false;
  h.lost = false;
  if (h.drained) h.note = 'drained by hand';
  else Object.assign(h, { note: undefined, since: undefined });
  return true;
}

export function setDrained(state: FleetState, name: string, drained: boolean, now: string): boolean {
  const h = state.hosts[name];
  if (!h) return false;
  h.drained = drained;
  // A lost (or removed) host keeps saying why it is out; the hand drain shows once it answers.
  if (drained) {
    if (!h.lost && !h.removed) Object.assign(h, { note: 'drained by hand', since: now });
  }
  else if (!h.lost && !h.removed) Object.assign(h, { note: undefined, since: undefined });
  return true;
}
