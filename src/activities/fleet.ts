/**
 * The fleet's activities: queue a lease request with the task queue's fleet workflow (starting it if
 * needed), and the fleet's reconciliation: which hosts this worker serves and what each offers,
 * which holders are gone, which lost hosts answer again.
 */
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { FLEET_SIGNALS, FLEET_WORKFLOW_TYPE, fleetWorkflowId, type FleetHostSpec, type Holder } from '../common/fleet';
import type { Deliveries, FleetActivities, FleetCheckInput, FleetCheckResult, FleetSettings, RequestLeaseInput } from '../common/fleet-activities';
import type { HostRegistry } from '../hosts/registry';

export interface FleetDeps {
  hosts: HostRegistry;
  /** What each host offers, read afresh at every reconciliation (hosts.yaml edits apply; only hosts in `hosts` are granted). */
  fleetHosts: () => Promise<FleetHostSpec[]>;
  settings?: Partial<FleetSettings>;
}

const PROBE_TIMEOUT_MS = 15_000;
const DESCRIBE_CONCURRENCY = 16;
const HEARTBEAT_EVERY_MS = 2_000;

/** Whether each holder's execution still runs; unknown (an error other than not-found) counts as running. */
async function goneHolders(client: Client, holders: Holder[]): Promise<Holder[]> {
  const gone: Holder[] = [];
  const queue = [...holders];
  const worker = async () => {
    for (let h = queue.shift(); h; h = queue.shift()) {
      try {
        const d = await client.workflow.getHandle(h.workflowId, h.runId).describe();
        if (d.status.name !== 'RUNNING') gone.push(h);
      } catch (e) {
        if (e instanceof WorkflowNotFoundError) gone.push(h);
      }
      Context.current().heartbeat();
    }
  };
  await Promise.all(Array.from({ length: Math.min(DESCRIBE_CONCURRENCY, holders.length) }, worker));
  return gone;
}

export function createFleetActivities(deps: FleetDeps): FleetActivities {
  return {
    async requestLease({ request }: RequestLeaseInput) {
      const ctx = Context.current();
      const fleetId = fleetWorkflowId(ctx.info.taskQueue);
      await ctx.client.workflow.signalWithStart(FLEET_WORKFLOW_TYPE, {
        workflowId: fleetId,
        taskQueue: ctx.info.taskQueue,
        args: [{ settings: deps.settings ?? {} }],
        signal: FLEET_SIGNALS.request,
        signalArgs: [request],
        staticSummary: 'Orbit fleet: hosts, leases and the queue of this task queue',
      });
      return { fleetId };
    },

    async deliverLeases({ grants, refusals }: Deliveries) {
      const client = Context.current().client;
      const gone: Holder[] = [];
      const sends = [
        ...grants.map((g) => ({ holder: g.holder, signal: FLEET_SIGNALS.granted, arg: g.grant as unknown })),
        ...refusals.map((r) => ({ holder: r.holder, signal: FLEET_SIGNALS.refused, arg: r.refusal as unknown })),
      ];
      const queue = [...sends];
      const worker = async () => {
        for (let s = queue.shift(); s; s = queue.shift()) {
          try {
            await client.workflow.getHandle(s.holder.workflowId, s.holder.runId).signal(s.signal, s.arg);
          } catch (e) {
            // A holder that ended (or was reset) cannot take its grant; anything else is retried with the activity.
            if (!(e instanceof WorkflowNotFoundError)) throw e;
            if (s.signal === FLEET_SIGNALS.granted) gone.push(s.holder);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(DESCRIBE_CONCURRENCY, sends.length) }, worker));
      return { gone };
    },

    async fleetCheck({ holders, probe }: FleetCheckInput): Promise<FleetCheckResult> {
      const served = new Set(deps.hosts.names());
      // The fleet grants nothing until the check returns; heartbeats let it retry soon on another worker if this one dies.
      const ctx = Context.current();
      const beat = setInterval(() => ctx.heartbeat(), HEARTBEAT_EVERY_MS);
      try {
        const [specs, gone, answering] = await Promise.all([
          deps.fleetHosts(),
          goneHolders(ctx.client, holders),
          Promise.all(
            probe.map(async (name) => {
              if (!served.has(name)) return undefined;
              const r = await deps.hosts.get(name).transport.exec('true', { timeoutMs: PROBE_TIMEOUT_MS }).catch(() => undefined);
              return r?.code === 0 ? name : undefined;
            }),
          ),
        ]);
        return { hosts: specs.filter((s) => served.has(s.name)), gone, answering: answering.filter((n): n is string => !!n), settings: deps.settings ?? {} };
      } finally {
        clearInterval(beat);
      }
    },
  };
}
