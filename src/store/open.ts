/**
 * Which store Orbit uses: ORBIT_STORE (`file://DIR` or `s3://bucket/prefix`), default
 * `file://<ORBIT_HOME>/store`. The S3 client is loaded only when an s3:// store is opened.
 */
import { isAbsolute, join, resolve } from 'node:path';
import { orbitHome } from '../config';
import { FileStore } from './file';
import { StoreError, type BundleStore } from './store';

/** The store URL this process uses (ORBIT_STORE, else file://<ORBIT_HOME>/store). */
export function storeUrl(env: NodeJS.ProcessEnv = process.env): string {
  const set = env.ORBIT_STORE?.trim();
  if (!set) return `file://${join(orbitHome(env), 'store')}`;
  return normalizeStoreUrl(set);
}

/** `file:///abs`, `file://rel` and a bare path become `file:///abs`; `s3://` is kept; anything else is refused. */
export function normalizeStoreUrl(url: string): string {
  if (url.startsWith('s3://')) {
    if (!/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/.test(url)) {
      throw new StoreError('bad-url', `ORBIT_STORE=${url}: an S3 store is s3://bucket[/prefix] with a valid bucket name`);
    }
    return url.replace(/\/+$/, '');
  }
  if (url.startsWith('file://')) {
    const path = url.slice('file://'.length);
    return `file://${isAbsolute(path) ? resolve(path) : resolve(path)}`;
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) throw new StoreError('bad-url', `ORBIT_STORE=${url}: the store is file://DIR or s3://bucket/prefix`);
  return `file://${resolve(url)}`;
}

const opened = new Map<string, Promise<BundleStore>>();

/**
 * The store behind `url`, opened once per process (by URL). ORBIT_S3_* settings come from `env`;
 * credentials come from the AWS SDK's own chain (this process's AWS_* variables, profile files,
 * instance role), never from the URL.
 */
export function openStore(url: string, env: NodeJS.ProcessEnv = process.env): Promise<BundleStore> {
  const key = normalizeStoreUrl(url);
  let store = opened.get(key);
  if (!store) {
    store = key.startsWith('s3://')
      ? import('./s3').then((m) => m.s3StoreFrom(key, env))
      : Promise.resolve(new FileStore(key.slice('file://'.length)));
    opened.set(key, store);
    store.catch(() => opened.delete(key));
  }
  return store;
}

/** The store this process is configured for. */
export function configuredStore(env: NodeJS.ProcessEnv = process.env): Promise<BundleStore> {
  return openStore(storeUrl(env), env);
}
