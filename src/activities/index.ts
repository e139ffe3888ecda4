/**
 * The activities of a run: stage, launch, monitor, collect, cancel. They know bundles and hosts,
 * never tasks. Built by a factory so the worker injects its host registry.
 */
import { Context, CancelledFailure } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { writeFile, rename } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Bundle, BundleTamperedError, BundleStateError, ValidationError, formatProblem } from '../bundle';
import type { HostRegistry } from '../hosts/registry';
import { UnknownHostError } from '../hosts/registry';
import { RunNotStagedError } from '../hosts/shell-host';
import type {
  CancelInput,
  CollectInput,
  CollectSummary,
  LaunchInput,
  LaunchResult,
  MonitorInput,
  MonitorResult,
  Probe,
  StageInput,
  StageResult,
} from './types';

export * from './types';

export { NON_RETRYABLE_ERRORS } from './errors';

const LIST_CAP = 50;
export const COLLECTION_REPORT = 'runtime/collection.json';

export interface ActivityDeps {
  hosts: HostRegistry;
  /** Where secrets are resolved by name (default: the worker's environment). */
  secretSource?: Record<string, string | undefined>;
}

export function createActivities(deps: ActivityDeps) {
  const secrets = deps.secretSource ?? process.env;

  /** Runs `work` while heartbeating every few seconds, so a live worker is never mistaken for a dead one. */
  async function withHeartbeat<T>(work: () => Promise<T>, details: () => unknown = () => undefined): Promise<T> {
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

  function host(name: string) {
    try {
      return deps.hosts.get(name);
    } catch (e) {
      if (e instanceof UnknownHostError) throw ApplicationFailure.nonRetryable(e.message, e.name);
      throw e;
    }
  }

  return {
    /** Verifies the frozen bundle and uploads it to the host; skips what is already there. */
    async stage(input: StageInput): Promise<StageResult> {
      const bundle = await openOrFail(input.bundleDir);
      try {
        await bundle.assertDigest(input.digest);
      } catch (e) {
        if (e instanceof BundleTamperedError || e instanceof BundleStateError) throw ApplicationFailure.nonRetryable(e.message, e.name);
        throw e;
      }
      const signal = Context.current().cancellationSignal;
      return withHeartbeat(() => host(input.host).stage(input.runId, bundle.dir, { signal }));
    },

    /** Starts the staged bundle detached; a repeated call finds the running one and starts nothing. */
    async launch(input: LaunchInput): Promise<LaunchResult> {
      const bundle = await openOrFail(input.bundleDir);
      const values: Record<string, string> = {};
      for (const name of bundle.spec.secretEnv) {
        const value = secrets[name];
        if (value === undefined) {
          throw ApplicationFailure.nonRetryable(
            `secret ${name} (job.json secretEnv) is not set in the worker's environment; export ${name} where the worker runs and retry`,
            'SecretMissingError',
          );
        }
        values[name] = value;
      }
      try {
        return await host(input.host).launch(input.runId, { secrets: values });
      } catch (e) {
        if (e instanceof RunNotStagedError) throw ApplicationFailure.nonRetryable(e.message, e.name);
        throw e;
      }
    },

    /**
     * Probes the run every pollIntervalMs, heartbeating the latest probe, until it ends, its deadline
     * passes (then it is stopped), or chunkMs elapse. Cancelled, it stops the run before rethrowing.
     */
    async monitor(input: MonitorInput): Promise<MonitorResult> {
      const ctx = Context.current();
      const h = host(input.host);
      const started = Date.now();
      let probe: Probe | undefined = ctx.info.heartbeatDetails as Probe | undefined;
      try {
        for (;;) {
          probe = await h.probe(input.runId, input.logFile, { signal: ctx.cancellationSignal, timeoutMs: 60_000 });
          ctx.heartbeat(probe);
          if (probe.state === 'exited' || probe.state === 'vanished' || probe.state === 'missing') {
            return { finished: true, timedOut: false, probe };
          }
          if (Date.now() >= input.deadlineMs) {
            await h.cancel(input.runId, input.killGraceSeconds);
            return { finished: true, timedOut: true, probe: await h.probe(input.runId, input.logFile) };
          }
          if (Date.now() - started >= input.chunkMs) return { finished: false, timedOut: false, probe };
          await ctx.sleep(input.pollIntervalMs);
        }
      } catch (e) {
        if (e instanceof CancelledFailure || ctx.cancellationSignal.aborted) {
          await h.cancel(input.runId, input.killGraceSeconds);
          throw e;
        }
        throw e;
      }
    },

    /** Stops a run: TERM to its process group, KILL after the grace period. */
    async cancelRun(input: CancelInput): Promise<'stopped' | 'killed' | 'not-running'> {
      return withHeartbeat(() => host(input.host).cancel(input.runId, input.killGraceSeconds));
    },

    /**
     * Brings runtime/ and artifacts/ back, verified against the manifest, checks the JobSpec's expected
     * outputs, and writes the full report to runtime/collection.json in the local bundle.
     */
    async collect(input: CollectInput): Promise<CollectSummary> {
      const bundle = await openOrFail(input.bundleDir);
      const ctx = Context.current();
      let progress = { files: 0, bytes: 0 };
      const r = await withHeartbeat(
        () => host(input.host).collect(input.runId, bundle.dir, { signal: ctx.cancellationSignal, onProgress: (p) => (progress = p) }),
        () => progress,
      );
      const missingOutputs = bundle.spec.expectedOutputs
        .filter((o) => o.required && !existsSync(join(bundle.dir, 'artifacts', o.path)))
        .map((o) => o.path);
      const report = {
        collectedAt: new Date().toISOString(),
        host: input.host,
        filesFetched: r.filesFetched,
        bytesFetched: r.bytesFetched,
        filesSkipped: r.filesSkipped,
        manifest: r.manifest,
        refused: r.refused,
        missingOutputs,
      };
      const tmp = bundle.path(`${COLLECTION_REPORT}.tmp`);
      await writeFile(tmp, JSON.stringify(report, null, 2) + '\n');
      await rename(tmp, bundle.path(COLLECTION_REPORT));
      const m = r.manifest;
      return {
        filesFetched: r.filesFetched,
        bytesFetched: r.bytesFetched,
        filesSkipped: r.filesSkipped,
        manifestPresent: m.manifestPresent,
        verified: m.verified && r.refused.length === 0,
        verifiedCount: m.verifiedFiles.length,
        missing: m.missing.slice(0, LIST_CAP),
        mismatched: m.mismatched.slice(0, LIST_CAP).map((x) => `${x.path}: ${x.reason}`),
        refused: r.refused.slice(0, LIST_CAP).map(formatProblem),
        missingOutputs,
        totals: { missing: m.missing.length, mismatched: m.mismatched.length, refused: r.refused.length },
      };
    },
  };
}

export type OrbitActivities = ReturnType<typeof createActivities>;

async function openOrFail(dir: string): Promise<Bundle> {
  try {
    return await Bundle.open(dir);
  } catch (e) {
    if (e instanceof ValidationError) throw ApplicationFailure.nonRetryable(e.message, e.name);
    throw e;
  }
}
