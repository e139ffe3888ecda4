/** What every activity of a run uses: the worker's dependencies, host lookup, heartbeats, bundle opening. */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Bundle, ValidationError } from '../bundle';
import type { BundleAt, RunRef } from '../common/activities';
import { orbitHome } from '../config';
import { materializeBundle, newPublishCache, publishArtifacts, restoreArtifacts, writeRunRecord, type PublishCache, type Transfer } from '../store/cas';
import { openStore } from '../store/open';
import { StoreError, type BundleStore } from '../store/store';
import type { HostRegistry } from '../hosts/registry';
import { UnknownHostError } from '../hosts/registry';
import type { ShellHost } from '../hosts/shell-host';
import { WorkerProbes } from './probes';

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
  /** Where this worker keeps its copies of store-held bundles: `<home>/runs/<run id>` (default ORBIT_HOME). */
  home?: string;
  /** Store settings, ORBIT_S3_* (default: this process's environment; credentials always come from the AWS SDK's chain). */
  env?: NodeJS.ProcessEnv;
  /** The monitors' batched probes (default: a new set): the worker passes its own to report on them. */
  probes?: WorkerProbes;
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
  /** Runs whose bundle and synced artifacts this process already brought from the store. */
  private readonly local = new Set<string>();
  private readonly published = new Map<string, PublishCache>();
  /** The monitors' probes, one batch per host per poll interval (./probes.ts). */
  readonly probes: WorkerProbes;

  constructor(readonly deps: ActivityDeps) {
    this.probes = deps.probes ?? new WorkerProbes();
  }

  /** The store a run's bundle is in, opened with this worker's settings and credentials. */
  async store(url: string): Promise<BundleStore> {
    try {
      return await openStore(url, this.deps.env ?? process.env);
    } catch (e) {
      throw storeFailure(e);
    }
  }

  /**
   * The run's bundle on this worker's disk. A store-held bundle is brought into `<home>/runs/<run id>`
   * the first time this process needs it, with what earlier syncs and collections (by any worker)
   * recorded of runtime/ and artifacts/; each blob is verified as it lands.
   */
  async bundle(input: RunRef & BundleAt): Promise<Bundle> {
    if (!input.store) return openOrFail(input.bundleDir ?? '');
    const dir = join(this.deps.home ?? orbitHome(this.deps.env), 'runs', input.runId);
    if (!this.local.has(input.runId)) {
      const store = await this.store(input.store);
      try {
        await materializeBundle(store, input.digest ?? '', dir);
        await restoreArtifacts(store, input.runId, dir);
        await writeRunRecord(store, { runId: input.runId, digest: input.digest ?? '' }); // a sweep cell's run has none yet
      } catch (e) {
        throw storeFailure(e);
      }
      this.local.add(input.runId);
    }
    return openOrFail(dir);
  }

  /** Records what the run's folder now holds of runtime/ and artifacts/ in the store (new blobs only). Nothing for a folder-held run. */
  async publish(input: RunRef & BundleAt, dir: string): Promise<Transfer | undefined> {
    if (!input.store) return undefined;
    const store = await this.store(input.store);
    let cache = this.published.get(input.runId);
    if (!cache) this.published.set(input.runId, (cache = newPublishCache()));
    return publishArtifacts(store, input.runId, dir, cache);
  }

  /** Forgets a run's in-memory state (after its final collection). */
  forget(runId: string): void {
    this.published.delete(runId);
  }

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

/** A store failure as an activity failure: unreachable is retried; credentials, a missing bucket, a missing or corrupt object are final. */
export function storeFailure(e: unknown): unknown {
  if (e instanceof StoreError) return e.retryable ? ApplicationFailure.retryable(e.message, e.name) : ApplicationFailure.nonRetryable(e.message, e.name);
  return e;
}
