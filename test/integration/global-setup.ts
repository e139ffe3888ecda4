import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureDevServer, type DevServer } from '../../temporal/dev-server';
import { freePort } from '../helpers/ports';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalUiUrl: string;
  }
}

let server: DevServer | undefined;
let dataDir: string | undefined;

/** One real Temporal dev server (the same binary the project installs) shared by the integration tests. */
export async function setup(project: TestProject): Promise<void> {
  dataDir = await mkdtemp(join(tmpdir(), 'orbit-temporal-'));
  server = await ensureDevServer({ port: await freePort(), uiPort: await freePort(), dataDir });
  if (!server.started) throw new Error(`expected a fresh dev server, found one already running at ${server.address}`);
  project.provide('temporalAddress', server.address);
  project.provide('temporalUiUrl', server.uiUrl);
}

export async function teardown(): Promise<void> {
  await server?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}
