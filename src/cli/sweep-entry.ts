/** Entry points of `orbit list` and `orbit sweep` for main.ts: the real Temporal client, registry and settings. */
import { orbitHome, taskQueue, temporalTarget } from '../config';
import { buildDefaultTaskRegistry } from '../plugins/registry';
import { checkNamespace } from './errors';
import { listCommand } from './list';
import { connectClient } from './submit';
import { sweepCommand } from './sweep';

export async function orbitList(argv: string[], out: (s: string) => void): Promise<number> {
  return listCommand(argv, out, async () => {
    const target = temporalTarget();
    const client = await connectClient(target);
    await checkNamespace(client, target);
    return { client, target };
  });
}

export async function orbitSweep(argv: string[], out: (s: string) => void): Promise<number> {
  return sweepCommand(argv, out, {
    registry: async () => buildDefaultTaskRegistry(),
    context: async () => {
      const target = temporalTarget();
      const client = await connectClient(target);
      await checkNamespace(client, target);
      return { client, registry: await buildDefaultTaskRegistry(), home: orbitHome(), taskQueue: taskQueue(), target };
    },
  });
}
