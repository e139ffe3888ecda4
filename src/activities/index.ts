/**
 * The activities of a run: stage, launch, monitor, collect, cancel. They know bundles and hosts,
 * never tasks. Built by a factory so the worker injects its host registry.
 */
import { Context, CancelledFailure, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { readdir, rename, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Bundle, BundleTamperedError, BundleStateError, ValidationError, formatProblem, verifyManifest, walkFiles } from '../bundle';
import type { HostRegistry } from '../hosts/registry';
import { UnknownHostError } from '../hosts/registry';
import { RunNotStagedError, type CollectResult } from '../hosts/shell-host';
import type {
  CancelInput,
  CollectInput,
  CollectSummary,
  LaunchInput,
  LaunchResult,
  MonitorHeartbeat,
  MonitorInput,
  MonitorResult,
  Probe,
  ProbeInput,
  ResumeInput,
  ResumeStaged,
  StageInput,
  StageResult,
} from '../common/activities';

export * from '../common/activities';

export { NON_RETRYABLE_ERRORS } from '../common/errors';
import { ERROR } from '../common/errors';

const LIST_CAP = 50;
export const COLLECTION_REPORT = 'runtime/collection.json';

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

export function createActivities(deps: ActivityDeps) {
  const secrets = deps.secretSource ?? process.env;
  async function pause<T>(name: string, value: T): Promise<T> {
    const ms = deps.pauseAfter?.[name];
    if (!ms) return value;
    const ctx = Context.current();
    const end = Date.now() + ms;
    while (Date.now() < end) {
      ctx.heartbeat();
      await ctx.sleep(Math.min(500, end - Date.now()));
    }
    return value;
  }

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
      return pause('stage', await withHeartbeat(() => host(input.host).stage(input.runId, bundle.dir, { signal })));
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
            ERROR.secretMissing,
          );
        }
        values[name] = value;
      }
      try {
        return await pause('launch', await host(input.host).launch(input.runId, { secrets: values, env: input.env }));
      } catch (e) {
        if (e instanceof RunNotStagedError) throw ApplicationFailure.nonRetryable(e.message, e.name);
        throw e;
      }
    },

    /**
     * Watches the run: probes it every pollIntervalMs and heartbeats what it saw; copies new and grown
     * files back every syncIntervalMs; marks the host unreachable when a probe gets no answer and
     * returns it lost after hostLostAfterMs. Returns when the run ends, its deadline passes (the run
     * is stopped), the host is lost, the host state changes, or chunkMs elapse. A retried call resumes
     * from the last heartbeat (the loss clock keeps running). Cancelled, it stops the run first.
     */
    async monitor(input: MonitorInput): Promise<MonitorResult> {
      const ctx = Context.current();
      const h = host(input.host);
      const spec = (await openOrFail(input.bundleDir)).spec;
      const started = Date.now();
      const beat: MonitorHeartbeat = (ctx.info.heartbeatDetails as MonitorHeartbeat | undefined) ?? {
        hostState: input.hostState === 'unreachable' ? 'unreachable' : 'reachable',
        unreachableSince: input.hostState === 'unreachable' ? input.unreachableSince : undefined,
      };
      const initialState = beat.hostState;
      const synced = { files: 0, bytes: 0 };
      const result = (finished: boolean, extra: Partial<MonitorResult> = {}): MonitorResult => ({
        finished,
        timedOut: false,
        hostLost: false,
        hostState: beat.hostState,
        probe: beat.probe,
        synced,
        unreachableSince: beat.unreachableSince,
        ...extra,
      });
      try {
        for (;;) {
          let answered = true;
          try {
            beat.probe = await h.probe(input.runId, input.logFile, { signal: ctx.cancellationSignal, timeoutMs: input.probeTimeoutMs });
          } catch (e) {
            if (ctx.cancellationSignal.aborted) throw e;
            answered = false;
            log.warn('probe got no answer', { host: input.host, error: (e as Error).message });
          }
          if (answered) {
            beat.hostState = 'reachable';
            beat.unreachableSince = undefined;
          } else {
            beat.hostState = 'unreachable';
            beat.unreachableSince ??= Date.now();
          }
          ctx.heartbeat(beat);
          if (!answered && Date.now() - beat.unreachableSince! >= input.hostLostAfterMs) {
            beat.hostState = 'lost';
            return result(true, { hostLost: true, hostState: 'lost' });
          }
          if (beat.hostState !== initialState) return result(false);
          if (answered) {
            const p = beat.probe!;
            if (p.state === 'exited' || p.state === 'vanished' || p.state === 'missing') return result(true);
            if (Date.now() >= input.deadlineMs) {
              await h.cancel(input.runId, input.killGraceSeconds);
              return result(true, { timedOut: true, probe: await h.probe(input.runId, input.logFile) });
            }
            if (input.syncIntervalMs > 0 && Date.now() - (beat.lastSyncAt ?? 0) >= input.syncIntervalMs) {
              // A sync that stalls (the host froze mid-transfer) is abandoned; the next probe tells what happened.
              const stall = new AbortController();
              const onCancel = () => stall.abort(ctx.cancellationSignal.reason);
              ctx.cancellationSignal.addEventListener('abort', onCancel, { once: true });
              let watchdog = setTimeout(() => stall.abort(new Error('sync stalled')), input.probeTimeoutMs * 2);
              try {
                const r = await h.collect(input.runId, input.bundleDir, {
                  verify: false,
                  atomicDirs: spec.sync.atomicDirs,
                  signal: stall.signal,
                  execTimeoutMs: input.probeTimeoutMs * 2,
                  onProgress: () => {
                    ctx.heartbeat(beat);
                    clearTimeout(watchdog);
                    watchdog = setTimeout(() => stall.abort(new Error('sync stalled')), input.probeTimeoutMs * 2);
                  },
                });
                synced.files += r.filesFetched;
                synced.bytes += r.bytesFetched;
                beat.lastSyncAt = Date.now();
              } catch (e) {
                if (ctx.cancellationSignal.aborted) throw e;
                log.warn('sync failed; will try again', { host: input.host, error: (e as Error).message });
                // A stalled transfer holds a connection to a frozen host: drop it, so it cannot write later.
                if (stall.signal.aborted) await h.transport.close().catch(() => undefined);
              } finally {
                clearTimeout(watchdog);
                ctx.cancellationSignal.removeEventListener('abort', onCancel);
              }
            }
          }
          if (Date.now() - started >= input.chunkMs) return result(false);
          await ctx.sleep(input.pollIntervalMs);
        }
      } catch (e) {
        // Only a cancel the workflow asked for stops the job. A timed-out attempt (this worker was too slow
        // to heartbeat) or a worker shutdown leaves it running for the next attempt to watch.
        if ((e instanceof CancelledFailure || ctx.cancellationSignal.aborted) && ctx.cancellationDetails?.cancelRequested) {
          await h.cancel(input.runId, input.killGraceSeconds).catch((err: Error) => log.warn('stop after cancel failed', { error: err.message }));
        }
        throw e;
      }
    },

    /** One probe, for a host that was lost: does it answer again, and what does the run do? Throws when it does not answer. */
    async probeOnce(input: ProbeInput): Promise<Probe> {
      return host(input.host).probe(input.runId, input.logFile, { timeoutMs: input.probeTimeoutMs });
    },

    /**
     * Uploads the newest complete unit folder synced so far (by the JobSpec's sync.atomicDirs) into
     * `<run folder>/resume/` on the host, for a relaunch to continue from.
     */
    async stageResume(input: ResumeInput): Promise<ResumeStaged> {
      const bundle = await openOrFail(input.bundleDir);
      const unit = await newestCompleteUnit(bundle.dir, bundle.spec.sync.atomicDirs);
      if (!unit) return { remotePath: null, localPath: null, filesSent: 0 };
      const h = host(input.host);
      const files = (await walkFiles(bundle.dir, unit)).map((f) => ({ local: join(bundle.dir, f.path), remote: `resume/${f.path}` }));
      const r = await withHeartbeat(() => h.upload(input.runId, files, ['resume']));
      return { remotePath: `${h.runDir(input.runId)}/resume/${unit}`, localPath: unit, filesSent: r.filesSent };
    },

    /**
     * Writes runtime/collection.json for a run whose host never came back: which files the local
     * bundle holds, and which manifest entries (if a manifest was ever collected) are verified or missing.
     */
    async reportLocal(input: { bundleDir: string; host: string; reason: string }): Promise<CollectSummary> {
      const bundle = await openOrFail(input.bundleDir);
      const m = await verifyManifest(bundle.dir);
      const present = (await walkFiles(bundle.dir, 'artifacts').catch(() => [])).map((f) => f.path);
      const missingOutputs = missingExpectedOutputs(bundle);
      await writeReport(bundle, { collectedAt: new Date().toISOString(), host: input.host, partial: true, reason: input.reason, present, manifest: m, missingOutputs });
      return summarize({ filesFetched: 0, bytesFetched: 0, filesSkipped: 0, refused: [], manifest: m }, missingOutputs);
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
      const missingOutputs = missingExpectedOutputs(bundle);
      await writeReport(bundle, {
        collectedAt: new Date().toISOString(),
        host: input.host,
        filesFetched: r.filesFetched,
        bytesFetched: r.bytesFetched,
        filesSkipped: r.filesSkipped,
        manifest: r.manifest,
        refused: r.refused,
        missingOutputs,
      });
      return pause('collect', summarize(r, missingOutputs));
    },
  };
}

