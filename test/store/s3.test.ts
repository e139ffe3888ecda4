import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { s3StoreFrom } from '../../src/store/s3';
import { StoreError, type ObjectInfo, type StoreProblem } from '../../src/store/store';
import { closedPort } from '../helpers/ports';
import { startS3Server, type S3Server } from '../helpers/s3';
import { useTempDirs } from '../helpers/use-temp-dirs';

// The SDK's credential chain reads process.env (and the shared files it names) itself, so each test
// sets those there; `env` passed to s3StoreFrom carries the ORBIT_S3_* settings.
const CREDENTIAL_VARS = [
  'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_DEFAULT_PROFILE',
  'AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'AWS_CONTAINER_CREDENTIALS_FULL_URI',
];

let server: S3Server;
const BUCKET = 'orbit-test';
const newDir = useTempDirs('orbit-s3-');

beforeAll(async () => {
  server = await startS3Server();
  await server.createBucket(BUCKET);
});
afterAll(async () => {
  await server?.stop();
});

/** Credentials from a clean slate: the developer's own ~/.aws files and variables stay out. */
async function isolateCredentials(keys: Record<string, string> = {}): Promise<void> {
  const dir = await newDir();
  await Promise.all([writeFile(join(dir, 'credentials'), ''), writeFile(join(dir, 'config'), '')]);
  for (const name of CREDENTIAL_VARS) vi.stubEnv(name, undefined);
  vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', join(dir, 'credentials'));
  vi.stubEnv('AWS_CONFIG_FILE', join(dir, 'config'));
  vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
  for (const [name, value] of Object.entries(keys)) vi.stubEnv(name, value);
}

async function storeError(promise: Promise<unknown>): Promise<StoreError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof StoreError)) throw new Error(`expected a StoreError, got ${String(err)}`);
  return err;
}

async function collect(it: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of it) out.push(o);
  return out;
}

