/**
 * The on-host-lost policies as small strategies: where the run goes when the monitor finds its host
 * lost, and when a lost host answers again with the job still running.
 */
import type { OnHostLost } from '../common/run';
import type { RunContext } from './run-context';

export type LostStep = 'relaunch' | 'recover';
export type StillRunningStep = 'monitor' | 'stop';

export interface HostLostPolicy {
  /** The monitor found the host lost. */
  onLost(ctx: RunContext): LostStep;
  /** The lost host answered and the job still runs there. */
  onStillRunning: StillRunningStep;
}

/** Keep trying the host until the collection deadline; go on monitoring if the job still runs. */
const wait: HostLostPolicy = { onLost: () => 'recover', onStillRunning: 'monitor' };

/** Stop the job once the host answers, collect what it made, fail the run. */
const fail: HostLostPolicy = { onLost: () => 'recover', onStillRunning: 'stop' };

/** Start again on the next relaunch host, from the newest synced unit folder; once none is left, wait. */
const relaunch: HostLostPolicy = {
  onLost: (ctx) => (ctx.status.relaunches.length < (ctx.input.maxRelaunches ?? 1) && ctx.relaunchTargets.length > 0 ? 'relaunch' : 'recover'),
  onStillRunning: 'monitor',
};

export const HOST_LOST_POLICIES: Record<OnHostLost, HostLostPolicy> = { wait, fail, relaunch };
