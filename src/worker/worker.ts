import { NativeConnection, Worker, type NativeConnectionOptions } from '@temporalio/worker';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createActivities } from '../activities';
import { LocalTransport } from '../hosts/local-transport';
import { HostRegistry } from '../hosts/registry';
import { ShellHost } from '../hosts/shell-host';

export interface OrbitWorkerOptions {
  connection?: NativeConnection;
  connectionOptions?: NativeConnectionOptions;
  namespace: string;
  taskQueue: string;
  hosts: HostRegistry;
  /** Secrets are resolved by name from here (default: this process's environment). */
  secretSource?: Record<string, string | undefined>;
  maxConcurrentActivityTaskExecutions?: number;
}

/** The embedded local host: bundles run on the worker's own machine under `<orbitHome>/work/<runId>`. */
export function localHost(orbitHomeDir: string): ShellHost {
  return new ShellHost({ name: 'local', transport: new LocalTransport(), workRoot: join(orbitHomeDir, 'work') });
}

/** A worker that runs the generic runBundle workflow and the host activities. */
export async function createOrbitWorker(options: OrbitWorkerOptions): Promise<Worker> {
  const connection = options.connection ?? (await NativeConnection.connect(options.connectionOptions ?? {}));
  return Worker.create({
    connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    workflowsPath: workflowsPath(),
    activities: createActivities({ hosts: options.hosts, secretSource: options.secretSource }),
    maxConcurrentActivityTaskExecutions: options.maxConcurrentActivityTaskExecutions ?? 200,
  });
}

/** The workflow bundle's entry: the TypeScript source when run from source (tsx, vitest), else the compiled file. */
function workflowsPath(): string {
  const source = join(__dirname, '..', 'workflows', 'index.ts');
  return existsSync(source) ? source : require.resolve('../workflows');
}
