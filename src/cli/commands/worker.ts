/** `orbit worker`: one worker process until SIGTERM or SIGINT (which drain it). */
import { Option } from 'commander';
import { DEFAULT_MONITOR_SLOTS, DEFAULT_TRANSFER_SLOTS } from '../../common/task-queues';
import { act, wholeNumber, type Register } from './common';

export const register: Register = (program, ctx) => {
  program
    .command('worker')
    .description('run a worker until interrupted (SIGTERM/SIGINT drain it)')
    .addOption(new Option('--log-level <level>', 'the worker\'s log level (SDK records below WARN only at debug/trace)').choices(['error', 'warn', 'info', 'debug', 'trace']).env('ORBIT_LOG_LEVEL'))
    .addOption(
      new Option('--monitor-slots <n>', 'running jobs this worker watches at once (their monitors, on the task queue\'s ".monitors" queue)')
        .argParser(wholeNumber(1))
        .default(DEFAULT_MONITOR_SLOTS)
        .env('ORBIT_WORKER_MONITOR_SLOTS'),
    )
    .addOption(
      new Option('--transfer-slots <n>', 'stages, launches, collections, probes and stops this worker runs at once')
        .argParser(wholeNumber(1))
        .default(DEFAULT_TRANSFER_SLOTS)
        .env('ORBIT_WORKER_TRANSFER_SLOTS'),
    )
    .action(
      act(ctx, async (flags: { logLevel?: string; monitorSlots: number; transferSlots: number }) => {
        const { runWorker } = await import('../../worker/main');
        await runWorker({ logLevel: flags.logLevel, monitorSlots: flags.monitorSlots, transferSlots: flags.transferSlots });
        return 0;
      }),
    );
};
