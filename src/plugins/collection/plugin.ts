import { basename } from 'node:path';
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
import type { RunOutcome, TaskPlugin, TaskSubmission, TaskSummary } from '../types';
import { COLLECTION_LOG, COLLECTION_STATS, collectionRequestSchema, type CollectionRequest } from './schema';

/** What collector.py and scripts/tabular.py import beyond the standard library: nothing (csv, json, random, ...), so no module is required. */
export const COLLECTION_MODULES: { name: string; minVersion?: string }[] = [];

/** Collects a CSV table into artifacts/: generated (synthetic) or copied and cleaned from a local file. */
export class CollectionPlugin extends SchemaPlugin<typeof collectionRequestSchema> implements TaskPlugin<typeof collectionRequestSchema> {
  readonly taskType = 'collection';
  readonly jobKind = 'collect';
  readonly description = 'collect a CSV table into artifacts/, generated from a seed or cleaned from a local file';
  override readonly requestSchema = collectionRequestSchema;

  async validate(request: CollectionRequest, baseDir: string): Promise<Problem[]> {
    const options = await runOptionProblems(request, baseDir);
    if (request.source.kind !== 'file') return options;
    const { problems } = await checkTable(requestPath(baseDir, request.source.path), 'source.path', { numericRows: false });
    return [...problems, ...options];
  }

  async buildBundle(bundleDir: string, submission: TaskSubmission<CollectionRequest>): Promise<Bundle> {
    const { request, baseDir, jobId } = submission;
    assertNoProblems('collection request', await this.validate(request, baseDir));
    const { source } = request;
    const copied = source.kind === 'file' ? { from: source.path, to: `source/${basename(source.path)}` } : undefined;
    const spec = jobSpecFor(this, jobId, request, {
      defaults: { cpus: 1, memoryGb: 1 },
      command: pythonCommand('collector.py'),
      logFile: COLLECTION_LOG,
      modules: COLLECTION_MODULES,
      health: baseHealthRules(30),
      inputs: copied ? [{ path: copied.to, description: `copy of ${copied.from}` }] : [],
      expectedOutputs: [
        { path: request.output, required: true },
        { path: COLLECTION_STATS, required: true },
        { path: COLLECTION_LOG, required: true },
      ],
      metadata: { output: request.output, source: source.kind },
    });
    const config = {
      output: request.output,
      source: copied && source.kind === 'file' ? { kind: 'file', path: `inputs/${copied.to}`, limit: source.limit ?? null } : source,
    };
    const bundle = await createPythonBundle(bundleDir, spec, { name: 'collector.py', source: pluginFile('collection', 'collector.py') }, config, { run: request, baseDir });
    if (copied) await bundle.copyInput(requestPath(baseDir, copied.from), copied.to);
    return bundle;
  }

  async summarizeResult(bundle: Bundle, outcome: RunOutcome): Promise<TaskSummary> {
    const stats = await readJson(bundle.path(`artifacts/${COLLECTION_STATS}`));
    const rows = numberField(stats, 'rows');
    const dropped = numberField(stats, 'dropped');
    const columns = numberField(stats, 'columns');
    const output = `artifacts/${String(bundle.spec.metadata['output'] ?? '')}`;
    const headline =
      outcome.status === 'succeeded' && rows !== null
        ? `collected ${rows} rows x ${columns ?? '?'} columns into ${output}${dropped ? ` (dropped ${dropped} bad rows)` : ''}`
        : `${outcomePrefix(outcome)}collection ${rows !== null ? `wrote ${rows} rows` : 'wrote no table'}`;
    return { headline, metrics: { rows, columns, dropped }, highlights: existingPaths(bundle, [output, `artifacts/${COLLECTION_STATS}`, `artifacts/${COLLECTION_LOG}`]) };
  }
}