export type OrbitActivities = ReturnType<typeof createActivities>;

function missingExpectedOutputs(bundle: Bundle): string[] {
  return bundle.spec.expectedOutputs.filter((o) => o.required && !existsSync(join(bundle.dir, 'artifacts', o.path))).map((o) => o.path);
}

async function writeReport(bundle: Bundle, report: Record<string, unknown>): Promise<void> {
  const tmp = bundle.path(`${COLLECTION_REPORT}.tmp`);
  await writeFile(tmp, JSON.stringify(report, null, 2) + '\n');
  await rename(tmp, bundle.path(COLLECTION_REPORT));
}

function summarize(r: Pick<CollectResult, 'filesFetched' | 'bytesFetched' | 'filesSkipped' | 'refused' | 'manifest'>, missingOutputs: string[]): CollectSummary {
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
}

/** The newest unit folder (natural order of names) that holds its marker, over every atomic folder. */
export async function newestCompleteUnit(bundleDir: string, atomicDirs: { parent: string; marker: string }[]): Promise<string | null> {
  let best: string | null = null;
  let bestKey: number[] = [];
  for (const a of atomicDirs) {
    const parent = join(bundleDir, 'artifacts', a.parent);
    let names: string[];
    try {
      names = await readdir(parent);
    } catch {
      continue;
    }
    for (const name of names) {
      if (!existsSync(join(parent, name, a.marker))) continue;
      const key = (name.match(/\d+/g) ?? []).map(Number);
      if (best === null || compareKeys(key, bestKey) > 0) {
        best = `artifacts/${a.parent}/${name}`;
        bestKey = key;
      }
    }
  }
  return best;
}

function compareKeys(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? -1) - (b[i] ?? -1);
    if (d) return d;
  }
  return 0;
}

async function openOrFail(dir: string): Promise<Bundle> {
  try {
    return await Bundle.open(dir);
  } catch (e) {
    if (e instanceof ValidationError) throw ApplicationFailure.nonRetryable(e.message, e.name);
    throw e;
  }
}
