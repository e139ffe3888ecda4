/** `orbit demo`: dev server + a worker in this process + the example job, followed. */
import { act, type Register } from './common';

export const register: Register = (program, ctx) => {
  program
    .command('demo')
    .description('dev server + worker + the example job, followed to its end')
    .argument('[file]', 'request to run (default: examples/train.yaml)')
    .option('--host <name>', 'where to run it (default: local)')
    .action(
      act(ctx, async (file: string | undefined, flags: { host?: string }) => {
        const { runDemo } = await import('../demo');
        const { join } = await import('node:path');
        const { repoRoot } = await import('../../paths');
        const { submitCommand } = await import('../submit-command');
        const request = file ?? join(repoRoot(), 'examples', 'train.yaml');
        return runDemo(ctx.io.out, () => submitCommand(request, { host: flags.host, priority: 0, follow: true, onHostLost: 'wait', maxRelaunches: 1 }, ctx.io));
      }),
    );
};
