/**
 * The Web UI explains a run: a run submitted with `orbit submit` carries Orbit's search attributes,
 * a memo and activity summaries; `orbit list` finds it with the same visibility query the UI uses;
 * and headless Chromium (Debian's, driven by playwright-core) finds it in the dev server's Web UI and
 * shows its activities. Screenshots land in test-output/ (git-ignored).
 */
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { tempDir } from '../helpers/bundles';
import { startInProcessWorker, type InProcessWorker } from '../helpers/worker';
import { orbit, ROOT } from '../helpers/orbit-cli';

const OUTPUT = join(ROOT, 'test-output');
const CHROMIUM = '/usr/bin/chromium';


describe('the Web UI and orbit list explain a run', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let worker: InProcessWorker;
  let client: Client;
  let env: NodeJS.ProcessEnv;
  let runId: string;
  let digest: string;
  const taskQueue = `ui-${randomUUID()}`;

  beforeAll(async () => {
    tmp = await tempDir('orbit-ui-');
    const address = inject('temporalAddress');
    worker = await startInProcessWorker({ address, taskQueue, orbitHome: join(tmp.dir, 'home') });
    client = worker.client;
    env = { ...process.env, ORBIT_HOME: join(tmp.dir, 'home'), ORBIT_TEMPORAL_PORT: address.split(':')[1], ORBIT_TASK_QUEUE: taskQueue, TEMPORAL_UI_URL: inject('temporalUiUrl') };
    delete env.TEMPORAL_ADDRESS;
  });

  afterAll(async () => {
    await worker.stop();
    await tmp.cleanup();
  });

  it('a submitted run carries search attributes, a memo and activity summaries, and orbit list finds it by them', async () => {
    const submitted = await orbit(['submit', join(ROOT, 'examples/collect.yaml'), '--follow'], env);
    expect(submitted.stderr).not.toMatch(/Error/);
    expect(submitted.code).toBe(0);
    runId = /submitted (\S+)/.exec(submitted.stdout)![1]!;
    expect(runId).toMatch(/^collect-\d{8}-\d{6}-[0-9a-f]{4}$/);

    const handle = client.workflow.getHandle(runId);
    const d = await handle.describe();
    const sa = Object.fromEntries(d.typedSearchAttributes.getAll().map((p) => [p.key.name, p.value]));
    expect(sa).toMatchObject({ OrbitTaskType: 'collection', OrbitJobKind: 'collect', OrbitHost: 'local', OrbitPhase: 'succeeded' });
    digest = sa.OrbitBundleDigest as string;
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(d.memo).toMatchObject({ jobId: 'collect', taskType: 'collection', host: 'local', digest, metadata: { output: 'data/collected.csv', source: 'synthetic' } });

    // The UI's timeline labels each activity with its summary.
    const history = await handle.fetchHistory();
    const summaries = (history.events ?? [])
      .filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) => defaultPayloadConverter.fromPayload(e.userMetadata!.summary!) as string);
    expect(summaries).toEqual(expect.arrayContaining(['stage on local', 'launch on local', 'monitor on local', 'collect from local']));

    // orbit list: the same visibility query as the UI; filters find it, a wrong one does not.
    const deadline = Date.now() + 20_000;
    let listed = await orbit(['list', '--task', 'collection', '--phase', 'succeeded', '--host', 'local'], env);
    while (!listed.stdout.includes(runId) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      listed = await orbit(['list', '--task', 'collection', '--phase', 'succeeded', '--host', 'local'], env);
    }
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^ID\s+TASK\s+PHASE\s+HOST\s+STARTED$/m);
    expect(listed.stdout).toMatch(new RegExp(`^${runId}\\s+collection\\s+succeeded\\s+local\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d \\S+$`, 'm'));
    // The table is stdout; the query and the Web UI link are notes, on stderr.
    expect(listed.stderr).toContain('query: OrbitTaskType = "collection" AND OrbitPhase = "succeeded" AND OrbitHost = "local"');
    expect(listed.stderr).toContain(`Web UI: ${inject('temporalUiUrl')}/namespaces/default/workflows?query=OrbitTaskType%20%3D%20%22collection%22`);
    const byDigest = await orbit(['list', '--query', `OrbitBundleDigest = "${digest}"`], env);
    expect(byDigest.stdout).toContain(runId);
    const failed = await orbit(['list', '--phase', 'failed', '--task', 'collection'], env);
    expect(failed.stdout).not.toContain(runId);
    const bad = await orbit(['list', '--query', 'NoSuchAttribute = 1'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('was refused: invalid query');
  });

  it('headless Chromium finds the run in the Web UI by its search attributes and shows its activities', async () => {
    expect(runId, 'the previous test submits the run').toBeDefined();
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: bash scripts/setup.sh installs Debian's chromium`).toBe(true);
    await mkdir(OUTPUT, { recursive: true });
    const userDataDir = await mkdtemp(join(tmpdir(), 'orbit-chromium-'));
    let browser: BrowserContext | undefined;
    try {
      browser = await chromium.launchPersistentContext(userDataDir, {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
        viewport: { width: 1400, height: 900 },
      });
      const page = browser.pages()[0] ?? (await browser.newPage());
      const query = `OrbitTaskType = "collection" AND OrbitPhase = "succeeded" AND OrbitBundleDigest = "${digest}"`;
      await page.goto(`${inject('temporalUiUrl')}/namespaces/default/workflows?query=${encodeURIComponent(query)}`);
      const link = page.getByRole('link', { name: runId, exact: true });
      await link.waitFor({ timeout: 30_000 });
      await page.screenshot({ path: join(OUTPUT, 'web-ui-list.png') });

      await link.click();
      await page.waitForURL(new RegExp(`/workflows/${runId}/`));
      for (const label of ['stage • stage on local', 'launch • launch on local', 'monitor • monitor on local', 'collect • collect from local']) {
        await page.getByText(label).first().waitFor({ timeout: 30_000 });
      }
      await page.screenshot({ path: join(OUTPUT, 'web-ui-run.png') });

      await page.getByRole('tab', { name: 'Search Attributes' }).click();
      await page.getByText('"OrbitPhase": "succeeded"').waitFor({ timeout: 10_000 });
      const text = await page.locator('main').innerText();
      expect(text).toContain('"OrbitTaskType": "collection"');
      expect(text).toContain(`"OrbitBundleDigest": "${digest}"`);
      await page.screenshot({ path: join(OUTPUT, 'web-ui-search-attributes.png') });
    } finally {
      await browser?.close();
      await rm(userDataDir, { recursive: true, force: true });
    }
    expect(existsSync(join(OUTPUT, 'web-ui-run.png'))).toBe(true);
  });
});
