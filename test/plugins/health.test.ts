import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jobSpecSchema } from '../../src/bundle';
import { runInputFor, runSpecOf } from '../../src/common/run-input';
import { CollectionPlugin } from '../../src/plugins/collection/plugin';
import { healthFor } from '../../src/plugins/common';
import { EvaluationPlugin } from '../../src/plugins/evaluation/plugin';
import { TrainingPlugin } from '../../src/plugins/training/plugin';
import { problemsOf, useTempDirs } from './helpers';

const EXAMPLES = join(__dirname, '../../examples');
const tempDir = useTempDirs();

async function trainingSpec(extra: Record<string, unknown> = {}) {
  const plugin = new TrainingPlugin();
  const parsed = plugin.parse({ datasetPath: 'data/regression.csv', outputDir: 'checkpoints', ...extra });
  if (!parsed.ok) throw new Error(parsed.problems.map((p) => p.message).join('; '));
  const bundle = await plugin.buildBundle(join(await tempDir(), 'b'), { request: parsed.value, baseDir: EXAMPLES, jobId: 'h' });
  return bundle.spec;
}

describe('health rules in job.json: the task declares them, a request changes them', () => {
  it("the trainer watches its loss (NaN stops it, a stall warns) besides output, GPUs and disk", async () => {
    const spec = await trainingSpec();
    expect(spec.health?.rules.map((r) => [('metric' in r ? `${r.rule}:${r.metric}` : r.rule), r.onUnhealthy])).toEqual([
      ['not-finite:loss', 'stop'],
      ['stalled:loss', 'warn'],
      ['no-output', 'warn'],
      ['gpu-idle', 'warn'],
      ['gpu-memory', 'warn'],
      ['disk', 'warn'],
    ]);
    // job.json parses back with the same rules (the contract, readable without Orbit).
    expect(jobSpecSchema.parse(JSON.parse(JSON.stringify(spec))).health).toEqual(spec.health);
  });

  it('a request rule replaces the task rule of the same id, adds new ones, and its onUnhealthy sets every rule without its own', async () => {
    const spec = await trainingSpec({
      health: { onUnhealthy: 'stop', rules: [{ rule: 'no-output', minutes: 5 }, { rule: 'stalled', metric: 'loss', patience: 50, onUnhealthy: 'warn' }] },
    });
    const byId = Object.fromEntries(spec.health!.rules.map((r) => [('metric' in r ? `${r.rule}:${r.metric}` : r.rule), r]));
    expect(byId['no-output']).toEqual({ rule: 'no-output', minutes: 5, onUnhealthy: 'stop' });
    expect(byId['stalled:loss']).toMatchObject({ patience: 50, minPoints: 40, onUnhealthy: 'warn' });
    expect(byId['disk']?.onUnhealthy).toBe('stop');
    expect(spec.health!.rules).toHaveLength(6);
    expect(healthFor(undefined, { health: { rules: [] } })).toBeUndefined();
  });

  it('refuses a bad rule naming the field and the fix', () => {
    const plugin = new TrainingPlugin();
    const base = { datasetPath: 'data/regression.csv', outputDir: 'checkpoints' };
    const problems = (health: unknown) => problemsOf(plugin.parse({ ...base, health })).map((p) => `${p.path}: ${p.message}`);
    expect(problems({ rules: [{ rule: 'gpu-hot' }] })[0]).toMatch(/^health\.rules\[0\]\.rule: /);
    expect(problems({ onUnhealthy: 'panic' })).toEqual(['health.onUnhealthy: health.onUnhealthy must be one of warn, stop, relaunch']);
    expect(problems({ rules: [{ rule: 'no-output', minutes: 0 }] })).toEqual(['health.rules[0].minutes: minutes must be above 0']);
    expect(problems({ ruless: [] })[0]).toMatch(/unknown field "ruless" in health; known fields: onUnhealthy, rules/);
  });

  it('evaluation and collection declare output and disk rules; evaluation also the GPU ones', async () => {
    const dir = await tempDir();
    const evalPlugin = new EvaluationPlugin();
    const ev = evalPlugin.parse({ checkpoint: 'data/checkpoints/step-300', environments: [{ name: 'holdout-a', datasetPath: 'data/holdout-a.csv' }] });
    expect(ev.ok).toBe(true);
    const collect = new CollectionPlugin().parse({ source: { kind: 'synthetic', rows: 10 }, output: 'data/x.csv' });
    expect(collect.ok).toBe(true);
    if (collect.ok) {
      const b = await new CollectionPlugin().buildBundle(join(dir, 'c'), { request: collect.value, baseDir: EXAMPLES, jobId: 'c' });
      expect(b.spec.health?.rules.map((r) => r.rule)).toEqual(['no-output', 'disk']);
    }
    if (ev.ok) {
      const b = await evalPlugin.buildBundle(join(dir, 'e'), { request: ev.value, baseDir: EXAMPLES, jobId: 'e' });
      expect(b.spec.health?.rules.map((r) => r.rule)).toEqual(['no-output', 'gpu-idle', 'gpu-memory', 'disk']);
    }
  });
});

describe('the run input: --on-unhealthy and relaunch hosts', () => {
  it('carries --on-unhealthy, and keeps relaunch hosts when it or a rule relaunches', async () => {
    const spec = await trainingSpec();
    const run = { runId: 'r', store: 'file:///s', digest: 'd' };
    const placed = { host: 'a', relaunchHosts: ['b'] };
    expect(runInputFor(run, runSpecOf(spec), placed)).not.toHaveProperty('relaunchHosts');
    expect(runInputFor(run, runSpecOf(spec), { ...placed, onUnhealthy: 'relaunch' })).toMatchObject({ onUnhealthy: 'relaunch', relaunchHosts: ['b'] });
    const relaunching = await trainingSpec({ health: { rules: [{ rule: 'not-finite', metric: 'loss', onUnhealthy: 'relaunch' }] } });
    expect(runInputFor(run, runSpecOf(relaunching), placed).relaunchHosts).toEqual(['b']);
    expect(runInputFor(run, runSpecOf(relaunching), { ...placed, onUnhealthy: 'warn' })).not.toHaveProperty('relaunchHosts');
  });
});
