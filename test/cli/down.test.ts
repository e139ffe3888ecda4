import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CliError } from '../../src/cli/cli-error';
import { downCommand } from '../../src/cli/down';
import { defaultDataDir, DevServerStartError, ensureDevServer, portOpen, stopDevServer, type DevServer } from '../../temporal/dev-server';
import { freePort } from '../helpers/ports';
import { useTempDirs } from '../helpers/use-temp-dirs';

const tempDir = useTempDirs('orbit-down-');
let server: DevServer | undefined;
let listener: Server | undefined;
afterEach(async () => {
  server?.kill(); // a test that failed half-way leaves no server behind
  server = undefined;
  await new Promise<void>((done) => (listener ? listener.close(() => done()) : done()));
  listener = undefined;
});

/** Running: /proc has it and it is no zombie (the test process, its parent, reaps it a moment later). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function capture() {
  const out: string[] = [];
  const note: string[] = [];
  return { io: { out: (s: string) => out.push(s), note: (s: string) => note.push(s) }, out, note };
}

/** A real dev server on free ports, its data under `home`/temporal as `orbit up` would put it there. */
async function startUnder(home: string): Promise<{ server: DevServer; port: number; dataDir: string }> {
  const port = await freePort();
  const dataDir = defaultDataDir({ ORBIT_HOME: home });
  server = await ensureDevServer({ port, uiPort: await freePort(), dataDir });
  expect(server.started).toBe(true);
  return { server, port, dataDir };
}

describe('the dev server folder', () => {
  it('is $ORBIT_HOME/temporal', () => {
    expect(defaultDataDir({ ORBIT_HOME: '/srv/orbit' })).toBe('/srv/orbit/temporal');
    expect(defaultDataDir({ HOME: '/home/x' })).toMatch(/\/\.orbit\/temporal$/);
  });
});

describe('a dev server that cannot start', () => {
  it('fails naming the cause from its log, and says whether a port was taken', async () => {
    const uiPort = await freePort();
    listener = createServer();
    await new Promise<void>((done) => listener!.listen(uiPort, '127.0.0.1', done));
    const dataDir = join(await tempDir(), 'temporal');
    const failure = await ensureDevServer({ port: await freePort(), uiPort, dataDir }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(DevServerStartError);
    expect((failure as DevServerStartError).portTaken).toBe(true);
    expect((failure as Error).message).toMatch(new RegExp(`exited with 1: can't set UI port ${uiPort}: .*address already in use; see ${dataDir}/server\\.log$`));
  });
});

describe('stopDevServer and orbit down', () => {
  // One real server (starting one takes seconds): asked for another port it is left alone; orbit down,
  // which is stopDevServer with ORBIT_HOME's folder and port, stops it; then there is none.
  it('stop the server of the data dir, for real: SIGTERM, exit, pid file removed; then find none', async () => {
    const home = await tempDir();
    const { server: s, port, dataDir } = await startUnder(home);
    const pid = s.pid!;
    expect(existsSync(join(dataDir, 'temporal.sqlite'))).toBe(true);

    expect(await stopDevServer({ port: await freePort(), dataDir })).toEqual({ state: 'not-running', otherPort: port });
    expect(alive(pid)).toBe(true);
    expect(existsSync(join(dataDir, 'server.pid'))).toBe(true);

    const { io, out, note } = capture();
    expect(await downCommand(io, { ORBIT_HOME: home, ORBIT_TEMPORAL_PORT: String(port) })).toBe(0);
    expect(out).toEqual([`stopped Temporal dev server (pid ${pid})`]); // no "killed": SIGTERM was enough
    expect(note).toEqual([]);
    expect(alive(pid)).toBe(false);
    expect(await portOpen(port)).toBe(false);
    expect(existsSync(join(dataDir, 'server.pid'))).toBe(false);
    expect(existsSync(join(dataDir, 'temporal.sqlite'))).toBe(true); // the runs stay for the next orbit up

    expect(await stopDevServer({ port, dataDir })).toEqual({ state: 'not-running' });
  });

  it.each([
    ['a process that is not a dev server (this test)', () => String(process.pid)],
    ['no pid at all', () => 'garbage'],
  ])('removes a stale pid file naming %s, and signals nothing', async (_what, content) => {
    const dataDir = join(await tempDir(), 'temporal');
    await mkdir(dataDir, { recursive: true });
    await writeFile(join(dataDir, 'server.pid'), `${content()}\n`);
    expect(await stopDevServer({ dataDir })).toEqual({ state: 'not-running' });
    expect(existsSync(join(dataDir, 'server.pid'))).toBe(false);
  });
});

describe('orbit down', () => {
  it('says when none runs, and leaves alone what else listens on the port', async () => {
    const port = await freePort();
    listener = createServer();
    await new Promise<void>((done) => listener!.listen(port, '127.0.0.1', done));
    const home = await tempDir();
    const { io, out, note } = capture();
    expect(await downCommand(io, { ORBIT_HOME: home, ORBIT_TEMPORAL_PORT: String(port) })).toBe(0);
    expect(out).toEqual(['no embedded dev server is running']);
    expect(note).toEqual([`orbit: something else listens on port ${port}: not a dev server started from ${join(home, 'temporal')}, so it was left alone`]);
  });

  it('refuses in one line, exit 2, when an existing cluster is configured', async () => {
    const { io, out } = capture();
    const refusal = await downCommand(io, { TEMPORAL_ADDRESS: 'temporal.example:7233' }).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(CliError);
    expect(refusal).toMatchObject({ exitCode: 2 });
    expect((refusal as Error).message).toContain('temporal.example:7233');
    expect((refusal as Error).message).not.toContain('\n');
    expect(out).toEqual([]);
  });
});
