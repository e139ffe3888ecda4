/**
 * fleet: the entity workflow that owns a task queue's capacity (workflow id `orbit-fleet-<queue>`).
 * Its state (hosts, leases, queue; src/common/fleet.ts) lives in its history, so a killed worker or a
 * restarted server in the middle of a grant or a release replays to the same leases: none lost, none
 * given twice. Runs talk to it with signals (request, release, host lost); it answers each holder
 * with a signal (granted, refused) sent from an activity, so a delivery locks the holder's execution,
 * never the fleet's. A holder that ends without a word (terminated, reset, deleted) is
 * found by the reconciliation every `reconcileEveryMs` and its leases are reclaimed. History stays
 * bounded: it continues as new past `maxHistoryEvents`, carrying its state.
 */
import {
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  log,
  proxyActivities,
  setHandler,
  allHandlersFinished,
  workflowInfo,
} from '@temporalio/workflow';
import type { Deliveries, FleetActivities, FleetSettings } from '../common/fleet-activities';
import { FLEET_DEFAULTS } from '../common/fleet-activities';
import { emptyFleet, enqueue, FLEET_SIGNALS, neverFits, releaseHolder, releaseLease, schedule, type FleetState, type Holder, type LeaseGrant, type LeaseRefusal, type LeaseRequest } from '../common/fleet';
import { markAnswering, markLost, setDrained, setInventory } from '../common/fleet-hosts';
import { fleetView, type FleetView } from '../common/fleet-view';

export interface FleetInput {
  /** Carried over continue-as-new. */
  state?: FleetState;
  settings?: Partial<FleetSettings>;
}

/** To the fleet: queue this request (sent by the requestLease activity, with signal-with-start). */
export const leaseRequestSignal = defineSignal<[LeaseRequest]>(FLEET_SIGNALS.request);
/** To the fleet: end one lease (token), or everything the holder has (no token). */
export const leaseReleaseSignal = defineSignal<[{ holder: Holder; token?: number }]>(FLEET_SIGNALS.release);
/** To the fleet: a run found this host lost; grant nothing there until a probe answers. */
export const hostLostSignal = defineSignal<[{ host: string; why: string }]>(FLEET_SIGNALS.hostLost);
/** To the fleet: `orbit hosts drain|undrain NAME`. */
export const hostDrainSignal = defineSignal<[{ host: string; drained: boolean }]>(FLEET_SIGNALS.hostDrain);
/** The fleet's state: hosts with their load, leases, the queue in order. */
export const fleetQuery = defineQuery<FleetView>('fleet');

/** To a run: its lease. */
export const leaseGrantedSignal = defineSignal<[LeaseGrant]>(FLEET_SIGNALS.granted);
/** To a run: no host of the fleet could ever hold what it asks for. */
export const leaseRefusedSignal = defineSignal<[LeaseRefusal]>(FLEET_SIGNALS.refused);

const { deliverLeases } = proxyActivities<FleetActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '500ms', maximumInterval: '10s', maximumAttempts: 5 },
});

const { fleetCheck } = proxyActivities<FleetActivities>({
  startToCloseTimeout: '2m',
  // A check lost with its worker is retried after this, not after the 2 min (and the next one waits for it).
  heartbeatTimeout: '10s',
  retry: { initialInterval: '1s', maximumInterval: '10s', maximumAttempts: 3 },
});

const nowIso = () => new Date().toISOString();

