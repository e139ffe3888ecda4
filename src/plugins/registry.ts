import type { TaskPlugin } from './types';

/** Thrown when a request names a task type no plugin provides. */
export class UnknownTaskTypeError extends Error {
  constructor(
    readonly taskType: string,
    readonly known: string[],
  ) {
    super(`unknown task type "${taskType}"; known task types: ${known.length ? known.join(', ') : '(none)'}`);
    this.name = 'UnknownTaskTypeError';
  }
}

/** Plugins resolved by their task type string. */
export class TaskRegistry {
  private readonly plugins = new Map<string, TaskPlugin>();

  register(plugin: TaskPlugin): this {
    if (this.plugins.has(plugin.taskType)) throw new Error(`task type "${plugin.taskType}" is registered twice`);
    this.plugins.set(plugin.taskType, plugin);
    return this;
  }

  get(taskType: string): TaskPlugin {
    const plugin = this.plugins.get(taskType);
    if (!plugin) throw new UnknownTaskTypeError(taskType, this.taskTypes());
    return plugin;
  }

  has(taskType: string): boolean {
    return this.plugins.has(taskType);
  }

  taskTypes(): string[] {
    return [...this.plugins.keys()].sort();
  }

  list(): TaskPlugin[] {
    return this.taskTypes().map((t) => this.get(t));
  }
}

/**
 * The default registry. Plugins are imported here, lazily, inside the function: no module mutates a
 * global registry at load time, and the core never imports a task.
 */
export async function buildDefaultTaskRegistry(): Promise<TaskRegistry> {
  const [{ TrainingPlugin }, { EvaluationPlugin }, { CollectionPlugin }, { UpstreamPlugin }, { withUserCode, TRAINING_CODE, EVALUATION_CODE }] = await Promise.all([
    import('./training/plugin'),
    import('./evaluation/plugin'),
    import('./collection/plugin'),
    import('./upstream/plugin'),
    import('./workload/plugin'),
  ]);
  // Training and evaluation run the built-in scripts or the user's own code (workdir + run: docs/job-contract.md).
  return new TaskRegistry()
    .register(withUserCode(new TrainingPlugin(), TRAINING_CODE))
    .register(withUserCode(new EvaluationPlugin(), EVALUATION_CODE))
    .register(new CollectionPlugin())
    .register(new UpstreamPlugin());
}
