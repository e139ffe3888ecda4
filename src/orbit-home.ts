/**
 * Where Orbit keeps its files on this machine: $ORBIT_HOME, default ~/.orbit. Node built-ins only, so
 * that temporal/ (the dev server's launcher) can import it without Temporal's client or any of Orbit.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export function orbitHome(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.ORBIT_HOME ?? join(homedir(), '.orbit'));
}
