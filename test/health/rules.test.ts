import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { healthSchema, type HealthRuleInput } from '../../src/bundle/schema';
import { healthLine } from '../../src/common/health';
import type { GpuSample, MetricPoint, MetricSeries } from '../../src/diagnose/sources';
import { evaluateHealth, judgeStall, STALL_DEFAULTS, trend, type HealthFacts } from '../../src/health/rules';

const spec = (...rules: HealthRuleInput[]) => healthSchema.parse({ rules });
const T0 = Date.parse('2026-12-01T10:00:00Z');

/** A deterministic noise in [-1, 1] (a linear congruential generator: the same series every run). */
function noise(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return (x / 2 ** 31) * 2 - 1;
  };
}

function series(values: number[], goal: 'min' | 'max' = 'min'): MetricSeries {
  const points: MetricPoint[] = values.map((v, i) => ({ line: i + 1, step: i + 1, value: v, raw: JSON.stringify({ step: i + 1, loss: v }) }));
  return { key: 'loss', label: 'loss', goal, points };
}

const facts = (extra: Partial<HealthFacts>): HealthFacts => ({ nowMs: T0, ...extra });
const progress = (values: number[]) => ({ progress: { file: 'artifacts/logging.jsonl', series: [series(values)] } });

describe('the stall rule: a least-squares trend over the last half of the points against its noise', () => {
  const flatNoisy = (n: number) => {
    const r = noise(7);
    return Array.from({ length: n }, () => 12 + 1.5 * r());
  };
  const falling = (n: number) => {
    const r = noise(3);
    return Array.from({ length: n }, (_, i) => 10 * Math.exp(-i / 80) + 0.3 + 0.05 * r());
  };

  // Recorded from the demo trainer (examples/train.yaml, 300 steps): learningRate 1e-9, and the default 0.01.
  const recorded = (name: string) =>
    readFileSync(join(__dirname, '../fixtures/health', name), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);

  it('finds the trainer at learningRate 1e-9 stalled (its first and last tenth differ by minibatch noise), unhealthy once it was so `patience` points ago', () => {
    const values = recorded('loss-lr1e-9.jsonl');
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    // The old rule (first vs last tenth, 1% better) took this noise for progress.
    expect((mean(values.slice(0, 30)) - mean(values.slice(-30))) / mean(values.slice(0, 30))).toBeGreaterThan(0.01);
    const s = judgeStall(series(values), STALL_DEFAULTS);
    expect(s?.level).toBe('unhealthy');
    expect(s?.summary).toMatch(/^loss has not improved beyond its noise: over steps 151-300 \(150 points\) its trend moved .* standard errors \(noise [\d.]+; the rule wants 3\), and so it was 100 points earlier$/);
    expect(judgeStall(series(values.slice(0, 60)), STALL_DEFAULTS)?.level).toBe('warning');
    expect(judgeStall(series(flatNoisy(300)), STALL_DEFAULTS)?.level).toBe('unhealthy');
  });

  it('passes the trainer at its default learning rate at every length, though its loss flattens', () => {
    const values = recorded('loss-healthy.jsonl');
    for (let n = 40; n <= values.length; n += 10) expect(judgeStall(series(values.slice(0, n)), STALL_DEFAULTS), `at ${n} points`).toBeUndefined();
  });

  it('passes a loss still falling, at every length, even while it flattens', () => {
    const values = falling(400);
    for (const n of [40, 60, 120, 250, 400]) expect(judgeStall(series(values.slice(0, n)), STALL_DEFAULTS), `at ${n} points`).toBeUndefined();
  });

  it('judges a metric to maximize the other way, and too few points not at all', () => {
    const rising = falling(200).map((v) => -v);
    expect(judgeStall(series(rising, 'max'), STALL_DEFAULTS)).toBeUndefined();
    expect(judgeStall(series(rising, 'min'), STALL_DEFAULTS)?.level).toBe('unhealthy');
    expect(judgeStall(series(flatNoisy(39)), STALL_DEFAULTS)).toBeUndefined();
  });

  it('trend: the fitted improvement over the window and its standard error', () => {
    const t = trend(series([5, 4, 3, 2, 1]).points, 'min')!;
    expect(t.improvement).toBeCloseTo(4);
    expect(t.t).toBe(Infinity);
    expect(trend(series([1, 2]).points, 'min')).toBeUndefined();
  });
});

