/** `orbit up`: start (or reuse) the embedded Temporal dev server. */
import { act, type Register } from './common';

export const register: Register = (program, ctx) => {
  program
    .command('up')
    .description('start (or reuse) the embedded Temporal dev server, in the background')
    .action(
      act(ctx, async () => {
        const { temporalTarget } = await import('../../config');
        const { CliError } = await import('../cli-error');
        const target = temporalTarget();
        if (!target.embedded) throw new CliError(`TEMPORAL_ADDRESS is set (${target.address}): Orbit uses that cluster and starts no server`);
        const { ensureDevServer } = await import('../../../temporal/dev-server');
        const s = await ensureDevServer({ port: target.port, detached: true });
        ctx.io.out(`${s.started ? 'started' : 'reusing'} Temporal dev server at ${s.address}; Web UI ${s.uiUrl}; database ${s.dbFile}`);
        return 0;
      }),
    );
};
