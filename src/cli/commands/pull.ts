/** `orbit pull RUN`: a run's bundle and artifacts from its store, verified. */
import { act, type Register } from './common';

export const register: Register = (program, ctx) => {
  program
    .command('pull')
    .description('bring a run\'s bundle and artifacts from its store, each file checked by sha256')
    .argument('<run>', 'run id')
    .option('--to <dir>', 'where (default: $ORBIT_HOME/runs/<run>)')
    .option('--only <glob...>', 'only paths matching, e.g. artifacts/**/*.json')
    .action(
      act(ctx, async (run: string, flags: { to?: string; only?: string[] }) => {
        const { orbitPull } = await import('../pull');
        return orbitPull(run, flags, ctx.io.out);
      }),
    );
};