describe('evaluateHealth', () => {
  it('not-finite names the metric, the step and the value before, with the record as evidence', () => {
    const r = evaluateHealth(spec({ rule: 'not-finite', metric: 'loss', onUnhealthy: 'stop' }), facts(progress([3, 2.5, 1e30, Number.NaN, Number.NaN])));
    expect(r.state).toBe('unhealthy');
    expect(r.findings).toEqual([
      {
        rule: 'not-finite:loss',
        level: 'unhealthy',
        summary: 'loss became NaN at step 4 (it was 1e+30 at step 3)',
        evidence: { file: 'artifacts/logging.jsonl', line: 4, text: '{"step":4,"loss":null}' },
        onUnhealthy: 'stop',
      },
    ]);
    expect(healthLine(r)).toBe('unhealthy: not-finite:loss: loss became NaN at step 4 (it was 1e+30 at step 3) (artifacts/logging.jsonl:4)');
  });

  it('no-output: ok, then warning at half the minutes, then unhealthy', () => {
    const rules = spec({ rule: 'no-output', minutes: 2 });
    const at = (quietMs: number) => evaluateHealth(rules, facts({ lastOutputMs: T0 - quietMs, lastOutputLine: { file: 'artifacts/task.log', text: 'epoch 3' } }));
    expect(at(30_000).state).toBe('ok');
    expect(at(61_000).findings[0]).toMatchObject({ level: 'warning', summary: 'no new task-log line or progress record for 1.0 min (the rule allows 2 min)' });
    expect(at(121_000).findings[0]).toMatchObject({ level: 'unhealthy', evidence: { file: 'artifacts/task.log', text: 'epoch 3' }, onUnhealthy: 'warn' });
    expect(evaluateHealth(rules, facts({})).state).toBe('ok');
  });

  const sample = (sec: number, gpu: number, util: number, usedMib: number, line = sec): GpuSample => ({
    line,
    time: new Date(T0 + sec * 1000).toISOString(),
    ms: T0 + sec * 1000,
    gpu,
    utilPct: util,
    memUsedMib: usedMib,
    memTotalMib: 1000,
    raw: `{"gpu": ${gpu}, "util_pct": ${util}}`,
  });

  it('gpu-idle: every GPU under the threshold for the whole window; one busy GPU or a short record keeps it ok', () => {
    const rules = spec({ rule: 'gpu-idle', belowPct: 5, minutes: 1 });
    const idle = Array.from({ length: 70 }, (_, s) => [sample(s, 0, 1, 100), sample(s, 1, 2, 100)]).flat();
    const r = evaluateHealth(rules, facts({ gpu: { samples: idle } }));
    expect(r.findings[0]).toMatchObject({ rule: 'gpu-idle', level: 'unhealthy', summary: 'GPU 0, 1 under 5% utilization for 1.0 min (at most 2%; the rule allows 1 min)' });
    const oneBusy = idle.map((s) => (s.gpu === 1 ? { ...s, utilPct: 90 } : s));
    expect(evaluateHealth(rules, facts({ gpu: { samples: oneBusy } })).state).toBe('ok');
    expect(evaluateHealth(rules, facts({ gpu: { samples: idle, gpus: [0] } })).findings[0]?.summary).toMatch(/^GPU 0 under/);
    expect(evaluateHealth(rules, facts({ gpu: { samples: idle.slice(0, 2 * 35) } })).findings[0]?.level).toBe('warning');
    expect(evaluateHealth(rules, facts({ gpu: { samples: idle.slice(0, 2 * 20) } })).state).toBe('ok');
  });

  it('gpu-memory: climbing to the limit is unhealthy, near it a warning; high but flat is ok', () => {
    const rules = spec({ rule: 'gpu-memory' });
    const climb = Array.from({ length: 30 }, (_, s) => sample(s, 0, 90, 600 + s * 13));
    expect(evaluateHealth(rules, facts({ gpu: { samples: climb } })).findings[0]).toMatchObject({ level: 'unhealthy', summary: 'GPU 0 memory climbed from 60.0% to 97.7% of 1000 MiB within 29s (the limit is 95%)' });
    expect(evaluateHealth(rules, facts({ gpu: { samples: climb.slice(0, 27) } })).findings[0]?.level).toBe('warning');
    const flat = Array.from({ length: 60 }, (_, s) => sample(s, 0, 90, 970));
    expect(evaluateHealth(rules, facts({ gpu: { samples: flat } })).state).toBe('ok');
  });

  it('disk: under minFreeMb unhealthy, under twice it a warning', () => {
    const rules = spec({ rule: 'disk', minFreeMb: 100 });
    expect(evaluateHealth(rules, facts({ disk: { freeMb: 40, totalMb: 48 } })).findings[0]?.summary).toBe("the host's disk under the run folder has 40 MB free of 48 MB (the rule wants 100 MB)");
    expect(evaluateHealth(rules, facts({ disk: { freeMb: 150 } })).state).toBe('warning');
    expect(evaluateHealth(rules, facts({ disk: { freeMb: 5000 } })).state).toBe('ok');
  });

  it('reports the worst level first over several rules, and counts the rules', () => {
    const r = evaluateHealth(spec({ rule: 'disk', minFreeMb: 100 }, { rule: 'not-finite', metric: 'loss' }), facts({ disk: { freeMb: 150 }, ...progress([1, Number.POSITIVE_INFINITY]) }));
    expect([r.state, r.rules, r.findings.map((f) => `${f.rule}=${f.level}`)]).toEqual(['unhealthy', 2, ['not-finite:loss=unhealthy', 'disk=warning']]);
  });
});

describe('the health schema', () => {
  it('fills defaults and refuses an unknown rule, a bad policy and a rule listed twice', () => {
    expect(spec({ rule: 'stalled', metric: 'loss' }).rules[0]).toEqual({ rule: 'stalled', metric: 'loss', minPoints: 40, patience: 100, tStat: 3, onUnhealthy: 'warn' });
    expect(healthSchema.safeParse({ rules: [{ rule: 'gpu-hot' }] }).success).toBe(false);
    const bad = healthSchema.safeParse({ rules: [{ rule: 'disk', onUnhealthy: 'panic' }] });
    expect(bad.error?.issues[0]?.message).toBe('onUnhealthy must be one of warn, stop, relaunch');
    expect(healthSchema.safeParse({ rules: [{ rule: 'disk' }, { rule: 'disk', minFreeMb: 5 }] }).error?.issues[0]?.message).toBe('health.rules lists the same rule twice');
  });
});
