import { ERROR } from '../common/errors';
import type { ShellHost } from './shell-host';

/** Thrown when a run names a host the worker does not know. */
export class UnknownHostError extends Error {
  constructor(
    readonly hostName: string,
    readonly known: string[],
  ) {
    super(`host "${hostName}" is not known to this worker; known hosts: ${known.join(', ') || '(none)'}`);
    this.name = ERROR.unknownHost;
  }
}

/** The hosts a worker can reach, by name. */
export class HostRegistry {
  private readonly hosts = new Map<string, ShellHost>();

  constructor(hosts: ShellHost[] = []) {
    for (const h of hosts) this.add(h);
  }

  add(host: ShellHost): this {
    if (this.hosts.has(host.name)) throw new Error(`host "${host.name}" is registered twice`);
    this.hosts.set(host.name, host);
    return this;
  }

  get(name: string): ShellHost {
    const host = this.hosts.get(name);
    if (!host) throw new UnknownHostError(name, this.names());
    return host;
  }

  names(): string[] {
    return [...this.hosts.keys()].sort();
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.hosts.values()].map((h) => h.transport.close()));
  }
}
