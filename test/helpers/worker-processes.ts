/** `bin/orbit worker` processes for fault tests: each in its own process group, logged to a file, killed with SIGKILL. */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';

const ORBIT = resolve(__dirname, '../../bin/orbit');

export class WorkerProcesses {
  private readonly running = new Set<ChildProcess>();

  /** `env()` is each worker's environment (ORBIT_HOME, ORBIT_TASK_QUEUE, ORBIT_HOSTS, the server...); logs go under `logDir`. */
  constructor(
    private readonly logDir: string,
    private readonly env: () => NodeJS.ProcessEnv,
  ) {}

  /** Starts a worker as its own process group, so a test can kill whatever it started. */
  async start(extraEnv: Record<string, string> = {}, logName = 'worker'): Promise<ChildProcess> {
    await mkdir(this.logDir, { recursive: true });
    const log = openSync(join(this.logDir, `${logName}-${Date.now()}.log`), 'a');
    const proc = spawn(ORBIT, ['worker'], { env: { ...this.env(), ...extraEnv }, stdio: ['ignore', log, log], detached: true });
    this.running.add(proc);
    proc.once('exit', () => this.running.delete(proc));
    return proc;
  }

  /** SIGKILL to the worker's process group; resolves once it exited. */
  kill(proc: ChildProcess): Promise<void> {
    return new Promise((r) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return r();
      proc.once('exit', () => r());
      process.kill(-proc.pid!, 'SIGKILL');
    });
  }

  killAll(): Promise<void> {
    return Promise.all([...this.running].map((w) => this.kill(w))).then(() => undefined);
  }
}
