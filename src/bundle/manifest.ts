import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256File } from './hash';
import { ARTIFACTS_DIR, MANIFEST_FILE } from '../common/layout';
import { parseWith, type Problem } from './parse';
import { manifestEntrySchema, manifestEnvelopeSchema, type Manifest, type ManifestEntry } from './schema';

/** The largest manifest Orbit reads; a bigger one is refused as hostile. */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

export interface ManifestCheck {
  /** The manifest was present, valid, and every entry matched. */
  verified: boolean;
  manifestPresent: boolean;
  /** Entries present locally with the listed size and sha256. */
  verifiedFiles: string[];
  /** Entries absent locally. */
  missing: string[];
  /** Entries present with another size or digest. */
  mismatched: { path: string; reason: string }[];
  problems: Problem[];
}

/**
 * Parses manifest text from an untrusted source; returns problems instead of throwing. An entry that
 * is not valid (an unsafe path, a bad digest, a path listed twice) is refused on its own and listed
 * in `refused`; the other entries stand. Only an unusable whole (too big, not JSON, no files list)
 * makes it not ok.
 */
export function parseManifest(text: string): { ok: true; value: Manifest; refused: Problem[] } | { ok: false; problems: Problem[] } {
  if (text.length > MAX_MANIFEST_BYTES) return { ok: false, problems: [{ path: MANIFEST_FILE, message: `is ${text.length} bytes, over the ${MAX_MANIFEST_BYTES / 1024 / 1024} MiB limit` }] };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { ok: false, problems: [{ path: MANIFEST_FILE, message: `is not JSON (${(e as Error).message})` }] };
  }
  const envelope = parseWith(manifestEnvelopeSchema, raw, MANIFEST_FILE);
  if (!envelope.ok) return envelope;
  const files: ManifestEntry[] = [];
  const refused: Problem[] = [];
  const seen = new Set<string>();
  envelope.value.files.forEach((item, i) => {
    const entry = manifestEntrySchema.safeParse(item);
    const at = `${MANIFEST_FILE}.files[${i}]`;
    const named = (item as { path?: unknown } | null)?.path;
    const of = typeof named === 'string' ? ` (entry ${JSON.stringify(named).slice(0, 200)})` : '';
    if (!entry.success) {
      for (const issue of entry.error.issues) refused.push({ path: issue.path.length ? `${at}.${issue.path.join('.')}` : at, message: `${issue.message}${of}; entry ignored` });
    } else if (seen.has(entry.data.path)) refused.push({ path: at, message: `lists a path listed before${of}; entry ignored` });
    else {
      seen.add(entry.data.path);
      files.push(entry.data);
    }
  });
  return { ok: true, value: { schemaVersion: envelope.value.schemaVersion, createdAt: envelope.value.createdAt, files }, refused };
}

/** Reads `artifacts/manifest.json` of a local bundle, or undefined when there is none. */
export async function readLocalManifest(bundleDir: string): Promise<ReturnType<typeof parseManifest> | undefined> {
  let text: string;
  try {
    text = await readFile(join(bundleDir, MANIFEST_FILE), 'utf8');
  } catch {
    return undefined;
  }
  return parseManifest(text);
}

/**
 * Checks every manifest entry against the local `artifacts/` folder: presence, size and sha256.
 * `knownHashes` (path relative to artifacts/ -> sha256) spares hashing files just hashed by the caller.
 */
export async function verifyManifest(bundleDir: string, knownHashes?: Map<string, string>): Promise<ManifestCheck> {
  const result: ManifestCheck = { verified: false, manifestPresent: false, verifiedFiles: [], missing: [], mismatched: [], problems: [] };
  const parsed = await readLocalManifest(bundleDir);
  if (!parsed) {
    result.problems.push({ path: MANIFEST_FILE, message: 'is missing: the run did not finish writing its artifacts' });
    return result;
  }
  if (!parsed.ok) {
    result.problems.push(...parsed.problems);
    return result;
  }
  result.manifestPresent = true;
  result.problems.push(...parsed.refused);
  // Entries are checked 16 at a time (a manifest may list thousands of files); results keep its order.
  const entries = parsed.value.files;
  const verdicts: (string | { missing: true } | { mismatch: string } | undefined)[] = new Array(entries.length);
  let next = 0;
  const check = async (): Promise<void> => {
    for (let i = next++; i < entries.length; i = next++) {
      const entry = entries[i]!;
      const local = join(bundleDir, ARTIFACTS_DIR, entry.path);
      let st;
      try {
        st = await lstat(local);
      } catch {
        verdicts[i] = { missing: true };
        continue;
      }
      if (!st.isFile()) verdicts[i] = { mismatch: 'is not a plain file' };
      else if (st.size !== entry.size) verdicts[i] = { mismatch: `size ${st.size} != manifest ${entry.size}` };
      else if ((knownHashes?.get(entry.path) ?? (await sha256File(local))) !== entry.sha256) verdicts[i] = { mismatch: 'sha256 differs from manifest' };
      else verdicts[i] = entry.path;
    }
  };
  await Promise.all(Array.from({ length: 16 }, check));
  entries.forEach((entry, i) => {
    const v = verdicts[i];
    if (typeof v === 'string') result.verifiedFiles.push(v);
    else if (v && 'missing' in v) result.missing.push(entry.path);
    else if (v) result.mismatched.push({ path: entry.path, reason: v.mismatch });
  });
  for (const p of result.missing) result.problems.push({ path: `${ARTIFACTS_DIR}/${p}`, message: 'listed in the manifest but missing' });
  for (const m of result.mismatched) result.problems.push({ path: `${ARTIFACTS_DIR}/${m.path}`, message: m.reason });
  result.verified = result.problems.length === 0;
  return result;
}
