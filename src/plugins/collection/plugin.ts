import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Bundle, Problem } from '../../bundle';
import {
  assertNoProblems,
  baseHealthRules,
  checkTable,
  createPythonBundle,
  existingPaths,
  jobSpecFor,
  numberField,
  outcomePrefix,
  pluginFile,
  pythonCommand,
  readJson,
  requestPath,
  runOptionProblems,
  SchemaPlugin,
} from '../common';
import { checkCheckpoint, checkpointFiles } from '../evaluation/checkpoint';
import { CHARLM_SCRIPT, TRAINING_MODULES } from '../training/plugin';
import { checkText } from '../training/text';
import type { RunOutcome, TaskPlugin, TaskSubmission, TaskSummary } from '../types';
import { COLLECTION_LOG, COLLECTION_STATS, collectionRequestSchema, type CollectionRequest } from './schema';

/** What collector.py and scripts/tabular.py import beyond the standard library for a table: nothing (csv, json, random, ...), so no module is required. */
export const COLLECTION_MODULES: { name: string; minVersion?: string }[] = [];
/** What a rollouts collection imports besides: torch, through scripts/charlm.py (as the trainer). */
export const ROLLOUT_MODULES = TRAINING_MODULES;
/** The name of rollout shard `n` in the output folder. */
export const shardName = (n: number): string => `shard-${String(n).padStart(5, '0')}.jsonl`;

const CHECKPOINT_INPUT = 'checkpoint';
const PROMPTS_INPUT_DIR = 'prompts';

/**
 * Collects data into artifacts/: a CSV table, generated (synthetic) or copied and cleaned from a local
 * file, or JSON-lines shards of rollouts sampled from a char-lm checkpoint. The built-in collector is
 * the functions below (validateBuiltinCollection, buildBuiltinCollectionBundle, summarizeBuiltinCollection).
 */
export class CollectionPlugin extends SchemaPlugin<typeof collectionRequestSchema> implements TaskPlugin<typeof collectionRequestSchema> {
  readonly taskType = 'collection';
  readonly jobKind = 'collect';
  readonly description = 'collect data into artifacts/: a CSV table (generated from a seed, or cleaned from a local file), or JSONL shards of rollouts sampled from a language model checkpoint';
  override readonly requestSchema = collectionRequestSchema;

  validate(request: CollectionRequest, baseDir: string): Promise<Problem[]> {
    return validateBuiltinCollection(request, baseDir);
  }

  buildBundle(bundleDir: string, submission: TaskSubmission<CollectionRequest>): Promise<Bundle> {
    return buildBuiltinCollectionBundle(this, bundleDir, submission);
  }

  summarizeResult(bundle: Bundle, outcome: RunOutcome): Promise<TaskSummary> {
    return summarizeBuiltinCollection(bundle, outcome);
  }
}

export async function validateBuiltinCollection(request: CollectionRequest, baseDir: string): Promise<Problem[]> {
  const options = await runOptionProblems(request, baseDir);
  const { source } = request;
  if (source.kind === 'synthetic') return options;
  if (source.kind === 'file') {
    const { problems } = await checkTable(requestPath(baseDir, source.path), 'source.path', { numericRows: false });
    return [...problems, ...options];
  }
  const { problems } = await checkCheckpoint(requestPath(baseDir, source.checkpoint), 'source.checkpoint', {
    kind: 'char-lm',
    why: 'rollouts are sampled from a char-lm: give a step-N folder of a training run on a .txt text',
  });
  const prompts = await checkText(requestPath(baseDir, source.prompts), 'source.prompts', { minLines: 1, why: 'one prompt per line' });
  return [...problems, ...prompts.problems, ...options];
}

