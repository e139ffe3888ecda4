/**
 * The home of a run's bytes, apart from any one machine: a key/value object store. Two
 * implementations, chosen by one URL (ORBIT_STORE): `file://DIR` (./file.ts: one machine or a shared
 * file system) and `s3://bucket/prefix` (./s3.ts: any S3-compatible endpoint). What is stored and
 * under which keys (content-addressed blobs, bundle manifests, run records) is ./cas.ts; a store
 * knows only keys and bytes. Credentials never appear in a store's URL or in what it reports.
 */
import type { Readable } from 'node:stream';

export interface ObjectInfo {
  /** The key, relative to the store's root (no leading '/'). */
  key: string;
  size: number;
  lastModified: Date;
}

export interface BundleStore {
  /** The store as the user named it (`file:///abs/dir`, `s3://bucket/prefix`); never holds a secret. */
  readonly url: string;
  /** Proves the store answers and the credentials work (a bucket that does not exist fails here). */
  check(): Promise<void>;
  /** The object's size and time, or undefined when there is none. */
  stat(key: string): Promise<ObjectInfo | undefined>;
  /** Writes a local file under `key` (streamed; large files in parts). Readers never see a partial object. */
  putFile(key: string, path: string): Promise<void>;
  putBytes(key: string, data: Buffer | string): Promise<void>;
  /** Writes only when `key` does not exist yet; false when it did (nothing written). */
  createBytes(key: string, data: Buffer | string): Promise<boolean>;
  /** The whole object, or undefined when there is none. For small objects (manifests, records). */
  getBytes(key: string): Promise<Buffer | undefined>;
  /** The object as a stream; throws StoreError (missing) when there is none. */
  getStream(key: string): Promise<Readable>;
  /** Every object whose key starts with `prefix`, in key order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  delete(keys: string[]): Promise<void>;
}

/** Why a store call failed, for the one-line message and the retry policy. */
export type StoreProblem = 'unreachable' | 'credentials' | 'no-bucket' | 'missing' | 'corrupt' | 'bad-url';

export const STORE_ERROR = 'StoreError';

/** A store call that failed; the message names the store (its URL) and the object. */
export class StoreError extends Error {
  constructor(
    readonly problem: StoreProblem,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = STORE_ERROR;
  }

  /** Unreachable is worth retrying (a network blip); the rest need a person. */
  get retryable(): boolean {
    return this.problem === 'unreachable';
  }
}
