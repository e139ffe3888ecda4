/**
 * `orbit hosts list`, `check NAME`, `drain NAME`, `undrain NAME`: the inventory with what the fleet
 * holds on each host, a live look at one host (or `local`, this machine), and taking a host out of
 * (or back into) placement.
 */
import { join } from 'node:path';
import { checkHost, factsWarnings, type HostFacts } from '../hosts/check';
import { loadInventory, type HostEntry } from '../hosts/inventory';
import { LocalTransport } from '../hosts/local-transport';
import { localHostSpec } from '../hosts/local-resources';
import type { Transport } from '../hosts/transport';
import { sshTransportFor } from '../worker/hosts';
import { CliError, temporalCliError } from './errors';
import { LOCAL_HOST } from '../common/fleet';
import { orbitHome, taskQueue, type TemporalTarget } from '../config';
import { fleetViewOf, hostsTable, setHostDrained } from './fleet';
import { emit, formatTime, type Io, type OutputFormat } from './io';
import { connectClient } from './connect';
import type { FleetView } from '../common/fleet-view';

/** The fleet's view, or one line saying why there is none (no server, no fleet yet). */
async function fleetLook(target: TemporalTarget): Promise<FleetView | string> {
  try {
    const view = await fleetViewOf(await connectClient(target));
    return view ?? `fleet: none yet on task queue "${taskQueue()}" (it starts with the first run)`;
  } catch (e) {
    const why = e instanceof CliError ? e.message : (temporalCliError(e, target)?.message ?? (e as Error).message);
    return `fleet: not shown (${why.split('\n')[0]})`;
  }
}

export async function hostsList(hostsFile: string | undefined, io: Io, format: OutputFormat, target: TemporalTarget): Promise<number> {
  const inventory = await loadInventory({ path: hostsFile });
  const view = await fleetLook(target);
  if (format !== 'text') {
    const hosts = inventory.hosts.map(({ identity, ...h }) => ({ ...h, identity: identity ? '(set)' : undefined }));
    await emit(io, format, { source: inventory.source, local: inventory.local ?? {}, hosts, fleet: typeof view === 'string' ? undefined : view, fleetNote: typeof view === 'string' ? view : undefined }, () => undefined);
    return 0;
  }
  io.out(`hosts from ${inventory.source ?? '(no hosts.yaml found: only "local")'}`);
  io.out("  local        this machine (the worker's own)");
  for (const h of inventory.hosts) {
    const r = h.resources;
    io.out(
      `  ${h.name.padEnd(12)} ${h.user}@${h.address}:${h.port}  ${r.gpus} gpu${r.gpus === 1 ? '' : 's'}${r.gpuType ? ` (${r.gpuType})` : ''}, ${r.cpus} cpus, ${r.memoryGb} GB` +
        `${h.labels.length ? `  [${h.labels.join(', ')}]` : ''}  workRoot ${h.workRoot}${h.pricePerHour !== undefined ? `  ${h.pricePerHour}/h` : ''}`,
    );
  }
  io.out('');
  if (typeof view === 'string') io.out(view);
  else io.out(`fleet (task queue "${taskQueue()}", as the worker last reported ${formatTime(view.inventoryAt ?? undefined)}):\n${hostsTable(view)}`);
  return 0;
}

export async function hostsCheck(name: string, hostsFile: string | undefined, io: Io, format: OutputFormat): Promise<number> {
  const inventory = await loadInventory({ path: hostsFile });
  let transport: Transport;
  let entry: Pick<HostEntry, 'resources'>;
  let workRoot: string;
  let where: string;
  if (name === LOCAL_HOST) {
    const spec = await localHostSpec(inventory.local);
    transport = new LocalTransport();
    entry = { resources: { gpus: spec.gpus.length, gpuType: spec.gpuType, cpus: spec.cpus, memoryGb: spec.memoryGb } } as Pick<HostEntry, 'resources'>;
    workRoot = join(orbitHome(), 'work');
    where = 'this machine';
  } else {
    const host = inventory.hosts.find((h) => h.name === name);
    if (!host) throw new CliError(`no host named "${name}" in ${inventory.source ?? 'hosts.yaml'}; known: ${[LOCAL_HOST, ...inventory.hosts.map((h) => h.name)].join(', ')}`);
    transport = sshTransportFor(host, { readyTimeoutMs: 10_000 });
    entry = host;
    workRoot = host.workRoot;
    where = `${host.user}@${host.address}:${host.port}`;
  }
  let facts: HostFacts;
  try {
    facts = await checkHost(transport, { workRoot, timeoutMs: 30_000 });
  } catch (e) {
    throw new CliError(`${name}: ${(e as Error).message}`, 3);
  } finally {
    await transport.close();
  }
  const warnings = factsWarnings(facts, entry as HostEntry);
  await emit(io, format, { name, where, ...facts, warnings }, () => {
    io.out(`${name}: ${where} (${facts.hostname})`);
    io.out(`  os:        ${facts.os} (${facts.kernel}, ${facts.arch})`);
    io.out(`  free disk: ${facts.freeDiskBytes === null ? 'unknown' : `${(facts.freeDiskBytes / 2 ** 30).toFixed(1)} GiB`} at ${facts.diskPath}`);
    io.out(`  gpus:      ${facts.gpus.length ? facts.gpus.join('\n             ') : facts.gpuSummary}`);
    io.out(`  python3:   ${facts.python3 ?? 'missing (run.sh needs it for the manifest)'}`);
    for (const w of warnings) io.out(`  warning: ${w}`);
  });
  return warnings.length ? 1 : 0;
}

export async function hostsDrain(name: string, drained: boolean, hostsFile: string | undefined, io: Io, target: TemporalTarget): Promise<number> {
  const inventory = await loadInventory({ path: hostsFile });
  const known = [LOCAL_HOST, ...inventory.hosts.map((h) => h.name)];
  if (!known.includes(name)) throw new CliError(`no host named "${name}" in ${inventory.source ?? 'hosts.yaml'}; known: ${known.join(', ')}`);
  return setHostDrained(target, name, drained, io);
}
