/**
 * The host inventory (`hosts.yaml`): the rented machines Orbit may run jobs on, how to reach them
 * over SSH, and what each offers. Also placement: which host a job goes to.
 *
 * Where the file is found: the `path` option (CLI `--hosts`), else `$ORBIT_HOSTS`, else
 * `./hosts.yaml`, else `~/.orbit/hosts.yaml`. A path given by option or `$ORBIT_HOSTS` must exist;
 * when neither default exists the inventory is empty and jobs run on the local machine.
 *
 * The special host name "local" is the worker's own machine (no SSH); "auto" asks for placement.
 * `~/.ssh/config` is not read (ssh2 does not): give address, port, user and key here.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { formatProblem, parseWith, ValidationError, type Problem } from '../bundle/parse';
import { parseYaml, readYamlText, YamlInputError, yamlRefusal } from '../yaml-input';
import { expandHome } from './paths';
import type { SshHostKeyPolicy, SshIdentity } from './ssh';
import { unmetBy, type FleetHostSpec } from '../common/fleet';
import type { LocalOverrides } from './local-resources';

/** The worker's own machine; never listed in hosts.yaml. */
export const LOCAL_HOST = 'local';
/** `--host auto`: choose among the inventory's hosts. */
export const AUTO_HOST = 'auto';
const RESERVED = new Set([LOCAL_HOST, AUTO_HOST]);

const fields = (allowed: string[], requiredAs?: string) => ({
  error: (iss: { code?: string; keys?: string[]; input?: unknown }) => {
    if (iss.code === 'unrecognized_keys') {
      const keys = iss.keys ?? [];
      return `unknown field${keys.length > 1 ? 's' : ''} ${keys.map((k) => `"${k}"`).join(', ')}; allowed: ${allowed.join(', ')}`;
    }
    if (iss.input === undefined && requiredAs) return `is required: ${requiredAs}`;
    return `must be a mapping with the fields ${allowed.join(', ')}`;
  },
});

const required = (what: string, type: string) => (iss: { input?: unknown }) =>
  iss.input === undefined ? `is required: ${what}` : `must be ${type}`;

const wholeNumber = (what: string, min: number, max?: number) => {
  const range = max === undefined ? `${min} or more` : `from ${min} to ${max}`;
  const msg = `must be a whole number ${range}`;
  const n = z.number({ error: (iss) => (iss.input === undefined ? `is required: ${what}, a whole number ${range}` : msg) }).int(msg).min(min, msg);
  return max === undefined ? n : n.max(max, msg);
};

const SLUG = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}=?$/;

const identitySchema = z
  .strictObject(
    {
      keyFile: z.string({ error: 'must be a path to a private key file' }).min(1, 'must be a path to a private key file').optional(),
      passphraseEnv: z
        .string({ error: 'must be the NAME of an environment variable holding the passphrase' })
        .regex(ENV_NAME, 'must be the NAME of an environment variable holding the passphrase (letters, digits, _), never the passphrase itself')
        .optional(),
      agent: z.literal(true, { error: 'must be true (to use the keys of ssh-agent via SSH_AUTH_SOCK); omit it to use keyFile' }).optional(),
    },
    fields(['keyFile', 'passphraseEnv', 'agent'], '{ keyFile: <path to private key> } or { agent: true }'),
  )
  .superRefine((v, ctx) => {
    if (!v.keyFile && !v.agent) ctx.addIssue({ code: 'custom', message: 'needs either keyFile: <path to private key> or agent: true' });
    if (v.keyFile && v.agent) ctx.addIssue({ code: 'custom', message: 'give keyFile or agent: true, not both' });
    if (v.passphraseEnv && !v.keyFile) ctx.addIssue({ code: 'custom', path: ['passphraseEnv'], message: 'only applies with keyFile' });
  });

const hostKeySchema = z
  .strictObject(
    {
      fingerprint: z
        .string({ error: 'must be a string like "SHA256:..."' })
        .regex(FINGERPRINT, 'must be "SHA256:" and 43 base64 characters, as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints on the host')
        .optional(),
      knownHostsFile: z.string({ error: 'must be a path to a known_hosts file' }).min(1, 'must be a path to a known_hosts file').optional(),
    },
    fields(['fingerprint', 'knownHostsFile']),
  )
  .superRefine((v, ctx) => {
    if (v.fingerprint && v.knownHostsFile) ctx.addIssue({ code: 'custom', message: 'give fingerprint or knownHostsFile, not both' });
  });

