/**
 * A real S3-protocol server for tests: moto in server mode (`.venv/bin/moto_server`, installed by
 * scripts/setup.sh from requirements-test.txt) on 127.0.0.1 and a free port, in its own process
 * group, ended by that group's id only. Its state lives in memory and goes with it.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { resolve } from 'node:path';
import { freePort } from './ports';
import { processGone } from './processes';
import { until } from './wait';

const MOTO_SERVER = resolve(__dirname, '../../.venv/bin/moto_server');

export interface S3Server {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** What a process needs to use the server: ORBIT_S3_ENDPOINT, AWS_ACCESS_KEY_ID/SECRET (moto takes any), AWS_REGION. */
  env: Record<string, string>;
  createBucket(name: string): Promise<void>;
  /** Ends the server (SIGTERM, then SIGKILL after 5 s); safe to call twice. */
  stop(): Promise<void>;
  /** What the server printed (last 64 KiB). */
  log(): string;
}

/** Starts one moto server and waits until it answers HTTP. */
export async function startS3Server(): Promise<S3Server> {
  if (!existsSync(MOTO_SERVER)) throw new Error(`${MOTO_SERVER} is missing: run scripts/setup.sh (it installs requirements-test.txt)`);
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  let output = '';
  const proc = spawn(MOTO_SERVER, ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const keep = (b: Buffer): void => void (output = (output + b.toString('utf8')).slice(-65536));
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const pid = proc.pid;
  if (pid === undefined) throw new Error(`could not start ${MOTO_SERVER}`);

  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-pid, sig);
    } catch {
      // already gone
    }
  };
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    signal('SIGTERM');
    await Promise.race([exited, new Promise<void>((r) => setTimeout(r, 5000).unref())]);
    if (!processGone(pid)) signal('SIGKILL');
    await exited;
  };

  try {
    await Promise.race([
      until(`moto_server on ${endpoint}`, async () => (await httpStatus('GET', `${endpoint}/`)) === 200, 30_000, 100),
      exited.then(() => Promise.reject(new Error(`moto_server exited early:\n${output}`))),
    ]);
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    endpoint,
    env: { ORBIT_S3_ENDPOINT: endpoint, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1' },
    // moto does not check signatures, so a plain path-style PUT creates the bucket.
    createBucket: async (name) => {
      const code = await httpStatus('PUT', `${endpoint}/${encodeURIComponent(name)}`);
      if (code !== 200) throw new Error(`moto: creating bucket ${name} answered ${code}`);
    },
    stop,
    log: () => output,
  };
}

/** The status of one plain HTTP request with no body. */
function httpStatus(method: string, url: string): Promise<number> {
  return new Promise((ok, fail) => {
    const req = request(url, { method, timeout: 5000 }, (res) => {
      res.resume();
      res.once('end', () => ok(res.statusCode ?? 0));
    });
    req.once('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.once('error', fail);
    req.end();
  });
}
