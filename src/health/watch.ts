/**
 * The live side of the health rules: the monitor keeps one HealthWatch per call and asks it after
 * every probe. It tells when output last grew (a changed task-log tail in the probe, more points in
 * the progress series) and re-reads the synced files only after a sync brought some, so the check
 * itself costs no SSH round trip and little CPU.
 */
import { createHash } from 'node:crypto';
import type { JobSpec } from '../bundle';
import type { MonitorHealth, Probe } from '../common/activities';
import type { HealthReport } from '../common/health';
import { join } from 'node:path';
import { ARTIFACTS_DIR } from '../common/layout';
import { GrowingSeries, readFileFacts } from './facts';
import { evaluateHealth, type HealthFacts } from './rules';

export class HealthWatch {
  private files: Awaited<ReturnType<typeof readFileFacts>> | undefined;
  private lastTail: string | undefined;
  private lastPoints = -1;
  private lastOutputMs: number;
  private report: HealthReport | undefined;
  private readonly series: GrowingSeries | undefined;

  constructor(
    private readonly dir: string,
    private readonly spec: Pick<JobSpec, 'health' | 'progress' | 'entrypoint'>,
    from: MonitorHealth | undefined,
    now = Date.now(),
  ) {
    this.lastOutputMs = from?.lastOutputMs ?? now;
    this.report = from?.report;
    this.series = spec.progress ? new GrowingSeries(join(dir, ARTIFACTS_DIR), spec.progress) : undefined;
    // What the last call saw: a new call (the monitor returns to the workflow at each change) must not take it for new output.
    this.lastTail = from?.seen?.tail;
    this.lastPoints = from?.seen?.points ?? -1;
  }

  /** Whether the bundle declares any rule (no rules: nothing to watch). */
  static wanted(spec: Pick<JobSpec, 'health'>): boolean {
    return (spec.health?.rules.length ?? 0) > 0;
  }

  /** Evaluates the rules on the latest probe; `synced` says a sync just brought files (the series and audit are read again). */
  async check(probe: Probe | undefined, synced: boolean, now = Date.now()): Promise<HealthReport> {
    if (synced || !this.files) this.files = await readFileFacts(this.dir, { ...this.spec, logFile: this.spec.entrypoint.logFile }, this.series);
    const tail = probe ? createHash('sha256').update(probe.taskLogTail.join('\n')).digest('hex').slice(0, 16) : undefined;
    if (tail !== undefined && tail !== this.lastTail) {
      if (this.lastTail !== undefined || probe!.taskLogTail.length > 0) this.lastOutputMs = now;
      this.lastTail = tail;
    }
    const points = Math.max(0, ...(this.files.progress?.series.map((s) => s.points.length) ?? [0]));
    if (points > this.lastPoints) {
      if (this.lastPoints >= 0) this.lastOutputMs = now;
      this.lastPoints = points;
    }
    const facts: HealthFacts = {
      nowMs: now,
      lastOutputMs: this.lastOutputMs,
      ...this.files,
      ...(probe?.diskFreeMb !== undefined ? { disk: { freeMb: probe.diskFreeMb, ...(probe.diskTotalMb ? { totalMb: probe.diskTotalMb } : {}) } } : {}),
    };
    this.report = evaluateHealth(this.spec.health, facts);
    return this.report;
  }

  state(): MonitorHealth {
    return {
      ...(this.report ? { report: this.report } : {}),
      lastOutputMs: this.lastOutputMs,
      ...(this.lastTail !== undefined ? { seen: { tail: this.lastTail, points: Math.max(0, this.lastPoints) } } : {}),
    };
  }
}
