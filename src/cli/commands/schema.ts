/** `orbit schema TASK`: the JSON Schema of a task's request file (editors autocomplete with it). */
import { act, type Register } from './common';

export const register: Register = (program, ctx) => {
  program
    .command('schema')
    .description('print the JSON Schema of a task type\'s request file (also in schemas/)')
    .argument('[task]', 'task type (orbit tasks lists them)')
    .action(
      act(ctx, async (task: string | undefined) => {
        const { schemaCommand } = await import('../schema');
        return schemaCommand(task, ctx.io);
      }),
    );
};
