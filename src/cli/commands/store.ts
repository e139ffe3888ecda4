/** `orbit store gc`. */
import { act, type Register } from './common';

export const register: Register = (program, ctx) => {
  const store = program.command('store').description('the content-addressed store runs travel through (ORBIT_STORE)');
  store
    .command('gc')
    .description('drop blobs no kept run or sweep names (never a queued or running run\'s)')
    .option('--older-than <duration>', 'also drop ended runs\' records older than this, e.g. 30d')
    .option('--dry-run', 'say what would go; drop nothing')
    .action(
      act(ctx, async (flags: { olderThan?: string; dryRun?: boolean }) => {
        const { orbitStoreGc } = await import('../store');
        return orbitStoreGc(flags, ctx.io.out);
      }),
    );
};
