/**
 * The collection request (YAML or JSON, camelCase). Node-free. Example:
 *
 *   source: { kind: synthetic, rows: 500, features: 4, seed: 7 }
 *   output: data/collected.csv          # under artifacts/
 *
 * Sources: `synthetic` generates rows (x1..xF uniform in [-2, 2], y a seeded linear function plus
 * sin(x1) plus noise); `file` copies a local CSV table (relative to the request file), dropping rows
 * that are not all numbers, keeping at most `limit` rows. The output is a CSV table with a header.
 */
import { z } from 'zod';
import { artifactPath, requiredString, runOptionsShape, strictFields, wholeNumber } from '../common-schema';

export const COLLECTION_LOG = 'collection.log';
export const COLLECTION_STATS = 'collection.json';

const SOURCE_HINT = 'a mapping such as {kind: synthetic, rows: 500, features: 4, seed: 7} or {kind: file, path: data/raw.csv}';

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

export const sourceSchema = z.discriminatedUnion('kind', [syntheticSourceSchema, fileSourceSchema], {
  error: (iss) => {
    if (iss.input === undefined) return `source is required: ${SOURCE_HINT}`;
    if (iss.code === 'invalid_union') return 'source.kind must be "synthetic" (generate rows) or "file" (copy a local CSV)';
    if (iss.code === 'invalid_type') return `source must be ${SOURCE_HINT}`;
    return undefined;
  },
});
export type CollectionSource = z.infer<typeof sourceSchema>;

export const collectionRequestSchema = strictFields(
  {
    source: sourceSchema,
    /** The CSV file the job writes, under artifacts/. */
    output: artifactPath('output', 'the CSV file to write under artifacts/, e.g. data/collected.csv', [COLLECTION_LOG, COLLECTION_STATS]).refine(
      (p) => p === '' || p.toLowerCase().endsWith('.csv'),
      { message: 'output must name a .csv file under artifacts/, e.g. data/collected.csv' },
    ),
    ...runOptionsShape,
  },
  'a collection request',
);
export type CollectionRequest = z.infer<typeof collectionRequestSchema>;
