/** `orbit submit FILE` and `orbit validate FILE`: a request through its plugin, into a frozen bundle and a run. */
import { Option } from 'commander';
import { act, wholeNumber, type Register } from './common';

interface SubmitFlags {
  host?: string;
  priority: number;
  jobId?: string;
  follow: boolean;
  hosts?: string;
  onHostLost: 'wait' | 'fail' | 'relaunch';
  maxRelaunches: number;
  onUnhealthy?: 'warn' | 'stop' | 'relaunch';
  quiet: boolean;
}

export const register: Register = (program, ctx) => {
  program
    .command('submit')
    .description('build a bundle from a request and queue it for a lease')
    .argument('<file>', 'request file (YAML)')
    .option('--host <name>', 'auto (the first fitting host with free capacity; the default when hosts.yaml lists hosts), local, or a host name to pin')
    .option('--priority <n>', 'queue priority, higher first (-1000..1000)', wholeNumber(-1000, 1000), 0)
    .option('--job-id <id>', 'job id (default: the request\'s jobId, else the file name)')
    .option('-f, --follow', 'follow the phases and stream the task log until the run ends')
    .option('--hosts <file>', 'hosts.yaml to place with (default: ORBIT_HOSTS, ./hosts.yaml, ~/.orbit/hosts.yaml)')
    .addOption(new Option('--on-host-lost <policy>', 'when the host stops answering').choices(['wait', 'fail', 'relaunch']).default('wait'))
    .option('--max-relaunches <n>', 'relaunches on other hosts at most (with --on-host-lost relaunch or --on-unhealthy relaunch)', wholeNumber(0), 1)
    .addOption(new Option('--on-unhealthy <policy>', "when a health rule finds the run unhealthy, for every rule (default: each rule's own, from the request and the task)").choices(['warn', 'stop', 'relaunch']))
    .option('-q, --quiet', 'print only the run id')
    .action(
      act(ctx, async (file: string, flags: SubmitFlags) => {
        const { submitCommand } = await import('../submit-command');
        return submitCommand(file, flags, ctx.io);
      }),
    );

  program
    .command('validate')
    .description('check a request; build nothing')
    .argument('<file>', 'request file (YAML)')
    .option('--job-id <id>', 'job id to check the request with')
    .action(
      act(ctx, async (file: string, flags: { jobId?: string }) => {
        const { loadRequest } = await import('../request');
        const { buildDefaultTaskRegistry } = await import('../../plugins/registry');
        const loaded = await loadRequest(file, await buildDefaultTaskRegistry(), flags.jobId);
        ctx.io.out(`${loaded.file}: valid ${loaded.plugin.taskType} request (job id ${loaded.jobId})`);
        return 0;
      }),
    );
};
