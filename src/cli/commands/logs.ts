/** `orbit logs RUN`: the task log, from the host while the run runs, from its bundle after. */
import { act, wholeNumber, type Register } from './common';

export const register: Register = (program, ctx) => {
  program
    .command('logs')
    .description('print the task log (streamed from the host while the run runs; from its bundle after)')
    .argument('<run>', 'run id')
    .option('-f, --follow', 'keep streaming until the run ends (resumes after a dropped connection)')
    .option('--since <time>', 'only lines since this time: a duration ago (10m, 2h) or an ISO time')
    .option('--tail <n>', 'start with the last N lines', wholeNumber(0))
    .option('--node <rank>', 'node rank of a multi-node run', wholeNumber(0), 0)
    .action(
      act(ctx, async (run: string, flags: { follow: boolean; since?: string; tail?: number; node: number }) => {
        const { logsCommand } = await import('../logs');
        return logsCommand(run, flags, ctx.io);
      }),
    );
};
