/** `orbit init [dir]`: a starter project (request, job script, data) that `orbit submit` runs. */
import { act, type Register } from './common';

export const register: Register = (program, ctx) => {
  program
    .command('init')
    .description('write a starter project: orbit.yaml, train.py (follows the job contract), data/train.csv, .gitignore, README.md')
    .argument('[dir]', 'the project folder, made if missing', '.')
    .option('--force', 'overwrite files that are already there')
    .action(
      act(ctx, async (dir: string, flags: { force?: boolean }) => {
        const { initCommand } = await import('../init');
        return initCommand(dir, { force: flags.force === true }, ctx.io);
      }),
    );
};
