/** `orbit list` and `orbit queue`: runs by search attribute, and what the fleet holds. */
import { act, connect, outputOption, wholeNumber, type Register } from './common';
import type { OutputFormat } from '../io';

export const register: Register = (program, ctx) => {
  program
    .command('list')
    .description('runs, newest first, found by Orbit\'s search attributes (the Web UI\'s visibility queries)')
    .option('-q, --query <query>', 'any visibility query, ANDed with the filters, e.g. \'OrbitPhase IN ("failed", "timed-out")\'')
    .option('--task <type>', 'task type')
    .option('--phase <phase>', 'phase (queued, running, succeeded, failed, lost, cancelled, ...)')
    .option('--host <name>', 'host')
    .option('--sweep <name>', 'sweep')
    .option('-n, --limit <n>', 'at most this many', wholeNumber(1), 20)
    .addOption(outputOption(['text', 'json', 'yaml', 'csv']))
    .addHelpText('after', '\nSearch attributes: OrbitTaskType, OrbitJobKind, OrbitHost, OrbitPhase, OrbitBundleDigest, OrbitSweep.')
    .action(
      act(ctx, async (flags: { query?: string; task?: string; phase?: string; host?: string; sweep?: string; limit: number; output: OutputFormat | 'csv' }) => {
        const { listCommand } = await import('../list');
        return listCommand(flags, ctx.io, () => connect());
      }),
    );

  program
    .command('queue')
    .description('queued and running runs: position, priority, resources, host, GPUs, waiting time')
    .addOption(outputOption())
    .action(
      act(ctx, async (flags: { output: OutputFormat }) => {
        const { runQueue } = await import('../fleet');
        const { temporalTarget } = await import('../../config');
        return runQueue(temporalTarget(), ctx.io, flags.output);
      }),
    );
};
