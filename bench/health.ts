/**
 * Figure 11, health rules: how soon each rule's verdict reaches the workflow's history, and what the
 * live check costs the monitor.
 *   - Detection latency per rule: from the offending record's own timestamp (the first NaN, the
 *     point that made the stall unhealthy, the last output line plus the rule's minutes, the GPU
 *     sample at the limit) to the UpsertWorkflowSearchAttributes event that set OrbitHealth to
 *     unhealthy. Target: <= one sync interval + one poll interval.
 *   - Monitor CPU per run-minute, rules on (all six) vs off (no `health` in job.json), the same job
 *     (a progress record every 10 ms, a log line every 100 ms, the GPU audit from the recorded
 *     nvidia-smi), runs interleaved off/on/off/on, CPU of this process (the in-process worker)
 *     measured over each run. Target: on/off <= 1.2.
 * Runs on the local host (the worker's own machine), so a sync is a local copy.
 *
 *   npx tsx bench/health.ts [--tiny] [--minutes M] [--temporal HOST:PORT]
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { HealthRuleInput, JobSpecInput } from '../src/bundle';
import { healthSchema } from '../src/bundle';
import { parseGpuAudit, parseSeries } from '../src/diagnose/sources';
import { evaluateHealth, judgeStall } from '../src/health/rules';
import { localHost } from '../src/worker/worker';
import { runBundle, type RunBundleInput } from '../src/workflows';
import { scriptBundle, tempDir } from '../test/helpers/bundles';
import { HostRegistry, inProcessWorker, line, machine, median, parseArgs, REPO, runMain, s, temporal, verdict } from './lib';

const B = 'health';
const SERIES = 'progress.jsonl';
const PROGRESS = { file: SERIES, format: 'jsonl' as const, step: 'step', metrics: [{ key: 'loss', goal: 'min' as const }] };
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

/** A record writer in bash: `rec STEP VALUE` appends {"step":..,"loss":..,"t":epoch seconds}. */
const REC = `rec() { echo "{\\"step\\": $1, \\"loss\\": $2, \\"t\\": $(date +%s.%N)}" >> artifacts/${SERIES}; }`;

interface Case {
  rule: string;
  rules: HealthRuleInput[];
  body: string;
  /** Epoch ms of the offending moment, from the collected bundle. */
  offending(dir: string): Promise<number>;
  gpu?: boolean;
}

async function records(dir: string) {
  const text = await readFile(join(dir, 'artifacts', SERIES), 'utf8');
  const t = text.trim().split('\n').map((l) => Number(/"t": ([\d.]+)/.exec(l)?.[1]) * 1000);
  return { series: parseSeries(text, PROGRESS)[0]!, t };
}

function cases(): Case[] {
  return [
    {
      rule: 'not-finite',
      rules: [{ rule: 'not-finite', metric: 'loss', onUnhealthy: 'stop' }],
      body: `${REC}\nfor i in $(seq 1 60); do rec $i 1.$i; sleep 0.05; done\nfor i in $(seq 61 600); do rec $i NaN; sleep 0.05; done`,
      offending: async (dir) => {
        const { series, t } = await records(dir);
        return t[series.points.findIndex((p) => Number.isNaN(p.value))]!;
      },
    },
    {
      rule: 'stalled',
      rules: [{ rule: 'stalled', metric: 'loss', minPoints: 40, patience: 40, onUnhealthy: 'stop' }],
      body: `${REC}\nfor i in $(seq 1 2000); do rec $i $(( 100 + RANDOM % 20 )); sleep 0.02; done`,
      offending: async (dir) => {
        const { series, t } = await records(dir);
        // The first length at which the rule finds the series unhealthy: that record made it so.
        for (let n = 40; n <= series.points.length; n++) {
          if (judgeStall({ ...series, points: series.points.slice(0, n) }, { minPoints: 40, patience: 40, tStat: 3 })?.level === 'unhealthy') return t[n - 1]!;
        }
        throw new Error('the stall rule never found the recorded series unhealthy');
      },
    },
    {
      rule: 'no-output',
      rules: [{ rule: 'no-output', minutes: 0.05, onUnhealthy: 'stop' }],
      body: 'for i in 1 2 3; do echo "tick $i $(date +%s.%N)"; sleep 0.5; done\nsleep 300',
      offending: async (dir) => {
        const log = await readFile(join(dir, 'artifacts/job.log'), 'utf8');
        const last = [...log.matchAll(/^tick \d+ ([\d.]+)$/gm)].at(-1)!;
        return Number(last[1]) * 1000 + 0.05 * 60_000;
      },
    },
    {
      rule: 'gpu-memory',
      gpu: true,
      rules: [{ rule: 'gpu-memory', limitFraction: 0.95, onUnhealthy: 'stop' }],
      body: 'for i in $(seq 1 300); do echo "step $i"; sleep 0.1; done',
      offending: async (dir) => {
        const samples = parseGpuAudit(await readFile(join(dir, 'artifacts/nvml-audit.jsonl'), 'utf8')).samples;
        const spec = healthSchema.parse({ rules: [{ rule: 'gpu-memory', limitFraction: 0.95 }] });
        for (let n = 1; n <= samples.length; n++) {
          if (evaluateHealth(spec, { nowMs: samples[n - 1]!.ms, gpu: { samples: samples.slice(0, n) } }).state === 'unhealthy') return samples[n - 1]!.ms;
        }
        throw new Error('the audit never reached the limit');
      },
    },
  ];
}

