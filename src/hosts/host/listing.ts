/** What a collection may fetch: the remote listing of runtime/ and artifacts/, parsed as untrusted and filtered. */
import { posix } from 'node:path';
import { isSafeRelativePath, type Problem } from '../../bundle';
import { ARTIFACTS_DIR, COLLECTED_PARTS, FROZEN_FILE, MANIFEST_FILE, PARTIAL_SUFFIX, RUNTIME_DIR, SECRET_ENV_FILE } from '../../common/layout';
import { COLLECTION_REPORT } from '../../common/protocol';
import { shellQuote as q } from '../../common/shell';
import { enterRunDir, SEAL_VANISHED } from './scripts';

export interface RemoteFile {
  path: string;
  size: number;
}

/** Files under runtime/ that are the control plane's own or secret; never collected. */
const NEVER_COLLECT = new Set([SECRET_ENV_FILE, FROZEN_FILE, `${FROZEN_FILE}.tmp`, `${MANIFEST_FILE}.tmp`, COLLECTION_REPORT, `${COLLECTION_REPORT}.tmp`]);

/**
 * Lists artifacts/ and runtime/ of the run folder as NUL-separated (type, path, size-or-link)
 * triples; with `seal`, first writes the manifest of a run that vanished without one. A part the
 * run folder lacks (a job that deleted its own runtime/) is reported as an `m` triple, what find
 * could not read as an `e` triple with find's message (20 at most), and the rest is listed all the same.
 */
export function listingScript(dir: string, seal: boolean): string {
  return `${enterRunDir(dir, `${q(dir)} does not exist on this host`)}
${seal ? SEAL_VANISHED : ''}
for part in ${ARTIFACTS_DIR} ${RUNTIME_DIR}; do
  if [ -L "$part" ]; then printf 'l\\0%s\\0%s\\0' "$part" "$(readlink "$part")"; continue; fi
  if [ ! -d "$part" ]; then printf 'm\\0%s\\0\\0' "$part"; continue; fi
  { errs=$(find "$part" -mindepth 1 \\( -type d -printf 'd\\0%p\\0\\0' \\) -o \\( -type f -printf 'f\\0%p\\0%s\\0' \\) -o \\( -type l -printf 'l\\0%p\\0%l\\0' \\) -o -printf 'o\\0%p\\0\\0' 2>&1 1>&3 3>&-); } 3>&1
  [ -z "$errs" ] || printf '%s\\n' "$errs" | head -n 20 | while IFS= read -r line; do printf 'e\\0%s\\0%s\\0' "$part" "$line"; done
done`;
}

/** Parses the remote listing (NUL-separated type, path, size-or-link triples), refusing anything unsafe. */
export function parseListing(text: string): { files: RemoteFile[]; refused: Problem[]; missingParts: string[] } {
  const fields = text.split('\0');
  const files: RemoteFile[] = [];
  const refused: Problem[] = [];
  const missingParts: string[] = [];
  for (let i = 0; i + 2 < fields.length; i += 3) {
    const [type, path = '', extra = ''] = fields.slice(i, i + 3);
    if (type === 'm' && (COLLECTED_PARTS as readonly string[]).includes(path)) {
      missingParts.push(path);
      continue;
    }
    if (type === 'e') {
      refused.push({ path: (COLLECTED_PARTS as readonly string[]).includes(path) ? `${path}/` : 'listing', message: `not readable on the host: ${extra.slice(0, 300)}` });
      continue;
    }
    // A name that is not valid UTF-8 on the host arrives with U+FFFD in place of its bytes: it cannot be asked for again by name.
    if (path.includes('\uFFFD')) {
      refused.push({ path: JSON.stringify(path), message: 'name is not valid UTF-8 on the host; not collected' });
      continue;
    }
    const top = path.split('/')[0] ?? '';
    if (!isSafeRelativePath(path) || !(COLLECTED_PARTS as readonly string[]).includes(top)) {
      refused.push({ path: JSON.stringify(path), message: 'unsafe path from the host; not collected' });
      continue;
    }
    if (NEVER_COLLECT.has(path) || path.endsWith(PARTIAL_SUFFIX)) continue;
    if (type === 'f') {
      if (!/^\d{1,15}$/.test(extra)) refused.push({ path, message: `size "${extra.slice(0, 20)}" is not a number; not collected` });
      else files.push({ path, size: Number(extra) });
    } else if (type === 'l') {
      const target = posix.normalize(posix.join(posix.dirname(path), extra));
      const escapes = extra.startsWith('/') || target.startsWith('..');
      refused.push({ path, message: `symbolic link to ${JSON.stringify(extra)}${escapes ? ', outside the bundle' : ''}; links are not collected` });
    } else if (type === 'o') {
      refused.push({ path, message: 'special file (not a plain file or folder); not collected' });
    }
  }
  return { files, refused, missingParts };
}

/** Drops files inside unit folders (`artifacts/<parent>/<unit>/...`) whose marker file is not there yet. */
export function withoutIncompleteUnits<T extends { path: string }>(files: T[], atomicDirs: { parent: string; marker: string }[]): T[] {
  if (!atomicDirs.length) return files;
  const present = new Set(files.map((f) => f.path));
  return files.filter((f) => {
    for (const a of atomicDirs) {
      const prefix = `${ARTIFACTS_DIR}/${a.parent}/`;
      if (!f.path.startsWith(prefix)) continue;
      const unit = f.path.slice(prefix.length).split('/')[0];
      if (!unit || !f.path.slice(prefix.length).includes('/')) return true; // a file directly in the parent
      return present.has(`${prefix}${unit}/${a.marker}`);
    }
    return true;
  });
}
