/**
 * `orbit down`: stops the embedded Temporal dev server that `orbit up` (or `orbit demo`) started from
 * $ORBIT_HOME/temporal/. Its SQLite file stays, so `orbit up` brings back every run. With an existing
 * cluster configured (TEMPORAL_ADDRESS or a Temporal profile) there is nothing of Orbit's to stop.
 */
import { temporalTarget } from '../config';
import { CliError } from './cli-error';
import type { Io } from './io';

export async function downCommand(io: Io, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const target = temporalTarget(env);
  if (!target.embedded) {
    throw new CliError(`Orbit uses the Temporal at ${target.address} (TEMPORAL_ADDRESS or a Temporal profile is set) and started no server; orbit down stops only the embedded dev server`);
  }
  const { defaultDataDir, stopDevServer } = await import('../../temporal/dev-server');
  const dataDir = defaultDataDir(env);
  const r = await stopDevServer({ port: target.port, dataDir });
  if (r.state === 'stopped') {
    io.out(`stopped Temporal dev server (pid ${r.pid})${r.forced ? ', killed after it ignored SIGTERM' : ''}`);
    return 0;
  }
  io.out('no embedded dev server is running');
  if (r.otherPort !== undefined) io.note(`orbit: the dev server of ${dataDir} listens on port ${r.otherPort}, not ${target.port}; stop it with ORBIT_TEMPORAL_PORT=${r.otherPort} orbit down`);
  else if (r.portBusy) io.note(`orbit: something else listens on port ${target.port}: not a dev server started from ${dataDir}, so it was left alone`);
  return 0;
}
