/**
 * The LLM-shaped demo end to end: a (small) character-level language model trained by the built-in
 * trainer, then examples/sweep.yaml as shipped (its checkpoints pointed at that run) fired on the
 * real dev server: 2 checkpoints x 3 held-out texts, each cell an evaluation run; `orbit sweep
 * results` shows every cell's perplexity, and the later checkpoint is better on every environment.
 */
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { sweepCommand, type SweepContext } from '../../src/cli/sweep';
import type { FiringResults } from '../../src/cli/sweep-results';
import { temporalTarget } from '../../src/config';
import { buildDefaultTaskRegistry } from '../../src/plugins/registry';
import type { SweepFiringResult } from '../../src/workflows';
import { tempDir } from '../helpers/bundles';
import { startInProcessWorker, type InProcessWorker } from '../helpers/worker';
import { tinyLmRequest, trainLm } from '../plugins/charlm-helpers';
import { EXAMPLES } from '../plugins/helpers';

describe('the language-model sweep: checkpoints x environments, perplexities in the results table', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let worker: InProcessWorker;
  let ctx: SweepContext;
  const taskQueue = `lm-sweep-${randomUUID().slice(0, 8)}`;
  const name = `lm-${randomUUID().slice(0, 6)}`;

  beforeAll(async () => {
    tmp = await tempDir('orbit-lm-sweep-');
    const address = inject('temporalAddress');
    worker = await startInProcessWorker({ address, taskQueue, orbitHome: join(tmp.dir, 'home') });
    const target = temporalTarget({ ORBIT_TEMPORAL_PORT: address.split(':')[1], TEMPORAL_UI_URL: inject('temporalUiUrl') });
    ctx = { client: worker.client, registry: await buildDefaultTaskRegistry(), home: join(tmp.dir, 'home'), taskQueue, target };
  }, 60_000);

  afterAll(async () => {
    await worker?.client.schedule.getHandle(name).delete().catch(() => undefined);
    await worker?.stop();
    await tmp?.cleanup();
  });

  async function orbitSweep(...argv: string[]): Promise<string> {
    const lines: string[] = [];
    const code = await sweepCommand(argv, (s) => lines.push(s), { registry: async () => ctx.registry, context: async () => ctx });
    expect(code, lines.join('\n')).toBe(0);
    return lines.join('\n');
  }

  it('trains, fires examples/sweep.yaml once, and ranks step-400 above step-100 on shakespeare, austen and whitman', async () => {
    // The demo's checkpoints, step-100 and step-400, of a model small enough for the suite.
    const run = join(tmp.dir, 'runs', 'lm');
    const { bundle } = await trainLm(run, tinyLmRequest({ steps: 400, checkpointEvery: 100 }));
    const losses = (await readFile(bundle.path('artifacts/logging.jsonl'), 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);
    expect(losses.at(-1)!).toBeLessThan(0.6 * losses[0]!);

    // examples/sweep.yaml as shipped, its relative paths made absolute: runs/lm -> the run above, data/ -> examples/data.
    const shipped = await readFile(join(EXAMPLES, 'sweep.yaml'), 'utf8');
    const file = join(tmp.dir, 'sweep.yaml');
    await writeFile(file, shipped.replace(/^name: .*$/m, `name: ${name}`).replaceAll('runs/lm/', `${run}/`).replaceAll('data/text/', `${EXAMPLES}/data/text/`) + '\npollInterval: 200ms\n');
    expect(await orbitSweep('create', file)).toContain(`created sweep ${name}: 6 evaluation cells`);
    await orbitSweep('trigger', name);

    const schedule = ctx.client.schedule.getHandle(name);
    let firing: string | undefined;
    for (const end = Date.now() + 30_000; !firing && Date.now() < end; await new Promise((r) => setTimeout(r, 250))) {
      firing = (await schedule.describe()).info.recentActions[0]?.action.workflow.workflowId;
    }
    const result = (await ctx.client.workflow.getHandle(firing!).result()) as SweepFiringResult;
    expect(result.phase).toBe('succeeded');

    const json = JSON.parse(await orbitSweep('results', name, '--format', 'json')) as FiringResults;
    const perplexity = (cell: string, env: string) => Number(json.cells.find((c) => c.cell === cell)?.metrics[`perplexity.${env}`]);
    for (const env of ['shakespeare', 'austen', 'whitman']) {
      const early = perplexity(`step-100.${env}`, env);
      const late = perplexity(`step-400.${env}`, env);
      expect(early, env).toBeGreaterThan(1);
      expect(late, `${env}: step-400 ${late} vs step-100 ${early}`).toBeLessThan(early);
    }
    const table = await orbitSweep('results', name);
    expect(table).toContain('6/6 cells succeeded');
    // Each cell's perplexity.<env> folds into one PERPLEXITY column: its ENV column says which.
    expect(table).toMatch(/CHECKPOINT\s+ENV\s+STATUS\s+HOST\s+CHECKPOINTSTEP\s+PERPLEXITY\s+ACCURACY\s/);
    expect(table).toMatch(/step-400\.whitman\s+step-400\s+whitman\s+succeeded/);
  }, 300_000);
});
