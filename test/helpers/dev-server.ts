import { ensureDevServer, DevServerStartError, type DevServer, type DevServerOptions } from '../../temporal/dev-server';
import { freePort } from './ports';

/**
 * Starts a fresh dev server on free loopback ports. Tests run side by side, so a port found free can
 * be taken before the server binds it; that start (and only that) is retried on new ports.
 */
export async function startTestDevServer(
  options: Omit<DevServerOptions, 'port' | 'uiPort'> & { dataDir: string },
): Promise<{ server: DevServer; options: DevServerOptions & { port: number; uiPort: number } }> {
  for (let attempt = 1; ; attempt++) {
    const chosen = { ...options, port: await freePort(), uiPort: await freePort() };
    if (chosen.port === chosen.uiPort) continue;
    try {
      const server = await ensureDevServer(chosen);
      if (!server.started) throw new Error(`expected a fresh dev server, found one already running at ${server.address}`);
      return { server, options: chosen };
    } catch (error) {
      if (!(error instanceof DevServerStartError && error.portTaken) || attempt >= 4) throw error;
    }
  }
}