/** Epoch ms of the history event that set OrbitHealth to `value` first. */
async function verdictAt(handle: WorkflowHandle, value: string): Promise<number> {
  const history = await handle.fetchHistory();
  for (const e of history.events ?? []) {
    const f = e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.['OrbitHealth'];
    if (f?.data && JSON.parse(Buffer.from(f.data).toString('utf8')) === value) {
      const ts = e.eventTime!;
      return Number(ts.seconds) * 1000 + (ts.nanos ?? 0) / 1e6;
    }
  }
  throw new Error(`no OrbitHealth=${value} in the history of ${handle.workflowId}`);
}

async function main(): Promise<void> {
  const args = parseArgs();
  const syncMs = args.num('sync', args.tiny ? 1_000 : 2_000);
  const pollMs = args.num('poll', args.tiny ? 300 : 1_000);
  const cpuSeconds = args.num('minutes', args.tiny ? 0.15 : 1) * 60;
  line(B, `machine: ${await machine()}`);
  line(B, `settings: sync ${s(syncMs, 1)}, poll ${s(pollMs, 1)}; target: detection <= sync + poll = ${s(syncMs + pollMs, 1)}; CPU runs of ${cpuSeconds}s`);
  // The GPU audit of every job here reads the recorded nvidia-smi (the local host's jobs inherit this environment).
  process.env.PATH = `${join(REPO, 'test/fixtures/nvidia-smi/bin')}:${process.env.PATH}`;
  process.env.FAKE_NVIDIA_SMI_CSV = join(REPO, 'test/fixtures/nvidia-smi/oom-climb.csv');
  process.env.FAKE_NVIDIA_SMI_TICK = '0.5';

  const tmp = await tempDir('orbit-bench-health-');
  const t = await temporal(args);
  const taskQueue = `bench-health-${randomUUID().slice(0, 8)}`;
  const worker = await inProcessWorker(t.address, taskQueue, new HostRegistry([localHost(join(tmp.dir, 'home'))]));
  const start = async (name: string, body: string, overrides: Partial<JobSpecInput>) => {
    const dir = join(tmp.dir, 'bundles', `${name}-${randomUUID().slice(0, 4)}`);
    const { bundle, digest } = await scriptBundle(dir, body, { progress: PROGRESS, sync: { intervalSeconds: syncMs / 1000, atomicDirs: [] }, ...overrides });
    const input: RunBundleInput = {
      runId: `bench-health-${name}-${randomUUID().slice(0, 6)}`,
      bundleDir: dir,
      digest,
      host: 'local',
      logFile: bundle.spec.entrypoint.logFile,
      timeouts: { ...bundle.spec.timeouts, killGraceSeconds: 2 },
      syncIntervalMs: syncMs,
      tuning: { pollIntervalMs: pollMs, progressEveryMs: 10 * 60_000, heartbeatTimeoutMs: 10_000 },
    };
    const handle = await t.client.workflow.start(runBundle, { taskQueue, workflowId: input.runId, args: [input] });
    return { handle, dir };
  };
  try {
    const bound = syncMs + pollMs;
    for (const c of cases()) {
      const loadBefore = load();
      const { handle, dir } = await start(c.rule, c.body, { health: { rules: c.rules } });
      await handle.result().catch(() => undefined); // onUnhealthy stop: the run fails naming the rule
      const latency = (await verdictAt(handle, 'unhealthy')) - (await c.offending(dir));
      line(B, `detection latency ${c.rule.padEnd(10)} ${s(latency)} (ratio to the bound ${(latency / bound).toFixed(2)}, target <= 1.00) ${verdict(latency <= bound)}; load ${loadBefore} -> ${load()}`);
    }

    // CPU per run-minute, rules on vs off, interleaved.
    const allRules: HealthRuleInput[] = [
      { rule: 'not-finite', metric: 'loss' },
      { rule: 'stalled', metric: 'loss' },
      { rule: 'no-output', minutes: 30 },
      { rule: 'gpu-idle', minutes: 15 },
      { rule: 'gpu-memory' },
      { rule: 'disk', minFreeMb: 1 },
    ];
    const steps = Math.round(cpuSeconds * 100);
    const body = `${REC}\nfor i in $(seq 1 ${steps}); do rec $i 0.$(( 1000 + RANDOM )); [ $(( i % 10 )) = 0 ] && echo "step $i"; sleep 0.01; done`;
    const cpu: Record<'off' | 'on', number[]> = { off: [], on: [] };
    for (const mode of ['off', 'on', 'off', 'on'] as const) {
      const before = process.cpuUsage();
      const t0 = Date.now();
      const { handle } = await start(`cpu-${mode}`, body, mode === 'on' ? { health: { rules: allRules } } : {});
      await handle.result();
      const used = process.cpuUsage(before);
      const perMinute = ((used.user + used.system) / 1000 / ((Date.now() - t0) / 60_000));
      cpu[mode].push(perMinute);
      const events = (await handle.fetchHistory()).events?.length ?? 0;
      line(B, `monitor CPU rules ${mode.padEnd(3)} ${(perMinute / 1000).toFixed(2)} CPU-s per run-minute over ${s(Date.now() - t0, 1)} (${events} history events); load ${load()}`);
    }
    const ratio = median(cpu.on) / median(cpu.off);
    line(B, `monitor CPU per run-minute on/off ${ratio.toFixed(2)} (medians ${(median(cpu.on) / 1000).toFixed(2)} vs ${(median(cpu.off) / 1000).toFixed(2)} CPU-s; target <= 1.20) ${verdict(ratio <= 1.2)}`);
  } finally {
    await worker.stop();
    await t.close();
    await tmp.cleanup();
  }
}

runMain(main);
