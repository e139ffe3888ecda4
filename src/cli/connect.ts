/** The CLI's connection to Temporal, in a module that loads only the client (not the bundle, plugin or store code). */
import { Client, Connection } from '@temporalio/client';
import { temporalTarget, type TemporalTarget } from '../config';
import { CliError } from './cli-error';

/** Connects within ORBIT_CONNECT_TIMEOUT (default 3s): an unreachable server is one line, exit 3. */
export async function connectClient(target: TemporalTarget = temporalTarget()): Promise<Client> {
  try {
    const connection = await Connection.connect({ ...target.connectionOptions, connectTimeout: process.env.ORBIT_CONNECT_TIMEOUT ?? '3s' } as Parameters<typeof Connection.connect>[0]);
    return new Client({ connection, namespace: target.namespace });
  } catch (e) {
    const hint = target.embedded
      ? 'start the embedded server with `orbit up` (or run the demo), or point TEMPORAL_ADDRESS at a cluster'
      : 'check TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE and the TLS or API key settings';
    throw new CliError(`cannot reach Temporal at ${target.address}: ${(e as Error).message}; ${hint}`, 3);
  }
}
