/** `orbit worker`: one worker process until SIGTERM or SIGINT (which drain it). */
import { Option } from 'commander';
import { act, type Register } from './common';

export const register: Register = (program, ctx) => {
  program
    .command('worker')
    .description('run a worker until interrupted (SIGTERM/SIGINT drain it)')
    .addOption(new Option('--log-level <level>', 'the worker\'s log level (SDK records below WARN only at debug/trace)').choices(['error', 'warn', 'info', 'debug', 'trace']).env('ORBIT_LOG_LEVEL'))
    .action(
      act(ctx, async (flags: { logLevel?: string }) => {
        const { runWorker } = await import('../../worker/main');
        await runWorker({ logLevel: flags.logLevel });
        return 0;
      }),
    );
};