export async function fleet(input: FleetInput = {}): Promise<void> {
  const state = input.state ?? emptyFleet();
  let settings: FleetSettings = { ...FLEET_DEFAULTS, ...input.settings };
  let dirty = true;
  let checkNow = !state.inventoryAt;
  let lastCheck = 0;

  setHandler(leaseRequestSignal, (req) => {
    if (enqueue(state, req, nowIso()) === 'queued') dirty = true;
    // A request no known host could hold is refused only after a fresh look at the hosts.
    if (Date.now() - lastCheck > settings.reconcileEveryMs || neverFits(state, req)) checkNow = true;
  });
  setHandler(leaseReleaseSignal, ({ holder, token }) => {
    const ended = token === undefined ? releaseHolder(state, holder) > 0 : releaseLease(state, token, holder) !== undefined;
    // A holder that ended while queued leaves the queue too.
    if (token === undefined || ended) dirty = true;
  });
  setHandler(hostLostSignal, ({ host, why }) => {
    if (markLost(state, host, why, nowIso())) log.warn(`fleet: host ${host} drained: ${why}`);
  });
  setHandler(hostDrainSignal, ({ host, drained }) => {
    if (setDrained(state, host, drained, nowIso())) dirty = true;
  });
  setHandler(fleetQuery, () => fleetView(state));

  /**
   * Grants what fits and sends the grants and refusals out from an activity, without waiting for it:
   * the next release is served while a round is delivered. A holder found gone gives its lease back;
   * a round that could not be delivered is sent again.
   */
  const inFlight = new Set<Promise<void>>();
  let undelivered: Deliveries = { grants: [], refusals: [] };
  const sendOut = () => {
    const { grants, refusals } = schedule(state, nowIso());
    const held = new Set(state.leases.map((l) => l.token));
    const batch: Deliveries = {
      grants: [...undelivered.grants.filter((g) => held.has(g.grant.token)), ...grants.map((g) => ({ holder: g.lease.holder, grant: g.grant }))],
      refusals: [...undelivered.refusals, ...refusals],
    };
    undelivered = { grants: [], refusals: [] };
    if (!batch.grants.length && !batch.refusals.length) return;
    const round: Promise<void> = deliverLeases(batch)
      .then(
        ({ gone }) => {
          for (const h of gone) if (releaseHolder(state, h, true)) log.warn(`fleet: ${h.workflowId} cannot take its lease (it ended); reclaimed`);
          if (gone.length) dirty = true;
        },
        (e: unknown) => {
          log.warn('fleet: a round of grants could not be delivered; sending it again', { error: String(e) });
          undelivered.grants.push(...batch.grants);
          undelivered.refusals.push(...batch.refusals);
          dirty = true;
        },
      )
      .finally(() => inFlight.delete(round));
    inFlight.add(round);
  };

  // The reconciliation runs beside the grants: releases and requests are served while a check is out.
  let check: Promise<void> | undefined;
  let checked = false;
  for (;;) {
    const busy = state.leases.length > 0 || state.queue.length > 0 || Object.values(state.hosts).some((h) => h.lost);
    if (!check && (checkNow || (busy && Date.now() - lastCheck >= settings.reconcileEveryMs))) {
      checkNow = false;
      check = reconcile(state, settings).then((next) => {
        settings = next;
        lastCheck = Date.now();
        checked = true;
        check = undefined;
      });
    }
    if (!dirty && !checked) {
      const wake = () => dirty || checked || (checkNow && !check);
      if (busy && !check) await condition(wake, Math.max(1, lastCheck + settings.reconcileEveryMs - Date.now()));
      else await condition(wake);
    }
    dirty = false;
    checked = false;
    sendOut();
    if (workflowInfo().historyLength > settings.maxHistoryEvents || workflowInfo().continueAsNewSuggested) {
      await check;
      for (sendOut(); inFlight.size; sendOut()) await Promise.all(inFlight);
      await condition(allHandlersFinished);
      await continueAsNew<typeof fleet>({ state, settings });
    }
  }
}

/** Asks the worker for its hosts, which holders are gone, which lost hosts answer again; applies it. */
async function reconcile(state: FleetState, settings: FleetSettings): Promise<FleetSettings> {
  const holders = uniqueHolders([...state.leases.map((l) => l.holder), ...state.queue.map((q) => q.holder)]);
  const lost = Object.values(state.hosts).filter((h) => h.lost).map((h) => h.spec.name);
  try {
    const check = await fleetCheck({ holders, probe: lost });
    setInventory(state, check.hosts, nowIso());
    for (const h of check.gone) {
      const n = releaseHolder(state, h, true);
      if (n) log.warn(`fleet: ${h.workflowId} ended without releasing; ${n} lease(s) reclaimed`);
    }
    for (const name of check.answering) if (markAnswering(state, name)) log.info(`fleet: host ${name} answers again; undrained`);
    return { ...settings, ...check.settings };
  } catch (e) {
    log.warn('fleet: reconciliation failed; trying again at the next tick', { error: String(e) });
    return settings;
  }
}

function uniqueHolders(holders: Holder[]): Holder[] {
  const seen = new Map<string, Holder>();
  for (const h of holders) seen.set(`${h.workflowId}/${h.runId}`, h);
  return [...seen.values()];
}
