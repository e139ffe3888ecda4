/**
 * The collection request (YAML or JSON, camelCase). Node-free. Examples:
 *
 *   source: { kind: synthetic, rows: 500, features: 4, seed: 7 }
 *   output: data/collected.csv          # under artifacts/
 *
 *   source: { kind: rollouts, checkpoint: runs/lm/artifacts/checkpoints/step-300, prompts: data/text/prompts.txt }
 *   output: rollouts                    # a folder under artifacts/: shard-00000.jsonl, ...
 *
 * Sources: `synthetic` generates rows (x1..xF uniform in [-2, 2], y a seeded linear function plus
 * sin(x1) plus noise); `file` copies a local CSV table (relative to the request file), dropping rows
 * that are not all numbers, keeping at most `limit` rows; both write a CSV table with a header.
 * `rollouts` samples `samplesPerPrompt` continuations of each prompt (a line of the prompts file) from
 * a char-lm checkpoint and writes them as JSON-lines shards of `shardSize` records into a folder.
 */
import { z } from 'zod';
import { artifactPath, requiredString, runOptionsShape, strictFields, wholeNumber } from '../common-schema';

export const COLLECTION_LOG = 'collection.log';
export const COLLECTION_STATS = 'collection.json';

const SOURCE_HINT =
  'a mapping such as {kind: synthetic, rows: 500, features: 4, seed: 7}, {kind: file, path: data/raw.csv} or {kind: rollouts, checkpoint: <a char-lm step-N folder>, prompts: prompts.txt}';
const OUTPUT_HINT = 'the CSV file to write under artifacts/, e.g. data/collected.csv (for rollouts: a folder, e.g. rollouts)';

export const syntheticSourceSchema = strictFields(
  {
    kind: z.literal('synthetic'),
    rows: wholeNumber('source.rows', 1, 10_000_000),
    features: wholeNumber('source.features', 1, 1000).default(4),
    seed: wholeNumber('source.seed', 0, 2 ** 31 - 1).default(0),
    /** Standard deviation of the Gaussian noise added to y. */
    noise: z.number({ error: 'source.noise must be a number' }).min(0, 'source.noise must be 0 or more').max(1000, 'source.noise must be at most 1000').default(0.1),
  },
  'a synthetic source',
);

export const fileSourceSchema = strictFields(
  {
    kind: z.literal('file'),
    /** A local CSV table with a header row, copied into inputs/. */
    path: requiredString('source.path', 'the path of a CSV file with a header row, relative to the request file'),
    /** Keep at most this many rows. */
    limit: wholeNumber('source.limit', 1, 100_000_000).optional(),
  },
  'a file source',
);

export const rolloutsSourceSchema = strictFields(
  {
    kind: z.literal('rollouts'),
    /** A complete step-N folder of a char-lm training run, relative to the request file. */
    checkpoint: requiredString('source.checkpoint', "the step-N folder of a char-lm training run's checkpoint (holding model.pt and COMPLETE), relative to the request file"),
    /** A UTF-8 text file, one prompt per line (blank lines are skipped), relative to the request file. */
    prompts: requiredString('source.prompts', 'a UTF-8 text file with one prompt per line, relative to the request file'),
    /** Continuations sampled per prompt. */
    samplesPerPrompt: wholeNumber('source.samplesPerPrompt', 1, 10_000).default(4),
    /** Characters sampled after each prompt. */
    maxNewChars: wholeNumber('source.maxNewChars', 1, 100_000).default(200),
    /** Softmax temperature; 0 takes the most likely character every time (every sample the same). */
    temperature: z
      .number({ error: 'source.temperature must be a number from 0 to 5' })
      .min(0, 'source.temperature must be at least 0 (0: always the most likely character)')
      .max(5, 'source.temperature must be at most 5')
      .default(0.8),
    seed: wholeNumber('source.seed', 0, 2 ** 31 - 1).default(0),
    /** Records per shard file; the last shard may hold fewer. */
    shardSize: wholeNumber('source.shardSize', 1, 10_000_000).default(100),
  },
  'a rollouts source',
);

export const sourceSchema = z.discriminatedUnion('kind', [syntheticSourceSchema, fileSourceSchema, rolloutsSourceSchema], {
  error: (iss) => {
    if (iss.input === undefined) return `source is required: ${SOURCE_HINT}`;
    if (iss.code === 'invalid_union') return 'source.kind must be "synthetic" (generate rows), "file" (copy a local CSV) or "rollouts" (sample a char-lm checkpoint)';
    if (iss.code === 'invalid_type') return `source must be ${SOURCE_HINT}`;
    return undefined;
  },
});
export type CollectionSource = z.infer<typeof sourceSchema>;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export const collectionRequestSchema = strictFields(
  {
    source: sourceSchema,
    /** What the job writes, under artifacts/: a CSV file (synthetic, file), or a folder of shards (rollouts). */
    output: artifactPath('output', OUTPUT_HINT, [COLLECTION_LOG, COLLECTION_STATS]),
    ...runOptionsShape,
  },
  'a collection request',
).superRefine(
  (req, ctx) => {
    const output = typeof req.output === 'string' ? req.output.trim() : '';
    if (!output) return;
    const kind = isObject(req.source) ? req.source['kind'] : undefined;
    if (kind === 'rollouts') {
      if (/\.(csv|tsv|jsonl?|txt|parquet|gz|zip)$/i.test(output)) {
        ctx.addIssue({
          code: 'custom',
          path: ['output'],
          message: `output must name a folder under artifacts/ for source.kind rollouts, e.g. rollouts (it receives shard-00000.jsonl, shard-00001.jsonl, ...), not a file such as ${output}`,
        });
      }
    } else if (!output.toLowerCase().endsWith('.csv')) {
      ctx.addIssue({ code: 'custom', path: ['output'], message: 'output must name a .csv file under artifacts/, e.g. data/collected.csv' });
    }
  },
  // Also when other fields failed, so that one run reports every problem; the value may then be partial.
  { when: (payload) => isObject(payload.value) },
);
export type CollectionRequest = z.infer<typeof collectionRequestSchema>;
