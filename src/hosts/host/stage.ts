/**
 * Staging: the frozen parts of a bundle (job.json, inputs/, scripts/) uploaded into the run folder,
 * skipping files already there with the same sha256, then verified hash by hash.
 */
import { stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { isSafeRelativePath, sha256File, walkFiles } from '../../bundle';
import { ARTIFACTS_DIR, FROZEN_PARTS, INPUTS_DIR, JOB_FILE, PARTIAL_SUFFIX, RUNTIME_DIR, SCRIPTS_DIR } from '../../common/layout';
import { shellQuote as q } from '../../common/shell';
import type { StageResult } from '../../common/activities';
import type { HostContext } from './context';
import { StageVerificationError } from './errors';

interface LocalFile {
  local: string;
  sha: string;
  size: number;
  executable: boolean;
}

/** Uploads job.json, inputs/ and scripts/, skipping files already there with the same sha256, then verifies. */
export async function stageBundle(host: HostContext, runId: string, bundleDir: string, signal?: AbortSignal): Promise<StageResult> {
  const files: { local: string; remote: string }[] = [];
  for (const part of FROZEN_PARTS) {
    const found = part === JOB_FILE ? [{ path: part }] : await walkFiles(bundleDir, part);
    for (const f of found) files.push({ local: join(bundleDir, f.path), remote: f.path });
  }
  return uploadFiles(host, runId, files, [...FROZEN_PARTS], signal);
}

/**
 * Uploads local files to paths relative to the run folder, skipping those already there with the
 * same sha256; files under `roots` that the set does not name are removed; then verifies every hash.
 */
export async function uploadFiles(
  host: HostContext,
  runId: string,
  files: { local: string; remote: string }[],
  roots: string[],
  signal?: AbortSignal,
): Promise<StageResult> {
  const dir = host.runDir(runId);
  const local = await localFiles(files);
  const dirs = [...new Set([...local.keys()].map((p) => posix.dirname(p)).filter((d) => d !== '.'))];
  const remote = await remoteHashes(host, dir, roots, dirs, signal);
  const toSend = [...local.entries()].filter(([path, f]) => remote.get(path) !== f.sha);
  let bytesSent = 0;
  for (const [path, f] of toSend) {
    await host.transport.upload(f.local, `${dir}/${path}${PARTIAL_SUFFIX}`, { signal });
    bytesSent += f.size;
  }
  const extras = [...remote.keys()].filter((p) => !local.has(p));
  await putInPlace(host, dir, toSend, extras, signal);
  const after = await remoteHashes(host, dir, roots, [], signal);
  const wrong = [...local.entries()].filter(([p, f]) => after.get(p) !== f.sha).map(([p]) => p);
  if (wrong.length || after.size !== local.size) {
    throw new StageVerificationError(`copy on ${host.name} differs from the local files: ${wrong.slice(0, 5).join(', ') || 'extra files'}`);
  }
  return { filesSent: toSend.length, bytesSent, filesSkipped: local.size - toSend.length };
}

async function localFiles(files: { local: string; remote: string }[]): Promise<Map<string, LocalFile>> {
  const local = new Map<string, LocalFile>();
  for (const f of files) {
    if (!isSafeRelativePath(f.remote)) throw new Error(`cannot upload to unsafe path ${JSON.stringify(f.remote)}`);
    const st = await stat(f.local);
    local.set(f.remote, { local: f.local, sha: await sha256File(f.local), size: st.size, executable: (st.mode & 0o111) !== 0 });
  }
  return local;
}

/** Renames the uploaded `.orbit-part` files into place (executables 755) and removes `extras`. */
async function putInPlace(host: HostContext, dir: string, sent: [string, LocalFile][], extras: string[], signal?: AbortSignal): Promise<void> {
  // Paths go on stdin (NUL-separated), never into the script: any number of files, any names.
  const ops = [...sent.map(([path, f]) => `${f.executable ? 'x' : 'f'}\0${path}\0`), ...extras.map((p) => `r\0${p}\0`)];
  if (!ops.length) return;
  const script = `set -e
cd ${q(dir)}
while IFS= read -r -d '' op && IFS= read -r -d '' p; do
  case "$op" in
    r) rm -f -- "$p" ;;
    x) mv -f -- "$p${PARTIAL_SUFFIX}" "$p"; chmod 755 -- "$p" ;;
    *) mv -f -- "$p${PARTIAL_SUFFIX}" "$p" ;;
  esac
done`;
  const r = await host.transport.exec(script, { stdin: ops.join(''), signal });
  if (r.code !== 0) throw new StageVerificationError(`upload to ${host.name} could not finish: ${r.stderr.trim()}`);
}

/** Creates the run folder (and `mkdirs` in it) and returns the sha256 of every file under `roots` there. */
async function remoteHashes(host: HostContext, dir: string, roots: string[], mkdirs: string[], signal?: AbortSignal): Promise<Map<string, string>> {
  const script = [
    'set -e',
    `mkdir -p ${q(dir)} && cd ${q(dir)}`,
    `mkdir -p ${[INPUTS_DIR, SCRIPTS_DIR, RUNTIME_DIR, ARTIFACTS_DIR].join(' ')}`,
    'while IFS= read -r -d "" d; do mkdir -p -- "$d"; done',
    `find ${roots.map(q).join(' ')} -type f ! -name "*${PARTIAL_SUFFIX}" -print0 2>/dev/null | xargs -0 -r sha256sum --zero`,
  ].join('\n');
  const r = await host.transport.exec(script, { stdin: mkdirs.map((d) => d + '\0').join(''), signal });
  if (r.code !== 0) throw new StageVerificationError(`cannot prepare ${dir} on ${host.name}: ${r.stderr.trim() || `exit ${r.code}`}`);
  const out = new Map<string, string>();
  for (const record of r.stdout.split('\0')) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/s.exec(record.replace(/^\n/, ''));
    if (m && m[1] && m[2] && isSafeRelativePath(m[2])) out.set(m[2], m[1]);
  }
  return out;
}
