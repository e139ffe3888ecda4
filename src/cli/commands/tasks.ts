/** `orbit tasks`: the task types this client knows. */
import { act, outputOption, type Register, type WithOutput } from './common';

export const register: Register = (program, ctx) => {
  program
    .command('tasks')
    .description('the task types this client knows')
    .addOption(outputOption())
    .action(
      act(ctx, async (flags: WithOutput) => {
        const { buildDefaultTaskRegistry } = await import('../../plugins/registry');
        const { emit } = await import('../io');
        const tasks = (await buildDefaultTaskRegistry()).list().map((p) => ({ task: p.taskType, description: p.description }));
        await emit(ctx.io, flags.output, tasks, () => {
          for (const t of tasks) ctx.io.out(`${t.task.padEnd(12)} ${t.description}`);
        });
        return 0;
      }),
    );
};
