/** `orbit status RUN` and `orbit result RUN`. */
import { act, connect, outputOption, type Register, type WithOutput } from './common';

export const register: Register = (program, ctx) => {
  program
    .command('status')
    .description('phase, host, process, task log tail, Web UI link (answers without a worker too)')
    .argument('<run>', 'run id')
    .addOption(outputOption())
    .action(
      act(ctx, async (id: string, flags: WithOutput) => {
        const { statusCommand } = await import('../status');
        const { client, target } = await connect({ checkNamespace: false });
        return statusCommand(id, flags.output, ctx.io, client, target);
      }),
    );

  program
    .command('result')
    .description('wait for the run to end; print its result and the task\'s summary (exit 0 only when it succeeded)')
    .argument('<run>', 'run id')
    .addOption(outputOption())
    .action(
      act(ctx, async (id: string, flags: WithOutput) => {
        const { resultCommand } = await import('../result-command');
        const { client, target } = await connect({ checkNamespace: false });
        return resultCommand(id, flags.output, ctx.io, client, target);
      }),
    );
};
