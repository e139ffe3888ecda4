/** `orbit sweep ...`: scheduled sweeps over a matrix of requests, on Temporal Schedules. */
import { Option, type Command } from 'commander';
import { act, outputOption, type CommandContext, type Register } from './common';
import type { SweepFlags } from '../sweep';

async function run(ctx: CommandContext, sub: string, positionals: string[], flags: SweepFlags): Promise<number> {
  const { sweepAction } = await import('../sweep');
  const { orbitSweepDeps } = await import('../sweep-entry');
  return sweepAction(sub, positionals, flags, ctx.io, orbitSweepDeps());
}

const overlap = () => new Option('--overlap <policy>', 'overlap policy for this firing (default: the sweep\'s)');

export const register: Register = (program, ctx) => {
  const sweep = program.command('sweep').description('scheduled sweeps over a matrix of requests (Temporal Schedules); see examples/sweep.yaml');
  const sub = (name: string, description: string, arg?: [string, string]): Command => {
    const c = sweep.command(name).description(description);
    if (arg) c.argument(arg[0], arg[1]);
    return c;
  };
  const file: [string, string] = ['<file>', 'sweep file (YAML)'];
  const name: [string, string] = ['<name>', 'sweep name'];
  const one = (verb: string) => act(ctx, (arg: string, flags: SweepFlags) => run(ctx, verb, [arg], flags));

  sub('validate', 'check a sweep file and every cell; build nothing', file).option('--name <name>', 'sweep name').option('--host <host>', 'host for every cell').action(one('validate'));
  sub('create', 'build one frozen bundle per cell, create the schedule', file)
    .option('--name <name>', 'sweep name (default: the file\'s)')
    .option('--host <host>', 'host for every cell')
    .option('--trigger', 'fire once now too')
    .action(one('create'));
  sub('list', 'sweeps: state, schedule, next firing')
    .addOption(outputOption())
    .action(act(ctx, (flags: SweepFlags) => run(ctx, 'list', [], flags)));
  sub('describe', 'schedule, policies, recent and running firings, cells', name).addOption(outputOption()).action(one('describe'));
  sub('pause', 'stop firing (running firings go on)', name).option('--note <text>', 'why').action(one('pause'));
  sub('unpause', 'fire again on schedule', name).option('--note <text>', 'why').action(one('unpause'));
  sub('trigger', 'fire now', name).addOption(overlap()).action(one('trigger'));
  sub('backfill', 'fire for every scheduled time in [start, end]', name)
    .requiredOption('--start <time>', 'ISO time, now, or a duration ago like -2h')
    .requiredOption('--end <time>', 'ISO time, now, or a duration ago')
    .addOption(overlap())
    .action(one('backfill'));
  sub('results', 'each cell\'s status and metrics', name)
    .option('--firing <id>', 'one firing (default: the newest)')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'csv', 'json']).default('table'))
    .action(one('results'));
  sub('delete', 'delete the schedule (running firings go on)', name).option('--purge', 'also remove its folder and its record in the store').action(one('delete'));
};
