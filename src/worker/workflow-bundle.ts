/**
 * The workflow code a worker loads. From source (tsx, vitest) the SDK bundles src/workflows with
 * webpack at each worker start; `npm run build` bundles the same sources once into
 * dist/workflow-bundle.js, and a worker running from dist loads that file instead.
 */
import { bundleWorkflowCode, type Logger } from '@temporalio/worker';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The prebuilt bundle's name, directly under dist/. */
export const WORKFLOW_BUNDLE_FILE = 'workflow-bundle.js';

/**
 * Bundles the workflows at `workflowsPath` into `outFile`, with what Worker.create's own bundling
 * is given (no interceptor modules, converters or ignored modules: createOrbitWorker sets none).
 */
export async function writeWorkflowBundle(workflowsPath: string, outFile: string, logger?: Logger): Promise<number> {
  const { code } = await bundleWorkflowCode({ workflowsPath, ...(logger ? { logger } : {}) });
  await writeFile(outFile, code);
  return code.length;
}

/**
 * What Worker.create is given for the workflow code: the prebuilt bundle when this module runs
 * compiled from dist/ and the bundle is there, else the path to bundle (the TypeScript source when
 * run from source, else the compiled entry).
 */
export function workflowCode(): { workflowBundle: { codePath: string } } | { workflowsPath: string } {
  if (__filename.endsWith('.js')) {
    const codePath = join(__dirname, '..', '..', WORKFLOW_BUNDLE_FILE);
    if (existsSync(codePath)) return { workflowBundle: { codePath } };
  }
  const source = join(__dirname, '..', 'workflows', 'index.ts');
  return { workflowsPath: existsSync(source) ? source : require.resolve('../workflows') };
}
