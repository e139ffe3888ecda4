/** The real Temporal client, registry and settings behind `orbit sweep`. */
import { orbitHome, taskQueue, temporalTarget } from '../config';
import { buildDefaultTaskRegistry } from '../plugins/registry';
import { checkNamespace } from './errors';
import { connectClient } from './connect';
import type { SweepDeps } from './sweep';

export function orbitSweepDeps(): SweepDeps {
  return {
    registry: async () => buildDefaultTaskRegistry(),
    context: async () => {
      const target = temporalTarget();
      const client = await connectClient(target);
      await checkNamespace(client, target);
      return { client, registry: await buildDefaultTaskRegistry(), home: orbitHome(), taskQueue: taskQueue(), target };
    },
  };
}