const hostResourcesSchema = z.strictObject(
  {
    gpus: wholeNumber('the number of GPUs', 0).default(0),
    gpuType: z.string({ error: 'must be a GPU model name such as "a100"' }).min(1, 'must not be empty').optional(),
    cpus: wholeNumber('the number of CPU cores jobs may use', 1),
    memoryGb: z
      .number({ error: required('the memory jobs may use, in GB', 'a number of GB more than 0') })
      .positive('must be a number of GB more than 0'),
  },
  fields(['gpus', 'gpuType', 'cpus', 'memoryGb'], 'what the host offers, { gpus, gpuType, cpus, memoryGb }'),
);

const labelsSchema = z.array(z.string().regex(SLUG, 'must be 1-63 chars of a-z, 0-9, ".", "_", "-"'), { error: 'must be a list of labels, e.g. [spot, eu-west]' });
const priceSchema = z.number({ error: 'must be a price per hour, a number such as 2.5' }).min(0, 'must be 0 or more');

const hostSchema = z.strictObject(
  {
    name: z
      .string({ error: required('a unique slug such as "gpu-a"', 'a string') })
      .regex(SLUG, 'must be 1-63 chars of a-z, 0-9, ".", "_", "-", starting with a letter or digit')
      .refine((n) => !RESERVED.has(n), { message: '"local" and "auto" are reserved; choose another name' }),
    address: z
      .string({ error: required('the host name or IP address', 'a string') })
      .regex(
        /^([A-Za-z0-9]([A-Za-z0-9.-]{0,252})|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$/,
        'must be a host name or IP address only: put the user in "user" and the port in "port"',
      ),
    port: wholeNumber('the SSH port', 1, 65535).default(22),
    user: z
      .string({ error: required('the login user on the host', 'a string') })
      .regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/, 'must be a login name (letters, digits, "_", ".", "-")'),
    identity: identitySchema,
    hostKey: hostKeySchema.default({}),
    workRoot: z
      .string({ error: required('an absolute folder on the host where runs are kept, e.g. /home/orbit/orbit-runs', 'a string') })
      .regex(/^\/[A-Za-z0-9._+/-]*$/, 'must be an absolute path on the host (starting with "/") of A-Z, a-z, 0-9, ".", "_", "+", "-", "/"')
      .refine((p) => p.replace(/\/+$/, '') !== '' && !p.split('/').includes('..'), { message: 'must not be "/" or contain ".."' }),
    resources: hostResourcesSchema,
    labels: labelsSchema.default([]),
    pricePerHour: priceSchema.optional(),
  },
  fields(['name', 'address', 'port', 'user', 'identity', 'hostKey', 'workRoot', 'resources', 'labels', 'pricePerHour']),
);

/** `local:`: what the worker's own machine offers, over what the worker detects (nvidia-smi -L, CPUs, memory). */
const localSchema = z.strictObject(
  {
    resources: z
      .strictObject(
        {
          gpus: wholeNumber('the number of GPUs', 0).optional(),
          gpuType: z.string({ error: 'must be a GPU model name such as "a100"' }).min(1, 'must not be empty').optional(),
          cpus: wholeNumber('the number of CPU cores jobs may use', 1).optional(),
          memoryGb: z.number({ error: 'must be a number of GB more than 0' }).positive('must be a number of GB more than 0').optional(),
        },
        fields(['gpus', 'gpuType', 'cpus', 'memoryGb']),
      )
      .default({}),
    labels: labelsSchema.optional(),
    pricePerHour: priceSchema.optional(),
  },
  fields(['resources', 'labels', 'pricePerHour']),
);

export const inventorySchema = z.strictObject(
  { hosts: z.array(hostSchema, { error: 'must be a list of hosts' }).default([]), local: localSchema.optional() },
  fields(['hosts', 'local']),
);

/** Names used twice, found on the raw input so they are reported together with every other problem. */
function duplicateNames(raw: unknown): Problem[] {
  const hosts = (raw as { hosts?: unknown })?.hosts;
  if (!Array.isArray(hosts)) return [];
  const seen = new Map<string, number>();
  const out: Problem[] = [];
  hosts.forEach((h: unknown, i) => {
    const name = (h as { name?: unknown })?.name;
    if (typeof name !== 'string') return;
    const first = seen.get(name);
    if (first !== undefined) out.push({ path: `hosts[${i}].name`, message: `"${name}" is already the name of hosts[${first}]; give each host a unique name` });
    else seen.set(name, i);
  });
  return out;
}

export type { SshHostKeyPolicy, SshIdentity };

type ParsedHost = z.infer<typeof hostSchema>;
export type HostResources = ParsedHost['resources'];

/** One host of hosts.yaml, with paths resolved (`~` expanded, relative to the file's folder). */
export interface HostEntry extends Omit<ParsedHost, 'identity' | 'hostKey'> {
  identity: SshIdentity;
  hostKey: SshHostKeyPolicy;
}

