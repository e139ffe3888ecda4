import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/bundle/parse';
import {
  InventoryNotFoundError,
  loadInventory,
  parseInventory,
  placeJob,
  PlacementError,
  type HostEntry,
  type Inventory,
} from '../../src/hosts/inventory';
import { tempDir } from '../helpers/bundles';

const FP = 'SHA256:xmB3eRIs+AJT/hV9guFJ9zHvufCmUbOOlw3+LsxZjVQ';

const good = `
hosts:
  - name: gpu-a
    address: 203.0.113.7
    user: orbit
    identity: { keyFile: ~/.ssh/orbit_ed25519, passphraseEnv: ORBIT_KEY_PASSPHRASE }
    hostKey: { fingerprint: "${FP}" }
    workRoot: /home/orbit/orbit-runs/
    resources: { gpus: 2, gpuType: a100, cpus: 32, memoryGb: 256 }
    labels: [spot]
  - name: cpu-b
    address: cpu-b.example.com
    port: 2201
    user: orbit
    identity: { agent: true }
    workRoot: /srv/orbit
    resources: { cpus: 8, memoryGb: 32 }
`;

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected a throw');
}

describe('hosts.yaml', () => {
  it('parses hosts with defaults, resolving ~ and relative paths', () => {
    const inv = parseInventory(good + '    hostKey: { knownHostsFile: keys/known_hosts }\n', '/etc/orbit/hosts.yaml', { home: '/home/me' });
    expect(inv.source).toBe('/etc/orbit/hosts.yaml');
    expect(inv.hosts[0]).toEqual({
      name: 'gpu-a',
      address: '203.0.113.7',
      port: 22,
      user: 'orbit',
      identity: { keyFile: '/home/me/.ssh/orbit_ed25519', passphraseEnv: 'ORBIT_KEY_PASSPHRASE' },
      hostKey: { fingerprint: FP },
      workRoot: '/home/orbit/orbit-runs',
      resources: { gpus: 2, gpuType: 'a100', cpus: 32, memoryGb: 256 },
      labels: ['spot'],
    });
    expect(inv.hosts[1]).toMatchObject({ port: 2201, identity: { agent: true }, hostKey: { knownHostsFile: '/etc/orbit/keys/known_hosts' }, resources: { gpus: 0 }, labels: [] });
    const defaults = parseInventory(good, '/x/hosts.yaml', { home: '/home/me' });
    expect(defaults.hosts[1]?.hostKey).toEqual({ knownHostsFile: '/home/me/.ssh/known_hosts' });
  });

  it('names every problem by field path, with the fix', () => {
    const bad = `
hosts:
  - name: gpu-a
    address: 203.0.113.7
    user: orbit
    identity: { keyFile: k }
    workRoot: /w
    resources: { cpus: 1, memoryGb: 1 }
  - name: gpu-a
    address: orbit@1.2.3.4:22
    port: 70000
    prot: 22
    user: orbit
    identity: { keyFile: k, agent: true }
    hostKey: { fingerprint: "abc" }
    workRoot: runs
    resources: { gpus: 1.5, memoryGb: 0 }
    labels: spot
  - name: local
    address: h
    user: u
    identity: { keyFile: k, passphraseEnv: "hunter2 is my password" }
    workRoot: /w
`;
    const message = messageOf(() => parseInventory(bad, '/x/hosts.yaml'));
    expect(message).toBe(
      [
        'hosts file /x/hosts.yaml is invalid:',
        '  - hosts[1].address: must be a host name or IP address only: put the user in "user" and the port in "port"',
        '  - hosts[1].port: must be a whole number from 1 to 65535',
        '  - hosts[1].identity: give keyFile or agent: true, not both',
        '  - hosts[1].hostKey.fingerprint: must be "SHA256:" and 43 base64 characters, as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints on the host',
        '  - hosts[1].workRoot: must be an absolute path on the host (starting with "/") of A-Z, a-z, 0-9, ".", "_", "+", "-", "/"',
        '  - hosts[1].resources.gpus: must be a whole number 0 or more',
        '  - hosts[1].resources.cpus: is required: the number of CPU cores jobs may use, a whole number 1 or more',
        '  - hosts[1].resources.memoryGb: must be a number of GB more than 0',
        '  - hosts[1].labels: must be a list of labels, e.g. [spot, eu-west]',
        '  - hosts[1]: unknown field "prot"; allowed: name, address, port, user, identity, hostKey, workRoot, resources, labels, pricePerHour',
        '  - hosts[1].name: "gpu-a" is already the name of hosts[0]; give each host a unique name',
        '  - hosts[2].name: "local" and "auto" are reserved; choose another name',
        '  - hosts[2].identity.passphraseEnv: must be the NAME of an environment variable holding the passphrase (letters, digits, _), never the passphrase itself',
        '  - hosts[2].resources: is required: what the host offers, { gpus, gpuType, cpus, memoryGb }',
      ].join('\n'),
    );
  });

  it('reports YAML syntax errors by line and refuses a bare list', () => {
    expect(messageOf(() => parseInventory('hosts:\n  - name: a\n    name: b\n', '/y.yaml'))).toBe(
      'hosts file /y.yaml is invalid:\n  - line 3, column 5: YAML syntax: Map keys must be unique',
    );
    expect(messageOf(() => parseInventory('- name: a\n', '/y.yaml'))).toBe(
      'hosts file /y.yaml is invalid:\n  - must be a mapping with a "hosts:" list, not a bare list; put "hosts:" above the entries',
    );
    expect(() => parseInventory('hosts: 3', '/y.yaml')).toThrow(ValidationError);
    expect(parseInventory('', '/y.yaml').hosts).toEqual([]);
  });

  describe('loading', () => {
    let tmp: Awaited<ReturnType<typeof tempDir>>;
    beforeAll(async () => {
      tmp = await tempDir();
      await mkdir(join(tmp.dir, 'cwd'));
      await mkdir(join(tmp.dir, 'home/.orbit'), { recursive: true });
      await writeFile(join(tmp.dir, 'home/.orbit/hosts.yaml'), good);
      await writeFile(join(tmp.dir, 'env.yaml'), 'hosts: []\n');
    });
    afterAll(async () => tmp.cleanup());

    it('uses the option, else ORBIT_HOSTS, else ./hosts.yaml, else ~/.orbit/hosts.yaml, else nothing', async () => {
      const cwd = join(tmp.dir, 'cwd');
      const home = join(tmp.dir, 'home');
      const fromHome = await loadInventory({ cwd, home, env: {} });
      expect(fromHome.source).toBe(join(home, '.orbit/hosts.yaml'));
      expect(fromHome.hosts.map((h) => h.name)).toEqual(['gpu-a', 'cpu-b']);
      expect((await loadInventory({ cwd, home, env: { ORBIT_HOSTS: join(tmp.dir, 'env.yaml') } })).source).toBe(join(tmp.dir, 'env.yaml'));
      expect((await loadInventory({ path: '../env.yaml', cwd, home, env: { ORBIT_HOSTS: '/nope' } })).source).toBe(join(tmp.dir, 'env.yaml'));
      await writeFile(join(cwd, 'hosts.yaml'), 'hosts: []\n');
      expect((await loadInventory({ cwd, home, env: {} })).source).toBe(join(cwd, 'hosts.yaml'));
      expect(await loadInventory({ cwd: join(tmp.dir, 'home'), home: join(tmp.dir, 'nohome'), env: {} })).toEqual({ source: null, hosts: [] });
      await expect(loadInventory({ cwd, home, env: { ORBIT_HOSTS: join(tmp.dir, 'missing.yaml') } })).rejects.toBeInstanceOf(InventoryNotFoundError);
    });
  });
});

