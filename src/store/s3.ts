/**
 * The S3 store: `s3://bucket/prefix` on AWS or any S3-compatible endpoint (MinIO, Ceph, moto...).
 * Keys live under `prefix/`. Settings come from the environment (ORBIT_S3_ENDPOINT, ORBIT_S3_REGION,
 * ORBIT_S3_PATH_STYLE); credentials only from the AWS SDK's default chain (AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared files...), never from the URL, and no message
 * here ever quotes them. Every failure becomes a one-line StoreError naming the store and the object.
 */
import { createReadStream } from 'node:fs';
import { readFile, stat as statFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { DeleteObjectsCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { StoreError, type BundleStore, type ObjectInfo } from './store';

// Orbit runs on node >= 20 with this SDK pinned; the SDK's advisory about its future versions on node
// < 22 would print nine lines on stderr (before every one-line error) the first time a client is made.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** Files from this size on go up in parts of this size (S3's minimum part is 5 MiB). */
const PART_SIZE = 16 * 1024 * 1024;
const DELETE_BATCH = 1000; // DeleteObjects' limit
const CREDENTIAL_ERRORS = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'ExpiredToken', 'InvalidToken', 'TokenRefreshRequired']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED']);

/** `prefix`: '' or without leading or trailing '/'; `endpoint`: e.g. http://127.0.0.1:9000, undefined for AWS. */
export interface S3Settings {
  bucket: string;
  prefix: string;
  region: string;
  endpoint?: string;
  forcePathStyle: boolean;
}

/** The store for `s3://bucket/prefix`, set up from `env`'s ORBIT_S3_* and region variables. */
export function s3StoreFrom(url: string, env: NodeJS.ProcessEnv = process.env): S3Store {
  // The URL is not echoed back while unparsed: it could hold a secret someone pasted into it.
  const m = /^s3:\/\/([^/?#]*)\/?([^?#]*)$/.exec(url);
  if (!m) throw new StoreError('bad-url', 'store URL must look like s3://bucket/prefix');
  const [, bucket = '', rawPrefix = ''] = m;
  if (bucket.includes('@') || bucket.includes(':')) {
    throw new StoreError('bad-url', 'store URL must not hold credentials or a port (s3://bucket/prefix; use ORBIT_S3_ENDPOINT and AWS_* variables)');
  }
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new StoreError('bad-url', `store s3://${bucket}: ${bucket ? `'${bucket}' is not a valid bucket name` : 'no bucket named'} (s3://bucket/prefix)`);
  }
  const prefix = rawPrefix.replace(/^\/+|\/+$/g, '');
  const endpoint = env.ORBIT_S3_ENDPOINT?.trim() || undefined;
  const pathStyle = env.ORBIT_S3_PATH_STYLE?.trim().toLowerCase();
  const region = env.ORBIT_S3_REGION || env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1';
  // Path-style (http://host/bucket/key) when asked, or by default for a custom endpoint.
  const forcePathStyle = pathStyle === '1' || pathStyle === 'true' ? true : pathStyle === '0' || pathStyle === 'false' ? false : endpoint !== undefined;
  // The pinned SDK supports this Node (20); its notice that later releases will not would be printed
  // in every CLI command's output. The pin in package.json is where that upgrade is decided.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new S3Store({ bucket, prefix, endpoint, region, forcePathStyle });
}

export class S3Store implements BundleStore {
  readonly url: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  /** What every key is stored under: '' or 'prefix/'. */
  private readonly root: string;

  constructor(private readonly settings: S3Settings) {
    this.bucket = settings.bucket;
    this.root = settings.prefix ? `${settings.prefix}/` : '';
    this.url = `s3://${settings.bucket}${settings.prefix ? `/${settings.prefix}` : ''}`;
    this.client = new S3Client({
      region: settings.region,
      endpoint: settings.endpoint,
      forcePathStyle: settings.forcePathStyle,
      // The SDK's default CRC checksums on every request are rejected by many S3-compatible servers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // An endpoint nobody answers fails in seconds: 3 attempts, 3 s each to connect. A large body may
      // take long, so there is no cap on a request's total time (in this SDK that is `requestTimeout`,
      // which only warns by default); a socket with no progress for a minute fails (and is retried).
      maxAttempts: 3,
      requestHandler: new NodeHttpHandler({ connectionTimeout: 3000, socketTimeout: 60_000 }),
    });
  }

  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      // HeadBucket has no body, so a missing bucket is a bare 404 (NotFound), not NoSuchBucket.
      if (status(err) === 404) throw new StoreError('no-bucket', `store ${this.url}: bucket '${this.bucket}' does not exist`, { cause: err });
      throw this.fail(err);
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.root + key }));
      return { key, size: r.ContentLength ?? 0, lastModified: r.LastModified ?? new Date(0) };
    } catch (err) {
      // Also a bare 404 when the bucket is missing; check() is where that is told apart.
      if (status(err) === 404) return undefined;
      throw this.fail(err, key);
    }
  }

  async putFile(key: string, path: string): Promise<void> {
    const { size } = await statFile(path); // a missing local file is the caller's error, not the store's
    try {
      if (size < PART_SIZE) {
        // Small: one PUT of the bytes in memory (the SDK can retry a buffer, not a consumed stream).
        await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.root + key, Body: await readFile(path) }));
        return;
      }
      // Large: multipart from a stream. The object appears only when the upload completes; a failed
      // upload is aborted (its parts deleted) by Upload itself.
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: this.root + key, Body: createReadStream(path) },
        partSize: PART_SIZE,
        queueSize: 4,
      });
      await upload.done();
    } catch (err) {
      throw this.fail(err, key);
    }
  }

  async putBytes(key: string, data: Buffer | string): Promise<void> {
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.root + key, Body: data }));
    } catch (err) {
      throw this.fail(err, key);
    }
  }

  async createBytes(key: string, data: Buffer | string): Promise<boolean> {
    try {
      // A conditional write: S3 (and moto) refuse it atomically when the key exists.
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.root + key, Body: data, IfNoneMatch: '*' }));
      return true;
    } catch (err) {
      // 412: it existed. 409: another conditional write to the same key was in flight; it won.
      const name = err instanceof S3ServiceException ? err.name : '';
      if (status(err) === 412 || name === 'PreconditionFailed' || status(err) === 409 || name === 'ConditionalRequestConflict') return false;
      throw this.fail(err, key);
    }
  }

  async getBytes(key: string): Promise<Buffer | undefined> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.root + key }));
      if (!r.Body) return Buffer.alloc(0);
      const bytes = await r.Body.transformToByteArray();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (err) {
      if (isMissingObject(err)) return undefined;
      throw this.fail(err, key);
    }
  }

  async getStream(key: string): Promise<Readable> {
    let body: unknown;
    try {
      body = (await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.root + key }))).Body;
    } catch (err) {
      throw this.fail(err, key);
    }
    // Under Node the SDK hands back the HTTP response itself; errors after this point come from the
    // stream (a dropped connection), not from here.
    if (body instanceof Readable) return body;
    if (body === undefined) return Readable.from([]);
    throw new StoreError('corrupt', `store ${this.url} (object '${key}'): the S3 client returned a body that is not a Node stream`);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.root + prefix, ContinuationToken: token }));
      } catch (err) {
        throw this.fail(err, prefix, 'objects under');
      }
      for (const o of page.Contents ?? []) {
        if (!o.Key?.startsWith(this.root)) continue;
        yield { key: o.Key.slice(this.root.length), size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(keys: string[]): Promise<void> {
    for (let at = 0; at < keys.length; at += DELETE_BATCH) {
      const batch = keys.slice(at, at + DELETE_BATCH);
      let errors;
      try {
        const r = await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((k) => ({ Key: this.root + k })), Quiet: true } }),
        );
        errors = r.Errors ?? [];
      } catch (err) {
        throw this.fail(err, batch[0] ?? '', batch.length > 1 ? `${batch.length} objects from` : 'object');
      }
      // A batch answers 200 even when some deletes failed: they are listed one by one.
      const [first] = errors;
      if (first) {
        const code = first.Code ?? 'Error';
        const more = errors.length > 1 ? ` and ${errors.length - 1} more` : '';
        const at = `store ${this.url} (object '${first.Key?.slice(this.root.length) ?? '?'}')`;
        throw new StoreError(CREDENTIAL_ERRORS.has(code) ? 'credentials' : 'unreachable', `${at}: delete failed (${code}${more})`);
      }
    }
  }

  /** The StoreError for a failed call on `key` (or a plain Error when the failure fits no StoreProblem). */
  private fail(err: unknown, key?: string, what = 'object'): Error {
    if (err instanceof StoreError) return err;
    const at = `store ${this.url}${key !== undefined ? ` (${what} '${key}')` : ''}`;
    const name = err instanceof Error ? err.name : '';
    if (name === 'CredentialsProviderError') {
      return new StoreError('credentials', `${at}: no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)`, { cause: err });
    }
    if (err instanceof S3ServiceException) {
      const code = status(err);
      if (CREDENTIAL_ERRORS.has(err.name) || code === 403) {
        return new StoreError('credentials', `${at}: credentials refused (${err.name}); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE`, { cause: err });
      }
      if (err.name === 'NoSuchBucket') return new StoreError('no-bucket', `${at}: bucket '${this.bucket}' does not exist`, { cause: err });
      if (isMissingObject(err)) return new StoreError('missing', `${at}: no such object`, { cause: err });
      if ((code !== undefined && code >= 500) || err.name === 'RequestTimeout' || err.name === 'SlowDown') {
        return new StoreError('unreachable', `${at}: the endpoint answered ${code} (${err.name}); try again later`, { cause: err });
      }
      if (err.name === 'BadDigest' || err.name === 'InvalidDigest') return new StoreError('corrupt', `${at}: the bytes were damaged in transit (${err.name})`, { cause: err });
      return new Error(`${at}: ${err.name}: ${err.message.split('\n')[0]}`, { cause: err });
    }
    const net = networkCode(err);
    if (net) {
      const endpoint = this.settings.endpoint ? this.settings.endpoint.replace(/\/\/[^/@]*@/, '//') : `https://s3.${this.settings.region}.amazonaws.com`;
      const hint = this.settings.endpoint ? 'check ORBIT_S3_ENDPOINT' : 'check the network and ORBIT_S3_REGION';
      return new StoreError('unreachable', `${at}: cannot reach endpoint ${endpoint} (${net}); ${hint}`, { cause: err });
    }
    return new Error(`${at}: ${name || 'Error'}: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`, { cause: err });
  }
}

/** The HTTP status of an SDK service error, if it got that far. */
function status(err: unknown): number | undefined {
  return err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
}

/** NoSuchKey, or a 404 that is not about the bucket. */
function isMissingObject(err: unknown): boolean {
  return err instanceof S3ServiceException && (err.name === 'NoSuchKey' || (status(err) === 404 && err.name !== 'NoSuchBucket'));
}

/** ECONNREFUSED and kin, or 'timeout', when `err` (or what it wraps) is a network failure; else undefined. */
function networkCode(err: unknown, depth = 0): string | undefined {
  if (!(err instanceof Error) || depth > 3) return undefined;
  if ('code' in err && typeof err.code === 'string' && NETWORK_CODES.has(err.code)) return err.code;
  if (err.name === 'TimeoutError') return 'timeout';
  // Node's happy-eyeballs connect (localhost = ::1 and 127.0.0.1) fails with an AggregateError.
  const inner = err instanceof AggregateError ? [...err.errors, err.cause] : [err.cause];
  return inner.map((e: unknown) => networkCode(e, depth + 1)).find((c) => c !== undefined);
}
