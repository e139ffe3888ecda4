/** `orbit hosts list|check|drain|undrain`. */
import { act, outputOption, type Register } from './common';
import type { OutputFormat } from '../io';

export const register: Register = (program, ctx) => {
  const hosts = program.command('hosts').description('the hosts Orbit places runs on (hosts.yaml) and what the fleet holds on them');
  const hostsFile = ['--hosts <file>', 'hosts.yaml (default: ORBIT_HOSTS, ./hosts.yaml, ~/.orbit/hosts.yaml)'] as const;
  hosts
    .command('list')
    .description('the inventory and the fleet\'s hosts: state, busy/free GPUs, cpus, memory')
    .option(...hostsFile)
    .addOption(outputOption())
    .action(
      act(ctx, async (flags: { hosts?: string; output: OutputFormat }) => {
        const { hostsList } = await import('../hosts');
        const { temporalTarget } = await import('../../config');
        return hostsList(flags.hosts, ctx.io, flags.output, temporalTarget());
      }),
    );
  hosts
    .command('check')
    .description('connect to a host (or local, this machine); print OS, free disk, GPUs (nvidia-smi -L), python3')
    .argument('<name>', 'host name from hosts.yaml, or local')
    .option(...hostsFile)
    .addOption(outputOption())
    .action(
      act(ctx, async (name: string, flags: { hosts?: string; output: OutputFormat }) => {
        const { hostsCheck } = await import('../hosts');
        return hostsCheck(name, flags.hosts, ctx.io, flags.output);
      }),
    );
  for (const verb of ['drain', 'undrain'] as const) {
    hosts
      .command(verb)
      .description(verb === 'drain' ? 'stop new leases on a host (its running jobs go on)' : 'let a drained host take new leases again')
      .argument('<name>', 'host name')
      .option(...hostsFile)
      .action(
        act(ctx, async (name: string, flags: { hosts?: string }) => {
          const { hostsDrain } = await import('../hosts');
          const { temporalTarget } = await import('../../config');
          return hostsDrain(name, verb === 'drain', flags.hosts, ctx.io, temporalTarget());
        }),
      );
  }
};