describe('placeJob', () => {
  const host = (name: string, resources: Partial<HostEntry['resources']>, labels: string[] = []): HostEntry => ({
    name,
    address: `${name}.example.com`,
    port: 22,
    user: 'orbit',
    identity: { agent: true },
    hostKey: { fingerprint: FP },
    workRoot: '/srv/orbit',
    resources: { gpus: 0, cpus: 4, memoryGb: 16, ...resources },
    labels,
  });
  const inventory: Inventory = {
    source: '/x/hosts.yaml',
    hosts: [host('gpu-big', { gpus: 8, gpuType: 'h100', cpus: 64, memoryGb: 512 }), host('gpu-a', { gpus: 1, gpuType: 'a100', cpus: 16, memoryGb: 64 }, ['spot']), host('cpu-b', { cpus: 8, memoryGb: 32 })],
  };

  it('picks the host that fits with the least to spare', () => {
    expect(placeJob({ gpus: 0, cpus: 2, memoryGb: 4 }, inventory).name).toBe('cpu-b');
    expect(placeJob({ gpus: 1, cpus: 2, memoryGb: 4 }, inventory).name).toBe('gpu-a');
    expect(placeJob({ gpus: 1, gpuType: 'H100', cpus: 2, memoryGb: 4 }, inventory).name).toBe('gpu-big');
    expect(placeJob({ gpus: 0, cpus: 12, memoryGb: 4 }, inventory, { pin: 'auto' }).name).toBe('gpu-a');
    expect(placeJob({ gpus: 0, cpus: 1, memoryGb: 1, labels: ['spot'] }, inventory).name).toBe('gpu-a');
  });

  it('refuses when no host fits, saying why for each host', () => {
    const e = (() => {
      try {
        placeJob({ gpus: 2, gpuType: 'a100', cpus: 16, memoryGb: 128 }, inventory);
      } catch (x) {
        return x as PlacementError;
      }
      throw new Error('expected a PlacementError');
    })();
    expect(e).toBeInstanceOf(PlacementError);
    expect(e.message).toBe(
      [
        'no host in /x/hosts.yaml fits the job (needs 2 gpus (a100), 16 cpus, 128 GB memory):',
        '  - gpu-big: needs gpu type a100, has h100',
        '  - gpu-a: needs 2 gpus, has 1; needs 128 GB memory, has 64',
        '  - cpu-b: needs 2 gpus, has 0; needs 16 cpus, has 8; needs 128 GB memory, has 32',
        "Add or resize a host in hosts.yaml, lower the job's resources, or run it locally with --host local.",
      ].join('\n'),
    );
    expect(e.hosts.find((h) => h.name === 'gpu-a')?.reasons).toEqual(['needs 2 gpus, has 1', 'needs 128 GB memory, has 64']);
  });

  it('honours pins: local always, a named host only if it fits, unknown names refused', () => {
    expect(placeJob({ gpus: 4, cpus: 1, memoryGb: 1 }, inventory, { pin: 'local' })).toEqual({ kind: 'local', name: 'local', reason: 'pinned to the local machine' });
    expect(placeJob({ gpus: 0, cpus: 1, memoryGb: 1 }, inventory, { pin: 'gpu-big' })).toMatchObject({ kind: 'ssh', name: 'gpu-big', reason: 'pinned' });
    expect(() => placeJob({ gpus: 2, cpus: 1, memoryGb: 1 }, inventory, { pin: 'gpu-a' })).toThrow('host gpu-a cannot take the job (needs 2 gpus, 1 cpu, 1 GB memory):\n  - gpu-a: needs 2 gpus, has 1');
    expect(() => placeJob({ gpus: 0, cpus: 1, memoryGb: 1 }, inventory, { pin: 'gpu-z' })).toThrow('no host named "gpu-z" in /x/hosts.yaml; known hosts: gpu-big, gpu-a, cpu-b, local (or use --host auto)');
    expect(() => placeJob({ gpus: 0, cpus: 1, memoryGb: 1, labels: ['eu', 'spot'] }, inventory, { pin: 'cpu-b' })).toThrow('cpu-b: lacks labels eu, spot');
  });

  it('runs locally when the inventory is empty', () => {
    expect(placeJob({ gpus: 1, cpus: 1, memoryGb: 1 }, { source: null, hosts: [] })).toEqual({ kind: 'local', name: 'local', reason: 'the inventory lists no hosts' });
  });
});