async function sha256(stream: Readable): Promise<string> {
  const h = createHash('sha256');
  await pipeline(stream, h);
  return h.digest('hex');
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('S3Store against moto', () => {
  beforeEach(async () => {
    await isolateCredentials({ AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
  });
  const store = (path = 'runs') => s3StoreFrom(`s3://${BUCKET}/${path}`, server.env);

  it('parses the URL and checks the bucket', async () => {
    const s = s3StoreFrom(`s3://${BUCKET}/a/b/`, server.env);
    expect(s.url).toBe(`s3://${BUCKET}/a/b`);
    expect(s3StoreFrom(`s3://${BUCKET}`, server.env).url).toBe(`s3://${BUCKET}`);
    await s.check();
  });

  it('puts, gets, stats, lists under a prefix and deletes', async () => {
    const s = store('round-trip');
    const other = store('round-trip-other');
    await s.putBytes('m/one.json', '{"a":1}');
    await s.putBytes('m/two.bin', Buffer.from([0, 1, 2, 255]));
    await s.putBytes('r/three', 'x');
    await other.putBytes('m/not-mine', 'y');

    expect((await s.getBytes('m/one.json'))?.toString()).toBe('{"a":1}');
    expect(await s.getBytes('m/two.bin')).toEqual(Buffer.from([0, 1, 2, 255]));
    const info = await s.stat('m/two.bin');
    expect(info?.key).toBe('m/two.bin');
    expect(info?.size).toBe(4);
    expect(Date.now() - (info?.lastModified.getTime() ?? 0)).toBeLessThan(60_000);
    expect(await s.stat('m/none')).toBeUndefined();

    expect((await collect(s.list('m/'))).map((o) => [o.key, o.size])).toEqual([['m/one.json', 7], ['m/two.bin', 4]]);
    expect((await collect(s.list(''))).map((o) => o.key)).toEqual(['m/one.json', 'm/two.bin', 'r/three']);
    expect(await sha256(await s.getStream('r/three'))).toBe(createHash('sha256').update('x').digest('hex'));

    await s.delete(['m/one.json', 'r/three', 'never-was']);
    expect((await collect(s.list(''))).map((o) => o.key)).toEqual(['m/two.bin']);
    expect(await s.getBytes('m/one.json')).toBeUndefined();
    expect(await other.getBytes('m/not-mine')).toBeDefined();
    await s.delete([]);
  });

  it('lists and deletes past one page (1000 keys)', async () => {
    const s = store('many');
    const keys = Array.from({ length: 1005 }, (_, i) => `k/${String(i).padStart(4, '0')}`);
    for (let at = 0; at < keys.length; at += 25) await Promise.all(keys.slice(at, at + 25).map((k) => s.putBytes(k, k)));
    const listed = await collect(s.list('k/'));
    expect(listed.map((o) => o.key)).toEqual(keys);
    await s.delete(keys);
    expect(await collect(s.list(''))).toEqual([]);
  });

  it('putFile round-trips a 40 MiB file byte-exact in parts, and a small one in one PUT', async () => {
    const dir = await newDir();
    const big = randomBytes(40 * 1024 * 1024);
    await writeFile(join(dir, 'big'), big);
    await writeFile(join(dir, 'small'), 'small file');
    const s = store('files');
    await s.putFile('blobs/big', join(dir, 'big'));
    await s.putFile('blobs/small', join(dir, 'small'));

    expect(server.log()).toMatch(/POST \/orbit-test\/files\/blobs\/big\?uploads/);
    expect((await s.stat('blobs/big'))?.size).toBe(big.length);
    expect(await sha256(await s.getStream('blobs/big'))).toBe(createHash('sha256').update(big).digest('hex'));
    expect((await s.getBytes('blobs/small'))?.toString()).toBe('small file');
  });

  it('createBytes writes only once', async () => {
    const s = store('create');
    expect(await s.createBytes('lock', 'first')).toBe(true);
    expect(await s.createBytes('lock', 'second')).toBe(false);
    expect((await s.getBytes('lock'))?.toString()).toBe('first');
  });

  it('a missing key: getBytes is undefined, getStream throws missing naming the key', async () => {
    const s = store('missing');
    expect(await s.getBytes('nothing/here')).toBeUndefined();
    const err = await storeError(s.getStream('nothing/here'));
    expect(err.problem).toBe<StoreProblem>('missing');
    expect(err.message).toContain(`s3://${BUCKET}/missing`);
    expect(err.message).toContain('nothing/here');
    expect(err.retryable).toBe(false);
  });

  it('a bucket that does not exist is no-bucket, naming it', async () => {
    const s = s3StoreFrom('s3://no-such-bucket-here/p', server.env);
    // One call at a time: a call made before the loop awaits it could reject unhandled meanwhile.
    for (const call of [() => s.check(), () => s.putBytes('k', 'v'), () => s.getBytes('k')]) {
      const err = await storeError(call());
      expect(err.problem).toBe<StoreProblem>('no-bucket');
      expect(err.message).toContain("bucket 'no-such-bucket-here'");
    }
  });
});

describe('S3Store errors', () => {
  it('a bad URL is bad-url and never echoes what it held', async () => {
    for (const url of ['s3://', 's3:///prefix', 'file:///x', 's3://AKIAXXXX:hunter2@bucket/p', 's3://B_d/p']) {
      const err = await storeError(Promise.resolve().then(() => s3StoreFrom(url, {})));
      expect(err.problem, url).toBe<StoreProblem>('bad-url');
      expect(err.message).not.toContain('hunter2');
    }
  });

  it('an endpoint nobody listens on is unreachable within 15 s, naming the store and endpoint', async () => {
    await isolateCredentials({ AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    const s = s3StoreFrom(`s3://${BUCKET}/p`, { ...server.env, ORBIT_S3_ENDPOINT: endpoint });
    const started = Date.now();
    const err = await storeError(s.check());
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(err.problem).toBe<StoreProblem>('unreachable');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain(`store s3://${BUCKET}/p`);
    expect(err.message).toContain(`cannot reach endpoint ${endpoint} (ECONNREFUSED); check ORBIT_S3_ENDPOINT`);
    expect((await storeError(s.getBytes('a/key'))).message).toContain("'a/key'");
  });

  it('no credentials anywhere is credentials, and says which variables to set', async () => {
    await isolateCredentials();
    const s = s3StoreFrom(`s3://${BUCKET}/p`, server.env);
    const err = await storeError(s.check());
    expect(err.problem).toBe<StoreProblem>('credentials');
    expect(err.message).toBe(`store s3://${BUCKET}/p: no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)`);
    const put = await storeError(s.putBytes('x/y', 'z'));
    expect(put.problem).toBe<StoreProblem>('credentials');
    expect(put.message).toContain("'x/y'");
  });
});
