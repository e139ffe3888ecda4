/** `orbit cancel RUN...`: cancel through the workflow, wait until the job is stopped and collected. */
import { act, type Register } from './common';

export const register: Register = (program, ctx) => {
  program
    .command('cancel')
    .description('cancel runs: the job is stopped (TERM, then KILL) and what it wrote is collected')
    .argument('[runs...]', 'run ids')
    .option('--reason <text>', 'why (recorded with the cancellation)')
    .option('--all', 'every running run the filters select (--sweep and/or --phase)')
    .option('--sweep <name>', 'with --all: runs of this sweep')
    .option('--phase <phase>', 'with --all: runs in this phase (queued, running, ...)')
    .option('--no-wait', 'return once the cancellation is requested')
    .action(
      act(ctx, async (runs: string[], flags: { reason?: string; all: boolean; sweep?: string; phase?: string; wait: boolean }) => {
        const { cancelCommand } = await import('../cancel');
        return cancelCommand(runs, flags, ctx.io);
      }),
    );
};
