/**
 * The generic host operations, written once over a Transport: stage a frozen bundle into
 * `<workRoot>/<runId>/` (./host/stage.ts), launch it detached, probe it, cancel it
 * (./host/process.ts), collect its runtime/ and artifacts/ back (./host/collect.ts). Each is
 * idempotent, so a retried activity or a restarted worker repeats it safely. Everything the far
 * side prints is parsed as untrusted input.
 */
import type { LaunchResult, Probe, ProbeState, StageResult } from '../common/activities';
import type { StopReason } from '../common/protocol';
import { collectRun, type CollectOptions, type CollectResult } from './host/collect';
import type { HostContext } from './host/context';
import { cancelRun, launchRun, probeRun, probeRuns, type ProbeTarget } from './host/process';
import { stageBundle, uploadFiles } from './host/stage';
import type { Transport } from './transport';

export type { CollectOptions, CollectResult, LaunchResult, Probe, ProbeState, ProbeTarget, StageResult };
export { RunNotStagedError, StageVerificationError } from './host/errors';
export { parseListing, withoutIncompleteUnits } from './host/listing';

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export class ShellHost implements HostContext {
  readonly name: string;
  readonly transport: Transport;
  readonly workRoot: string;

  constructor(opts: { name: string; transport: Transport; workRoot: string }) {
    if (!/^\/[A-Za-z0-9._+\/-]*$/.test(opts.workRoot)) {
      throw new Error(`host ${opts.name}: workRoot must be an absolute path of A-Z, a-z, 0-9, '.', '_', '+', '-', '/'; got "${opts.workRoot}"`);
    }
    this.name = opts.name;
    this.transport = opts.transport;
    this.workRoot = opts.workRoot.replace(/\/+$/, '');
  }

  runDir(runId: string): string {
    if (!RUN_ID.test(runId)) throw new Error(`run id "${runId}" must match ${RUN_ID}`);
    return `${this.workRoot}/${runId}`;
  }

  /** Uploads job.json, inputs/ and scripts/, skipping files already there with the same sha256, then verifies. */
  stage(runId: string, bundleDir: string, options: { signal?: AbortSignal } = {}): Promise<StageResult> {
    return stageBundle(this, runId, bundleDir, options.signal);
  }

  /**
   * Uploads local files to paths relative to the run folder, skipping those already there with the
   * same sha256; files under `roots` that the set does not name are removed; then verifies every hash.
   */
  upload(runId: string, files: { local: string; remote: string }[], roots: string[], signal?: AbortSignal): Promise<StageResult> {
    return uploadFiles(this, runId, files, roots, signal);
  }

  /** Starts run.sh detached unless this run was launched already; secrets travel on stdin. */
  launch(runId: string, options: { secrets?: Record<string, string>; env?: Record<string, string> } = {}): Promise<LaunchResult> {
    return launchRun(this, runId, options);
  }

  /** One cheap look at the run: alive, exit code, artifact bytes and log tails. */
  probe(runId: string, taskLogFile: string, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<Probe> {
    return probeRun(this, runId, taskLogFile, options);
  }

  /** Many runs of this host in one command: what probe() says of each, by run id. Throws when the host does not answer. */
  probeMany(targets: ProbeTarget[], options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<Map<string, Probe>> {
    return probeRuns(this, targets, options);
  }

  /**
   * TERM to the run's whole process group, KILL after `graceSeconds`; a manifest is written if the wrapper could not.
   * `why` is recorded in runtime/runtime.log (`why=cancelled`, `why=timed-out`).
   */
  cancel(runId: string, graceSeconds: number, why?: StopReason): Promise<'stopped' | 'killed' | 'not-running'> {
    return cancelRun(this, runId, graceSeconds, why);
  }

  /** Brings runtime/ and artifacts/ back into `bundleDir`, verified against the manifest. */
  collect(runId: string, bundleDir: string, options: CollectOptions = {}): Promise<CollectResult> {
    return collectRun(this, runId, bundleDir, options);
  }
}
