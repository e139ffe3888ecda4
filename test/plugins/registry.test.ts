import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildDefaultTaskRegistry, TaskRegistry, UnknownTaskTypeError } from '../../src/plugins/registry';
import { TrainingPlugin } from '../../src/plugins/training/plugin';
import { EXAMPLES, loadRequest, ROOT } from './helpers';

let registry: TaskRegistry;
beforeAll(async () => {
  registry = await buildDefaultTaskRegistry();
});

describe('default task registry', () => {
  it('provides the four task types with their job kinds', () => {
    expect(registry.taskTypes()).toEqual(['collection', 'evaluation', 'training', 'upstream']);
    expect(registry.list().map((p) => [p.taskType, p.jobKind])).toEqual([
      ['collection', 'collect'],
      ['evaluation', 'eval'],
      ['training', 'train'],
      ['upstream', 'upstream-blackbox'],
    ]);
    for (const p of registry.list()) expect(p.description.length).toBeGreaterThan(10);
  });

  it('rejects an unknown task type, listing the known ones', () => {
    expect(() => registry.get('finetune')).toThrow(UnknownTaskTypeError);
    expect(() => registry.get('finetune')).toThrow('unknown task type "finetune"; known task types: collection, evaluation, training, upstream');
  });

  it('refuses to register a task type twice', () => {
    expect(() => new TaskRegistry().register(new TrainingPlugin()).register(new TrainingPlugin())).toThrow('task type "training" is registered twice');
  });
});

describe('examples', () => {
  it.each(['train.yaml', 'train-mlp.yaml', 'collect.yaml', 'collect-rollouts.yaml', 'eval.yaml', 'eval-mlp.yaml'])('%s parses with its plugin', (file) => {
    const { task, raw } = loadRequest(join(EXAMPLES, file));
    const result = registry.get(task).parse(raw);
    expect(result.ok ? [] : result.problems).toEqual([]);
  });

  // eval.yaml and collect-rollouts.yaml need a trained language model: test/cli/examples.test.ts trains one for them.
  it.each(['train.yaml', 'train-mlp.yaml', 'collect.yaml', 'eval-mlp.yaml'])('%s validates against the shipped data', async (file) => {
    const { task, raw } = loadRequest(join(EXAMPLES, file));
    const plugin = registry.get(task);
    const result = plugin.parse(raw);
    if (!result.ok) throw new Error('does not parse');
    expect(await plugin.validate(result.value, EXAMPLES)).toEqual([]);
  });
});

describe('the plugin boundary', () => {
  // The execution core knows no task vocabulary: tasks live in plugins only.
  const words = /\b(training|train|evaluation|eval|dataset)s?\b/i;

  function files(dir: string): string[] {
    if (!existsSync(dir)) return [];
    return readdirSync(dir).flatMap((name) => {
      const full = join(dir, name);
      return statSync(full).isDirectory() ? files(full) : [full];
    });
  }

  it.each(['src/bundle', 'src/workflows', 'src/activities'])('%s never names a task', (dir) => {
    const offenders = files(join(ROOT, dir)).flatMap((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .map((line, i) => ({ where: `${f.slice(ROOT.length + 1)}:${i + 1}`, line }))
        .filter(({ line }) => words.test(line))
        .map(({ where, line }) => `${where}: ${line.trim()}`),
    );
    expect(offenders).toEqual([]);
  });

  // A task's progress series and provenance checks come from job.json, declared by its plugin.
  it.each(['src/diagnose', 'src/report'])('%s hard-codes no series file, metric key or fork outside comments', (dir) => {
    const offenders = files(join(ROOT, dir)).flatMap((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .map((line, i) => ({ where: `${f.slice(ROOT.length + 1)}:${i + 1}`, line }))
        .filter(({ line }) => !/^\s*(\/\/|\/?\*)/.test(line) && /logging\.jsonl|'loss'|\bfork/i.test(line))
        .map(({ where, line }) => `${where}: ${line.trim()}`),
    );
    expect(offenders).toEqual([]);
  });
});