export interface Inventory {
  /** The file read, or null when no hosts file exists (an empty inventory). */
  source: string | null;
  hosts: HostEntry[];
  /** hosts.yaml's `local:` section: overrides of what the worker's machine offers. */
  local?: LocalOverrides;
}

/** Thrown when a hosts file named by `--hosts` or `$ORBIT_HOSTS` cannot be read. */
export class InventoryNotFoundError extends Error {
  constructor(
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(`hosts file ${path} cannot be read; create it, or point --hosts / ORBIT_HOSTS at an existing hosts.yaml`, options);
    this.name = 'InventoryNotFoundError';
  }
}

export interface LoadInventoryOptions {
  /** Explicit path (CLI `--hosts`); must exist. */
  path?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  home?: string;
}

/** Which hosts file would be read, and whether it was named explicitly. */
export function inventoryPath(options: LoadInventoryOptions = {}): { path: string; explicit: boolean } | undefined {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const home = options.home ?? homedir();
  if (options.path) return { path: resolve(cwd, expandHome(options.path, home)), explicit: true };
  if (env.ORBIT_HOSTS) return { path: resolve(cwd, expandHome(env.ORBIT_HOSTS, home)), explicit: true };
  for (const candidate of [join(cwd, 'hosts.yaml'), join(home, '.orbit', 'hosts.yaml')]) {
    if (existsSync(candidate)) return { path: candidate, explicit: false };
  }
  return undefined;
}

/**
 * Loads the inventory (see the module comment for where it is looked for). Throws
 * InventoryNotFoundError for a missing explicit file and ValidationError listing every problem by
 * field path (`hosts[1].port: ...`).
 */
export async function loadInventory(options: LoadInventoryOptions = {}): Promise<Inventory> {
  const found = inventoryPath(options);
  if (!found) return { source: null, hosts: [] };
  let text: string;
  try {
    text = await readYamlText(found.path);
  } catch (e) {
    if (e instanceof YamlInputError) throw new ValidationError(`hosts file ${found.path}`, [{ path: '', message: yamlRefusal(e) }]);
    throw new InventoryNotFoundError(found.path, { cause: e });
  }
  return parseInventory(text, found.path, { home: options.home });
}

/** Parses hosts.yaml text; relative key and known_hosts paths are taken from the file's folder. */
export function parseInventory(text: string, source: string, options: { home?: string } = {}): Inventory {
  const home = options.home ?? homedir();
  let raw: unknown;
  try {
    raw = parseYaml(text, source) ?? {};
  } catch (e) {
    if (!(e instanceof YamlInputError)) throw e;
    const problems: Problem[] = e.problems.map((p) => ({
      path: p.line ? `line ${p.line}, column ${p.column ?? 1}` : '',
      message: e.kind === 'syntax' ? `YAML syntax: ${p.message}` : p.message,
    }));
    throw new ValidationError(`hosts file ${source}`, problems);
  }
  if (Array.isArray(raw)) {
    throw new ValidationError(`hosts file ${source}`, [{ path: '', message: 'must be a mapping with a "hosts:" list, not a bare list; put "hosts:" above the entries' }]);
  }
  const parsed = parseWith(inventorySchema, raw);
  const duplicates = duplicateNames(raw);
  if (!parsed.ok || duplicates.length) {
    const problems = [...(parsed.ok ? [] : parsed.problems), ...duplicates];
    problems.sort((a, b) => hostIndex(a.path) - hostIndex(b.path));
    throw new ValidationError(`hosts file ${source}`, problems);
  }
  const base = dirname(source);
  const path = (p: string) => (isAbsolute(expandHome(p, home)) ? expandHome(p, home) : resolve(base, p));
  const local = parsed.value.local;
  return {
    source,
    ...(local ? { local: { ...local.resources, ...(local.labels ? { labels: local.labels } : {}), ...(local.pricePerHour !== undefined ? { pricePerHour: local.pricePerHour } : {}) } } : {}),
    hosts: parsed.value.hosts.map((h) => ({
      ...h,
      workRoot: h.workRoot.replace(/(.)\/+$/, '$1'),
      identity: h.identity.agent ? { agent: true as const } : { keyFile: path(h.identity.keyFile ?? ''), ...(h.identity.passphraseEnv ? { passphraseEnv: h.identity.passphraseEnv } : {}) },
      hostKey: h.hostKey.fingerprint ? { fingerprint: h.hostKey.fingerprint } : { knownHostsFile: path(h.hostKey.knownHostsFile ?? join(home, '.ssh', 'known_hosts')) },
    })),
  };
}

function hostIndex(path: string): number {
  const m = /^hosts\[(\d+)\]/.exec(path);
  return m ? Number(m[1]) : -1;
}

// ------------------------------------------------------------------ placement

