import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import type { DevServer } from '../../temporal/dev-server';
import { startTestDevServer } from '../helpers/dev-server';

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
  ({ server } = await startTestDevServer({ dataDir }));
  project.provide('temporalAddress', server.address);
  project.provide('temporalUiUrl', server.uiUrl);
}

export async function teardown(): Promise<void> {
  await server?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}
