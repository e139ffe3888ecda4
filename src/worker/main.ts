/** `orbit worker`: runs a worker until SIGINT/SIGTERM. */
import { orbitHome, taskQueue, temporalTarget } from '../config';
import { parsePauseAfter } from '../activities';
import { loadHostRegistry } from './hosts';
import { createOrbitWorker } from './worker';

export async function runWorker(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const target = temporalTarget(env);
  const hosts = await loadHostRegistry(orbitHome(env), env);
  const worker = await createOrbitWorker({
    connectionOptions: target.connectionOptions,
    namespace: target.namespace,
    taskQueue: taskQueue(env),
    hosts,
    pauseAfter: parsePauseAfter(env.ORBIT_TEST_PAUSE_AFTER),
  });
  console.log(`orbit worker: task queue "${taskQueue(env)}" on ${target.address} (${target.namespace}); hosts: ${hosts.names().join(', ')}`);
  try {
    await worker.run();
  } finally {
    await hosts.close();
  }
}

if (require.main === module) {
  runWorker().catch((e: Error) => {
    console.error(e.stack ?? e.message);
    process.exit(1);
  });
}