export interface JobRequirements {
  gpus: number;
  gpuType?: string;
  cpus: number;
  memoryGb: number;
  /** Labels the host must all carry. */
  labels?: string[];
}

export type Placement =
  | { kind: 'local'; name: typeof LOCAL_HOST; reason: string }
  | { kind: 'ssh'; name: string; host: HostEntry; reason: string };

/** Thrown when no host (or not the pinned one) can take a job; says, for each host, why. Not retryable. */
export class PlacementError extends Error {
  constructor(
    message: string,
    /** Per host, what it lacks. */
    readonly hosts: { name: string; reasons: string[] }[] = [],
  ) {
    super(message);
    this.name = 'PlacementError';
  }
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** What `host` lacks for `req` (empty when it fits). */
export function unmetRequirements(req: JobRequirements, host: HostEntry): string[] {
  return unmetBy(req, fleetSpecOf(host));
}

/** A hosts.yaml entry as the fleet sees it: GPUs 0..n-1. */
export function fleetSpecOf(host: HostEntry): FleetHostSpec {
  const r = host.resources;
  return {
    name: host.name,
    gpus: Array.from({ length: r.gpus }, (_, i) => i),
    ...(r.gpuType ? { gpuType: r.gpuType } : {}),
    cpus: r.cpus,
    memoryGb: r.memoryGb,
    labels: host.labels,
    ...(host.pricePerHour !== undefined ? { pricePerHour: host.pricePerHour } : {}),
  };
}

function describe(req: JobRequirements): string {
  const parts = [plural(req.gpus, 'gpu') + (req.gpuType && req.gpus > 0 ? ` (${req.gpuType})` : ''), plural(req.cpus, 'cpu'), `${req.memoryGb} GB memory`];
  if (req.labels?.length) parts.push(`labels ${req.labels.join(', ')}`);
  return parts.join(', ');
}

/**
 * Chooses where a job runs.
 * - `pin: "local"`: the worker's own machine (resources are not checked).
 * - `pin: "auto"` or no pin: the fitting host that leaves the fewest GPUs, then CPUs, then memory
 *   unused (ties by name); "local" when the inventory is empty.
 * - `pin: NAME`: that host, still checked against the requirements.
 * The CLI maps no `--host` to "local" and `--host auto` to placement. Placement is static: jobs
 * already running on a host are not counted.
 */
export function placeJob(req: JobRequirements, inventory: Inventory | HostEntry[], options: { pin?: string } = {}): Placement {
  const hosts = Array.isArray(inventory) ? inventory : inventory.hosts;
  const source = Array.isArray(inventory) ? 'the inventory' : (inventory.source ?? 'the inventory');
  const pin = options.pin ?? AUTO_HOST;
  if (pin === LOCAL_HOST) return { kind: 'local', name: LOCAL_HOST, reason: 'pinned to the local machine' };
  if (pin !== AUTO_HOST) {
    const host = hosts.find((h) => h.name === pin);
    if (!host) {
      const known = [...hosts.map((h) => h.name), LOCAL_HOST].join(', ');
      throw new PlacementError(`no host named "${pin}" in ${source}; known hosts: ${known} (or use --host auto)`);
    }
    const unmet = unmetRequirements(req, host);
    if (unmet.length) {
      throw new PlacementError(`host ${pin} cannot take the job (needs ${describe(req)}):\n  - ${pin}: ${unmet.join('; ')}`, [{ name: pin, reasons: unmet }]);
    }
    return { kind: 'ssh', name: host.name, host, reason: 'pinned' };
  }
  if (hosts.length === 0) return { kind: 'local', name: LOCAL_HOST, reason: `${source} lists no hosts` };
  const verdicts = hosts.map((host) => ({ host, unmet: unmetRequirements(req, host) }));
  const fitting = verdicts
    .filter((v) => v.unmet.length === 0)
    .map((v) => v.host)
    .sort(
      (a, b) =>
        a.resources.gpus - b.resources.gpus ||
        a.resources.cpus - b.resources.cpus ||
        a.resources.memoryGb - b.resources.memoryGb ||
        a.name.localeCompare(b.name),
    );
  const best = fitting[0];
  if (best) return { kind: 'ssh', name: best.name, host: best, reason: `best fit of ${plural(fitting.length, 'fitting host')}` };
  const lines = verdicts.map((v) => formatProblem({ path: v.host.name, message: v.unmet.join('; ') }));
  throw new PlacementError(
    `no host in ${source} fits the job (needs ${describe(req)}):\n${lines.map((l) => `  - ${l}`).join('\n')}\n` +
      'Add or resize a host in hosts.yaml, lower the job\'s resources, or run it locally with --host local.',
    verdicts.map((v) => ({ name: v.host.name, reasons: v.unmet })),
  );
}
