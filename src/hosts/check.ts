/**
 * `orbit hosts check`: one short script over a transport that reports what a host is (OS, kernel,
 * free disk under the work root, GPUs, python3), parsed defensively since the far side is untrusted.
 */
import { MANIFEST_FILE } from '../common/layout';
import { MARK } from '../common/protocol';
import { shellQuote } from '../common/shell';
import type { HostEntry } from './inventory';
import type { Transport } from './transport';

export interface HostFacts {
  /** PRETTY_NAME from /etc/os-release, else `uname -s`. */
  os: string;
  kernel: string;
  arch: string;
  hostname: string;
  /** The folder whose free space was measured: the work root, or its nearest existing parent. */
  diskPath: string;
  freeDiskBytes: number | null;
  /** One line per GPU from `nvidia-smi -L` (`GPU 0: NVIDIA A100 ... (UUID: ...)`); empty when none. */
  gpus: string[];
  /** The `nvidia-smi -L` output, "no GPU" when nvidia-smi is absent, or why it failed. */
  gpuSummary: string;
  /** python3 version (`3.11.4`), or null when python3 is missing (run.sh needs it for the manifest). */
  python3: string | null;
}

export interface CheckHostOptions {
  /** Absolute folder whose free space is reported; default the login user's home. */
  workRoot?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Opens each section of the script's output: the mark, a space, the section name. */
const SECTION = `${MARK.checkSection} `;

/** Runs the check script on the target and returns its facts. Rejects only when the target is unreachable. */
export async function checkHost(transport: Transport, options: CheckHostOptions = {}): Promise<HostFacts> {
  const root = options.workRoot ? shellQuote(options.workRoot) : '"$HOME"';
  const script = `
sec() { printf '\\n${SECTION}%s\\n' "$1"; }
sec os; sed -n 's/^PRETTY_NAME=//p' /etc/os-release 2>/dev/null | head -n 1; echo; uname -s 2>/dev/null
sec kernel; uname -r 2>/dev/null
sec arch; uname -m 2>/dev/null
sec hostname; hostname 2>/dev/null || uname -n 2>/dev/null
sec disk; d=${root}; while [ ! -e "$d" ] && [ "$d" != / ] && [ -n "$d" ]; do d=$(dirname -- "$d"); done; echo "$d"; df -Pk -- "$d" 2>/dev/null | tail -n 1
sec gpus
if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi -L 2>&1 | head -n 64; echo "exit=\${PIPESTATUS[0]}"; else echo "exit=missing"; fi
sec python3; python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || echo missing
sec end
`;
  const r = await transport.exec(script, { timeoutMs: options.timeoutMs ?? 60_000, signal: options.signal, maxOutputBytes: 256 * 1024 });
  return parseHostFacts(r.stdout);
}

/** Parses the check script's output; every field falls back to "unknown"/null rather than throwing. */
export function parseHostFacts(stdout: string): HostFacts {
  const sections = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const raw of stdout.split('\n')) {
    if (raw.startsWith(SECTION)) {
      current = [];
      sections.set(raw.slice(SECTION.length).trim(), current);
    } else current?.push(clean(raw));
  }
  const lines = (k: string) => (sections.get(k) ?? []).filter((l) => l.length > 0);
  const first = (k: string) => lines(k)[0] ?? 'unknown';

  const osLines = sections.get('os') ?? [];
  const pretty = unquote(osLines[0] ?? '');
  const os = pretty || lines('os')[0] || 'unknown';

  const disk = lines('disk');
  const diskPath = disk[0] ?? 'unknown';
  const df = /\s(\d+)\s+(\d+)\s+(\d+)\s+\d+%\s/.exec(` ${disk[1] ?? ''} `);
  const freeDiskBytes = df?.[3] ? Number(df[3]) * 1024 : null;

  const gpuLines = lines('gpus');
  const status = gpuLines.find((l) => l.startsWith('exit='))?.slice(5) ?? 'missing';
  const output = gpuLines.filter((l) => !l.startsWith('exit='));
  const gpus = output.filter((l) => /^GPU \d+: /.test(l));
  let gpuSummary: string;
  if (status === 'missing') gpuSummary = 'no GPU';
  else if (status !== '0') gpuSummary = `nvidia-smi failed (exit ${status}): ${output[0] ?? 'no output'}`;
  else gpuSummary = gpus.length ? gpus.join('\n') : 'no GPU';

  const py = first('python3');
  return {
    os,
    kernel: first('kernel'),
    arch: first('arch'),
    hostname: first('hostname'),
    diskPath,
    freeDiskBytes: Number.isSafeInteger(freeDiskBytes) ? freeDiskBytes : null,
    gpus: status === '0' ? gpus : [],
    gpuSummary,
    python3: /^\d+\.\d+\.\d+$/.test(py) ? py : null,
  };
}

/** Where the facts contradict hosts.yaml or will break runs; empty when all is well. */
export function factsWarnings(facts: HostFacts, host: HostEntry): string[] {
  const out: string[] = [];
  const want = host.resources.gpus;
  if (facts.gpus.length !== want) out.push(`hosts.yaml says ${want} gpus, the host shows ${facts.gpus.length} (${facts.gpuSummary.split('\n')[0]})`);
  const gpuType = host.resources.gpuType;
  if (gpuType && facts.gpus.length && !facts.gpus.every((g) => g.toLowerCase().includes(gpuType.toLowerCase()))) {
    out.push(`hosts.yaml says gpuType ${gpuType}, but nvidia-smi lists: ${facts.gpus[0]}`);
  }
  if (!facts.python3) out.push(`python3 is missing: runs cannot write ${MANIFEST_FILE}; install python3 on the host`);
  if (facts.freeDiskBytes !== null && facts.freeDiskBytes < 1024 ** 3) {
    out.push(`only ${(facts.freeDiskBytes / 1024 ** 2).toFixed(0)} MiB free under ${facts.diskPath}`);
  }
  return out;
}

/** Keeps printable text only and caps the length: the far side is untrusted. */
function clean(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '').trim().slice(0, 300);
}

function unquote(s: string): string {
  const m = /^"(.*)"$|^'(.*)'$/.exec(s);
  return (m ? (m[1] ?? m[2] ?? '') : s).trim();
}
