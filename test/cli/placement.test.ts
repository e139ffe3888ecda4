/**
 * Where a submitted run queues (placeRun), what "local" offers the fleet, and the hosts.yaml fields
 * the fleet reads (`local:`, pricePerHour).
 */
import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { placeRun } from '../../src/cli/submit';
import { fleetSpecOf, parseInventory } from '../../src/hosts/inventory';
import { localHostSpec, parseGpuList } from '../../src/hosts/local-resources';
import { fleetSettingsFrom } from '../../src/worker/main';
import { useTempDirs } from '../helpers/use-temp-dirs';

const HOSTS = `
local:
  resources: { gpus: 1, cpus: 3, memoryGb: 5 }
  labels: [home]
  pricePerHour: 0.5
hosts:
  - name: gpu-a
    address: 203.0.113.7
    user: orbit
    identity: { agent: true }
    workRoot: /srv/orbit
    resources: { gpus: 2, gpuType: a100, cpus: 32, memoryGb: 256 }
    pricePerHour: 3.2
  - name: gpu-b
    address: 203.0.113.8
    user: orbit
    identity: { agent: true }
    workRoot: /srv/orbit
    resources: { gpus: 4, gpuType: a100, cpus: 64, memoryGb: 512 }
`;

describe('placement at submit', () => {
  const temp = useTempDirs('orbit-place-');
  const hostsFile = async (text: string) => {
    const dir = await temp();
    const path = join(dir, 'hosts.yaml');
    await writeFile(path, text);
    return path;
  };
  const job = { gpus: 1, cpus: 2, memoryGb: 4 };

  it('queues for any fitting host ("auto") by default when hosts.yaml lists hosts, with every fitting host for relaunches', async () => {
    const placed = await placeRun(job, { hostsFile: await hostsFile(HOSTS) });
    expect(placed).toEqual({ host: 'auto', relaunchHosts: ['gpu-a', 'gpu-b'] });
  });

  it('pins --host NAME (it still queues for that host), relaunching on the others that fit', async () => {
    expect(await placeRun(job, { host: 'gpu-a', hostsFile: await hostsFile(HOSTS) })).toEqual({ host: 'gpu-a', relaunchHosts: ['gpu-b'] });
    expect(await placeRun({ ...job, gpus: 3 }, { host: 'auto', hostsFile: await hostsFile(HOSTS) })).toEqual({ host: 'auto', relaunchHosts: ['gpu-b'] });
  });

  it('refuses a job no host could ever hold, naming what each host lacks', async () => {
    const err = await placeRun({ gpus: 8, cpus: 1, memoryGb: 1 }, { hostsFile: await hostsFile(HOSTS) }).catch((e: Error) => e);
    expect(err).toMatchObject({ exitCode: 2 });
    expect((err as Error).message).toMatch(/--host auto: no host in .* fits the job \(needs 8 gpus[\s\S]*gpu-a: needs 8 gpus, has 2[\s\S]*gpu-b: needs 8 gpus, has 4/);
  });

  it('runs on local without hosts, checked against what this machine offers when the worker is on it', async () => {
    const empty = await hostsFile('hosts: []\n');
    expect(await placeRun(job, { hostsFile: empty })).toEqual({ host: 'local', relaunchHosts: [] });
    const small = await hostsFile('local:\n  resources: { gpus: 0, cpus: 1 }\n');
    const err = await placeRun(job, { hostsFile: small, localMachine: true }).catch((e: Error) => e);
    expect((err as Error).message).toBe(
      '--host local: this machine (local) cannot take the job (needs 1 gpu, 2 cpus, 4 GB): local: needs 1 gpu, has 0; needs 2 cpus, has 1; ' +
        "lower the job's resources, declare more in hosts.yaml under local.resources, or add a host to hosts.yaml",
    );
    // A worker elsewhere (a cluster): the fleet, which knows that machine, decides.
    expect(await placeRun(job, { hostsFile: small })).toEqual({ host: 'local', relaunchHosts: [] });
  });
});

describe('what the fleet is told about each host', () => {
  it('reads local: and pricePerHour from hosts.yaml; a hosts.yaml host has GPUs 0..n-1', () => {
    const inv = parseInventory(HOSTS, '/x/hosts.yaml', { home: '/home/me' });
    expect(inv.local).toEqual({ gpus: 1, cpus: 3, memoryGb: 5, labels: ['home'], pricePerHour: 0.5 });
    expect(fleetSpecOf(inv.hosts[0]!)).toEqual({ name: 'gpu-a', gpus: [0, 1], gpuType: 'a100', cpus: 32, memoryGb: 256, labels: [], pricePerHour: 3.2 });
    expect(fleetSpecOf(inv.hosts[1]!).pricePerHour).toBeUndefined();
  });

  it('refuses a bad local: section or price, naming the field', () => {
    expect(() => parseInventory('local:\n  resources: { cpus: 0 }\n  speed: 3\n', '/x/hosts.yaml')).toThrow(
      /local\.resources\.cpus: must be a whole number 1 or more[\s\S]*local: unknown field "speed"; allowed: resources, labels, pricePerHour/,
    );
    expect(() => parseInventory(HOSTS.replace('pricePerHour: 3.2', 'pricePerHour: -1'), '/x/hosts.yaml')).toThrow(/hosts\[0\]\.pricePerHour: must be 0 or more/);
  });

  it('local: detected, then overridden (gpus: N gives 0..N-1)', async () => {
    const detected = await localHostSpec();
    expect(detected.cpus).toBe(availableParallelism());
    expect(detected.memoryGb).toBeGreaterThan(0);
    expect(await localHostSpec({ gpus: 2, cpus: 7, memoryGb: 9, pricePerHour: 1 })).toEqual({ name: 'local', gpus: [0, 1], cpus: 7, memoryGb: 9, labels: [], pricePerHour: 1 });
  });

  it('parses the GPUs nvidia-smi -L lists', () => {
    const text = 'GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-1)\nGPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-2)\nGPU 3: NVIDIA A100-SXM4-80GB (UUID: GPU-4)\nsomething else\n';
    expect(parseGpuList(text)).toEqual({ indices: [0, 1, 3], model: 'NVIDIA A100-SXM4-80GB' });
    expect(parseGpuList('No devices were found\n')).toEqual({ indices: [] });
  });

  it('ORBIT_FLEET_RECONCILE_SECONDS sets the reconciliation period; nonsense is refused', () => {
    expect(fleetSettingsFrom({ ORBIT_FLEET_RECONCILE_SECONDS: '2.5' })).toEqual({ reconcileEveryMs: 2_500 });
    expect(fleetSettingsFrom({})).toEqual({});
    expect(() => fleetSettingsFrom({ ORBIT_FLEET_RECONCILE_SECONDS: 'soon' })).toThrow(/ORBIT_FLEET_RECONCILE_SECONDS=soon must be a number of seconds/);
  });
});
