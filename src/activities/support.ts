/** What every activity of a run uses: the worker's dependencies, host lookup, heartbeats, bundle opening. */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { Bundle, ValidationError } from '../bundle';
import type { HostRegistry } from '../hosts/registry';
import { UnknownHostError } from '../hosts/registry';
import type { ShellHost } from '../hosts/shell-host';

export interface ActivityDeps {
  hosts: HostRegistry;
  /** Where secrets are resolved by name (default: the worker's environment). */
  secretSource?: Record<string, string | undefined>;
  /**
   * Fault-injection only (ORBIT_TEST_PAUSE_AFTER=stage=3000,collect=3000 on a test's worker): after
   * doing its work, the named activity waits this many ms, heartbeating, before it returns, so a test
   * can kill the worker between the work and its record in history.
   */
  pauseAfter?: Record<string, number>;
}

/** Parses ORBIT_TEST_PAUSE_AFTER ("stage=3000,collect=2000"). */
export function parsePauseAfter(value: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of (value ?? '').split(',').filter(Boolean)) {
    const [name, ms] = part.split('=');
    if (name && ms && /^\d+$/.test(ms)) out[name] = Number(ms);
  }
  return out;
}

export class ActivityKit {
  constructor(readonly deps: ActivityDeps) {}

  /** The host by its registry name; an unknown name is final. */
  host(name: string): ShellHost {
    try {
      return this.deps.hosts.get(name);
    } catch (e) {
      if (e instanceof UnknownHostError) throw ApplicationFailure.nonRetryable(e.message, e.name);
      throw e;
    }
  }

  /** The fault-injection pause after the named activity's work (see ActivityDeps.pauseAfter). */
  async pause<T>(name: string, value: T): Promise<T> {
    const ms = this.deps.pauseAfter?.[name];
    if (!ms) return value;
    const ctx = Context.current();
    const end = Date.now() + ms;
    while (Date.now() < end) {
      ctx.heartbeat();
      await ctx.sleep(Math.min(500, end - Date.now()));
    }
    return value;
  }
}

/** Runs `work` while heartbeating every few seconds, so a live worker is never mistaken for a dead one. */
export async function withHeartbeat<T>(work: () => Promise<T>, details: () => unknown = () => undefined): Promise<T> {
  const ctx = Context.current();
  const every = Math.max(1000, Math.min(10_000, (ctx.info.heartbeatTimeoutMs ?? 30_000) / 3));
  ctx.heartbeat(details());
  const timer = setInterval(() => ctx.heartbeat(details()), every);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/**
 * Opens a bundle; one that does not validate is final. One this worker cannot see at all is said
 * so, and retried: another worker on the task queue may share the client's ORBIT_HOME.
 */
export async function openOrFail(dir: string): Promise<Bundle> {
  if (!existsSync(dir)) {
    throw ApplicationFailure.retryable(
      `bundle ${dir} is not on this worker's machine (${hostname()}): the client and every worker of the task queue must share ORBIT_HOME (one machine or a shared file system)`,
      'BundleNotOnWorkerError',
    );
  }
  try {
    return await Bundle.open(dir);
  } catch (e) {
    if (e instanceof ValidationError) throw ApplicationFailure.nonRetryable(e.message, e.name);
    throw e;
  }
}
