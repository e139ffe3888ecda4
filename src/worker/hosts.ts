import { join } from 'node:path';
import type { FleetHostSpec } from '../common/fleet';
import { fleetSpecOf, loadInventory, type HostEntry, type Inventory } from '../hosts/inventory';
import { localHostSpec } from '../hosts/local-resources';
import { LocalTransport } from '../hosts/local-transport';
import { HostRegistry } from '../hosts/registry';
import { ShellHost } from '../hosts/shell-host';
import { SshTransport, type SshTransportOptions } from '../hosts/ssh';

/** The embedded local host: bundles run on the worker's own machine under `<orbitHome>/work/<runId>`. */
export function localHost(orbitHomeDir: string): ShellHost {
  return new ShellHost({ name: 'local', transport: new LocalTransport(), workRoot: join(orbitHomeDir, 'work') });
}

/** A transport for a hosts.yaml entry; `overrides` replace any of its options (e.g. a shorter readyTimeoutMs). */
export function sshTransportFor(host: HostEntry, overrides: Partial<SshTransportOptions> = {}): SshTransport {
  return new SshTransport({
    name: host.name,
    address: host.address,
    port: host.port,
    user: host.user,
    identity: host.identity,
    hostKey: host.hostKey,
    ...overrides,
  });
}

/** The hosts a worker serves: "local" plus every SSH host of the inventory (hosts.yaml). */
export function hostRegistryFor(orbitHomeDir: string, inventory: Inventory): HostRegistry {
  const registry = new HostRegistry([localHost(orbitHomeDir)]);
  for (const entry of inventory.hosts) {
    registry.add(new ShellHost({ name: entry.name, transport: sshTransportFor(entry), workRoot: entry.workRoot }));
  }
  return registry;
}

export async function loadHostRegistry(orbitHomeDir: string, env: NodeJS.ProcessEnv = process.env): Promise<HostRegistry> {
  return hostRegistryFor(orbitHomeDir, await loadInventory({ env }));
}

/** What each host offers the fleet, from hosts.yaml as it is now (read at every call) and the worker's own machine. */
export function fleetHostsFromInventory(env: NodeJS.ProcessEnv = process.env): () => Promise<FleetHostSpec[]> {
  return async () => {
    const inventory = await loadInventory({ env });
    return [await localHostSpec(inventory.local), ...inventory.hosts.map(fleetSpecOf)];
  };
}
