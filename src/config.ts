/**
 * Where Orbit keeps things and which Temporal it talks to. With TEMPORAL_ADDRESS (or a Temporal
 * config profile via TEMPORAL_CONFIG_FILE / TEMPORAL_PROFILE) Orbit uses that cluster, with the usual
 * TEMPORAL_NAMESPACE, TEMPORAL_API_KEY and TEMPORAL_TLS_* settings, and starts nothing. Otherwise it
 * uses the embedded dev server on 127.0.0.1:ORBIT_TEMPORAL_PORT (7233).
 */
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { orbitHome } from './orbit-home';

export { orbitHome };

export interface TemporalTarget {
  embedded: boolean;
  address: string;
  namespace: string;
  connectionOptions: NativeConnectionOptions;
  /** Base URL of the Web UI, when known. */
  uiUrl?: string;
  /** Embedded only: the dev server's ports. */
  port?: number;
}

export function taskQueue(env: NodeJS.ProcessEnv = process.env): string {
  return env.ORBIT_TASK_QUEUE ?? 'orbit';
}

export function temporalTarget(env: NodeJS.ProcessEnv = process.env): TemporalTarget {
  const external = Boolean(env.TEMPORAL_ADDRESS || env.TEMPORAL_CONFIG_FILE || env.TEMPORAL_PROFILE);
  if (external) {
    const { connectionOptions, namespace } = loadClientConnectConfig({ profile: env.TEMPORAL_PROFILE, overrideEnvVars: env as Record<string, string> });
    return {
      embedded: false,
      address: connectionOptions.address ?? env.TEMPORAL_ADDRESS ?? 'localhost:7233',
      namespace: namespace ?? env.TEMPORAL_NAMESPACE ?? 'default',
      connectionOptions,
      uiUrl: env.TEMPORAL_UI_URL,
    };
  }
  const port = Number(env.ORBIT_TEMPORAL_PORT ?? 7233);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`ORBIT_TEMPORAL_PORT=${env.ORBIT_TEMPORAL_PORT} must be a port number`);
  const address = `127.0.0.1:${port}`;
  return {
    embedded: true,
    address,
    namespace: env.TEMPORAL_NAMESPACE ?? 'default',
    connectionOptions: { address },
    uiUrl: env.TEMPORAL_UI_URL ?? `http://localhost:${port + 1000}`,
    port,
  };
}

/** The Web UI page of one workflow. */
export function workflowUiUrl(target: TemporalTarget, workflowId: string): string | undefined {
  if (!target.uiUrl) return undefined;
  return `${target.uiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(target.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}
