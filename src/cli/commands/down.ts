/** `orbit down`: stop the embedded Temporal dev server. */
import { act, type Register } from './common';

export const register: Register = (program, ctx) => {
  program
    .command('down')
    .description('stop the embedded Temporal dev server (its data stays under $ORBIT_HOME/temporal)')
    .action(
      act(ctx, async () => {
        const { downCommand } = await import('../down');
        return downCommand(ctx.io);
      }),
    );
};
