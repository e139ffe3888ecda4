/**
 * `orbit hosts list`, `check NAME`, `drain NAME`, `undrain NAME`: the inventory with what the fleet
 * holds on each host, a live look at one host, and taking a host out of (or back into) placement.
 */
import { checkHost, factsWarnings } from '../hosts/check';
import { loadInventory } from '../hosts/inventory';
import { sshTransportFor } from '../worker/hosts';
import { CliError } from './errors';
import { LOCAL_HOST } from '../common/fleet';
import { taskQueue, type TemporalTarget } from '../config';
import { fleetViewOf, hostsTable, setHostDrained } from './fleet';
import { connectClient } from './submit';
import type { FleetView } from '../common/fleet-view';

/** The fleet's view, or one line saying why there is none (no server, no fleet yet). */
async function fleetLook(target: TemporalTarget): Promise<FleetView | string> {
  try {
    const view = await fleetViewOf(await connectClient(target));
    return view ?? `fleet: none yet on task queue "${taskQueue()}" (it starts with the first run)`;
  } catch (e) {
    return `fleet: not shown (${(e as Error).message.split('\n')[0]})`;
  }
}

export async function runHosts(args: string[], hostsFile: string | undefined, out: (s: string) => void, target?: TemporalTarget): Promise<number> {
  const [sub, name, ...extra] = args;
  const inventory = await loadInventory({ path: hostsFile });
  if ((sub === 'drain' || sub === 'undrain') && name && extra.length === 0 && target) {
    const known = [LOCAL_HOST, ...inventory.hosts.map((h) => h.name)];
    if (!known.includes(name)) throw new CliError(`no host named "${name}" in ${inventory.source ?? 'hosts.yaml'}; known: ${known.join(', ')}`);
    return setHostDrained(target, name, sub === 'drain', out);
  }
  if (sub === 'list' && name === undefined) {
    out(`hosts from ${inventory.source ?? '(no hosts.yaml found: only "local")'}`);
    out('  local        this machine (the worker\'s own)');
    for (const h of inventory.hosts) {
      const r = h.resources;
      out(
        `  ${h.name.padEnd(12)} ${h.user}@${h.address}:${h.port}  ${r.gpus} gpu${r.gpus === 1 ? '' : 's'}${r.gpuType ? ` (${r.gpuType})` : ''}, ${r.cpus} cpus, ${r.memoryGb} GB` +
          `${h.labels.length ? `  [${h.labels.join(', ')}]` : ''}  workRoot ${h.workRoot}${h.pricePerHour !== undefined ? `  ${h.pricePerHour}/h` : ''}`,
      );
    }
    if (!target) return 0;
    const view = await fleetLook(target);
    out('');
    if (typeof view === 'string') out(view);
    else out(`fleet (task queue "${taskQueue()}", as the worker last reported ${view.inventoryAt ?? 'never'}):\n${hostsTable(view)}`);
    return 0;
  }
  if (sub === 'check' && name && extra.length === 0) {
    const host = inventory.hosts.find((h) => h.name === name);
    if (!host) throw new CliError(`no host named "${name}" in ${inventory.source ?? 'hosts.yaml'}; known: ${inventory.hosts.map((h) => h.name).join(', ') || '(none)'}`);
    const transport = sshTransportFor(host, { readyTimeoutMs: 10_000 });
    try {
      const facts = await checkHost(transport, { workRoot: host.workRoot, timeoutMs: 30_000 });
      out(`${name}: ${host.user}@${host.address}:${host.port} (${facts.hostname})`);
      out(`  os:        ${facts.os} (${facts.kernel}, ${facts.arch})`);
      out(`  free disk: ${facts.freeDiskBytes === null ? 'unknown' : `${(facts.freeDiskBytes / 2 ** 30).toFixed(1)} GiB`} at ${facts.diskPath}`);
      out(`  gpus:      ${facts.gpus.length ? facts.gpus.join('\n             ') : facts.gpuSummary}`);
      out(`  python3:   ${facts.python3 ?? 'missing (run.sh needs it for the manifest)'}`);
      const warnings = factsWarnings(facts, host);
      for (const w of warnings) out(`  warning: ${w}`);
      return warnings.length ? 1 : 0;
    } catch (e) {
      throw new CliError(`${name}: ${(e as Error).message}`, 3);
    } finally {
      await transport.close();
    }
  }
  throw new CliError('usage: orbit hosts list | orbit hosts check NAME | orbit hosts drain NAME | orbit hosts undrain NAME  [--hosts FILE]');
}
