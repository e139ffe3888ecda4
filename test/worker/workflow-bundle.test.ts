/**
 * The prebuilt workflow bundle (`npm run build` -> dist/workflow-bundle.js, loaded by a worker that runs
 * from dist): written by the same writeWorkflowBundle from the same sources, it replays every recorded
 * history as the from-source bundling does (test/replay), and run from source the worker keeps bundling.
 */
import { DefaultLogger, Worker } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installQuietRuntime } from '../../src/worker/logging';
import { workflowCode, writeWorkflowBundle } from '../../src/worker/workflow-bundle';
import { tempDir } from '../helpers/bundles';

const HISTORIES = join(__dirname, '..', 'histories');

describe('the prebuilt workflow bundle', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let codePath: string;

  beforeAll(async () => {
    installQuietRuntime('warn');
    tmp = await tempDir('orbit-workflow-bundle-');
    codePath = join(tmp.dir, 'workflow-bundle.js');
    await writeWorkflowBundle(join(__dirname, '..', '..', 'src', 'workflows', 'index.ts'), codePath, new DefaultLogger('WARN'));
  }, 180_000);

  afterAll(async () => {
    await tmp?.cleanup();
  });

  it('replays every recorded history', async () => {
    const files = readdirSync(HISTORIES).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThan(0);
    const histories = files.map((f) => ({ workflowId: f, history: JSON.parse(readFileSync(join(HISTORIES, f), 'utf8')) as unknown }));
    const failed: string[] = [];
    for await (const r of Worker.runReplayHistories({ workflowBundle: { codePath } }, histories)) {
      if (r.error) failed.push(`${r.workflowId}: ${String(r.error)}`);
    }
    expect(failed).toEqual([]);
  }, 120_000);

  it('is not used from source: the worker bundles src/workflows itself', () => {
    expect(workflowCode()).toEqual({ workflowsPath: join(__dirname, '..', '..', 'src', 'workflows', 'index.ts') });
  });
});