export async function buildBuiltinCollectionBundle(
  plugin: Pick<TaskPlugin, 'taskType' | 'jobKind'>,
  bundleDir: string,
  submission: TaskSubmission<CollectionRequest>,
): Promise<Bundle> {
  const { request, baseDir, jobId } = submission;
  assertNoProblems('collection request', await validateBuiltinCollection(request, baseDir));
  const { source } = request;
  // Inputs copied into the bundle: [from (relative to the request file), to (under inputs/)].
  const copies: { from: string; to: string }[] = [];
  let config: Record<string, unknown>;
  if (source.kind === 'rollouts') {
    const checkpointDir = requestPath(baseDir, source.checkpoint);
    for (const f of checkpointFiles(checkpointDir)) copies.push({ from: join(source.checkpoint, f), to: `${CHECKPOINT_INPUT}/${f}` });
    const prompts = `${PROMPTS_INPUT_DIR}/${basename(source.prompts)}`;
    copies.push({ from: source.prompts, to: prompts });
    config = {
      output: request.output,
      source: { ...source, checkpoint: `inputs/${CHECKPOINT_INPUT}`, prompts: `inputs/${prompts}` },
      threads: Math.min(2, request.resources?.cpus ?? 2),
    };
  } else if (source.kind === 'file') {
    const to = `source/${basename(source.path)}`;
    copies.push({ from: source.path, to });
    config = { output: request.output, source: { kind: 'file', path: `inputs/${to}`, limit: source.limit ?? null } };
  } else {
    config = { output: request.output, source };
  }
  const rollouts = source.kind === 'rollouts';
  const spec = jobSpecFor(plugin, jobId, request, {
    defaults: rollouts ? { cpus: 2, memoryGb: 2 } : { cpus: 1, memoryGb: 1 },
    command: pythonCommand('collector.py'),
    logFile: COLLECTION_LOG,
    modules: rollouts ? ROLLOUT_MODULES : COLLECTION_MODULES,
    health: baseHealthRules(30),
    inputs: copies.map((c) => ({ path: c.to, description: `copy of ${c.from}` })),
    expectedOutputs: [
      // Rollouts: there is at least one record, so at least the first shard.
      { path: rollouts ? `${request.output}/${shardName(0)}` : request.output, required: true },
      { path: COLLECTION_STATS, required: true },
      { path: COLLECTION_LOG, required: true },
    ],
    metadata: { output: request.output, source: source.kind },
  });
  const bundle = await createPythonBundle(bundleDir, spec, { name: 'collector.py', source: pluginFile('collection', 'collector.py') }, config, { run: request, baseDir });
  if (rollouts) await bundle.writeScript(CHARLM_SCRIPT.name, await readFile(CHARLM_SCRIPT.source));
  for (const c of copies) await bundle.copyInput(requestPath(baseDir, c.from), c.to);
  return bundle;
}

/** The shard files in `dir`: how many, their records (lines) and bytes. */
async function shardsOnDisk(dir: string): Promise<{ shards: number; records: number; bytes: number }> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^shard-\d+\.jsonl$/.test(n));
  let records = 0;
  let bytes = 0;
  for (const name of names) {
    const text = await readFile(join(dir, name), 'utf8');
    bytes += Buffer.byteLength(text);
    records += text.split('\n').filter((l) => l.trim()).length;
  }
  return { shards: names.length, records, bytes };
}

/** "812 bytes", "41.2 KB", "3.5 MB" (1 KB = 1024 bytes). */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export async function summarizeBuiltinCollection(bundle: Bundle, outcome: RunOutcome): Promise<TaskSummary> {
  const stats = await readJson(bundle.path(`artifacts/${COLLECTION_STATS}`));
  const output = `artifacts/${String(bundle.spec.metadata['output'] ?? '')}`;
  const highlights = existingPaths(bundle, [output, `artifacts/${COLLECTION_STATS}`, `artifacts/${COLLECTION_LOG}`]);
  if (bundle.spec.metadata['source'] === 'rollouts') {
    const records = numberField(stats, 'records');
    const bytes = numberField(stats, 'bytes');
    const shardList = (stats as { shards?: unknown } | undefined)?.shards;
    const shards = Array.isArray(shardList) ? shardList.length : null;
    if (outcome.status === 'succeeded' && records !== null) {
      const headline = `collected ${records} rollouts in ${shards ?? '?'} shard${shards === 1 ? '' : 's'} (${bytes === null ? '?' : formatBytes(bytes)}) into ${output}/`;
      return { headline, metrics: { records, shards, bytes }, highlights };
    }
    // Stopped early: the shards under their final names are complete (a shard is renamed there once written).
    const done = await shardsOnDisk(bundle.path(output));
    const headline = `${outcomePrefix(outcome)}collection ${done.shards ? `wrote ${done.shards} complete shard${done.shards === 1 ? '' : 's'} (${done.records} rollouts, ${formatBytes(done.bytes)}) into ${output}/` : 'wrote no complete shard'}`;
    return { headline, metrics: { records: done.records, shards: done.shards, bytes: done.bytes }, highlights };
  }
  const rows = numberField(stats, 'rows');
  const dropped = numberField(stats, 'dropped');
  const columns = numberField(stats, 'columns');
  const headline =
    outcome.status === 'succeeded' && rows !== null
      ? `collected ${rows} rows x ${columns ?? '?'} columns into ${output}${dropped ? ` (dropped ${dropped} bad rows)` : ''}`
      : `${outcomePrefix(outcome)}collection ${rows !== null ? `wrote ${rows} rows` : 'wrote no table'}`;
  return { headline, metrics: { rows, columns, dropped }, highlights };
}
