/** The fleet's activities as types (the workflows import them as types only), and its settings. Node-free. */
import type { FleetHostSpec, Holder, LeaseGrant, LeaseRefusal, LeaseRequest } from './fleet';

export interface FleetSettings {
  /** How often the fleet checks its holders (a lease of a holder gone without a word comes back within this), lost hosts and hosts.yaml. */
  reconcileEveryMs: number;
  /** The fleet continues as new past this many history events. */
  maxHistoryEvents: number;
}

export const FLEET_DEFAULTS: FleetSettings = { reconcileEveryMs: 10_000, maxHistoryEvents: 4_000 };

export interface FleetCheckInput {
  /** Every execution holding a lease or waiting for one. */
  holders: Holder[];
  /** Lost hosts to probe. */
  probe: string[];
}

export interface FleetCheckResult {
  /** The hosts this worker serves, with what each offers. */
  hosts: FleetHostSpec[];
  /** Holders whose execution is no longer running (terminated, reset, timed out, deleted). */
  gone: Holder[];
  /** Lost hosts that answered. */
  answering: string[];
  settings: Partial<FleetSettings>;
}

export interface RequestLeaseInput {
  request: LeaseRequest;
}

/** Grants and refusals for their holders, delivered from an activity: each delivery locks only its run, never the fleet. */
export interface Deliveries {
  grants: { holder: Holder; grant: LeaseGrant }[];
  refusals: { holder: Holder; refusal: LeaseRefusal }[];
}

export interface FleetActivities {
  /** Signals each holder its grant or refusal; returns the holders that are gone (their leases come back). */
  deliverLeases(input: Deliveries): Promise<{ gone: Holder[] }>;
  /** Queues a request with the task queue's fleet, starting the fleet if it is not running (signal-with-start). */
  requestLease(input: RequestLeaseInput): Promise<{ fleetId: string }>;
  fleetCheck(input: FleetCheckInput): Promise<FleetCheckResult>;
}
