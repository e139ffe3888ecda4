/**
 * The one way Orbit reads YAML (and JSON) it is given: request files, sweep files and hosts.yaml.
 * Input is bounded before it is parsed and while it is turned into data:
 *
 * - size: at most `YAML_LIMITS.maxBytes` (1 MiB), checked before the text is read whole;
 * - aliases: at most `YAML_LIMITS.maxAliases` (100) alias nodes (`*name`) in a document, and no
 *   anchored value copied more than that many times once aliases inside aliases are expanded (the
 *   `yaml` library's `maxAliasCount`), so an alias bomb ("billion laughs": 72 aliases, 9^9 copies) is
 *   refused instead of expanded;
 * - duplicate keys are found in one pass over each mapping (the library's own check compares every
 *   key with every earlier one, quadratic in the number of keys).
 *
 * Every refusal is a YamlInputError whose problems name a line and column where there is one.
 * Imports nothing of the CLI: src/hosts and src/sweeps use it too.
 */
import { open } from 'node:fs/promises';
import { isScalar, LineCounter, parseDocument, visit, type Document } from 'yaml';

export const YAML_LIMITS = {
  /** Largest file or text accepted, in bytes (1 MiB). */
  maxBytes: 1024 * 1024,
  /** Most alias nodes in a document, and most copies of an anchored value once aliases are expanded. */
  maxAliases: 100,
} as const;

export type YamlLimits = { maxBytes: number; maxAliases: number };

/** One reason YAML input was refused; `line` and `column` (1-based) when it has a place. */
export interface YamlProblem {
  line?: number;
  column?: number;
  message: string;
}

/** Thrown when YAML input is refused: over the size limit, not valid YAML, or aliases past the limit. */
export class YamlInputError extends Error {
  constructor(
    readonly source: string,
    /** `syntax`: not valid YAML; `limit`: over the size or alias limit, or nested too deeply to read. */
    readonly kind: 'syntax' | 'limit',
    readonly problems: YamlProblem[],
    options?: { cause?: unknown },
  ) {
    super(`${source}: ${yamlRefusal({ kind, problems })}`, options);
    this.name = 'YamlInputError';
  }
}

/** One line for a refusal: `not valid YAML: line 3, column 5: ... (and 2 more YAML problems)`, or the limit passed. */
export function yamlRefusal(e: Pick<YamlInputError, 'kind' | 'problems'>): string {
  const [first, ...rest] = e.problems;
  const more = rest.length ? ` (and ${rest.length} more YAML problem${rest.length === 1 ? '' : 's'})` : '';
  return `${e.kind === 'syntax' ? 'not valid YAML: ' : ''}${first ? formatYamlProblem(first) : 'refused'}${more}`;
}

/** `line 3, column 5: Map keys must be unique`, or the message alone when it has no place. */
export function formatYamlProblem(p: YamlProblem): string {
  return p.line ? `line ${p.line}, column ${p.column ?? 1}: ${p.message}` : p.message;
}

const MiB = 1024 * 1024;
const sizeText = (bytes: number) => (bytes % MiB === 0 ? `${bytes / MiB} MiB` : `${bytes} bytes`);

function tooLarge(source: string, size: number | undefined, maxBytes: number): YamlInputError {
  const what = size === undefined ? 'is larger than' : `is ${size} bytes, over`;
  return new YamlInputError(source, 'limit', [{ message: `${what} the ${sizeText(maxBytes)} (${maxBytes}-byte) limit on YAML/JSON input; make the file smaller` }]);
}

/**
 * Reads a file as UTF-8 text, refusing one over `maxBytes` without reading it whole (a pipe or a file
 * that grows is read only up to the limit). File system errors (ENOENT, EACCES, ...) are thrown as is.
 */
export async function readYamlText(path: string, limits: Partial<YamlLimits> = {}): Promise<string> {
  const maxBytes = limits.maxBytes ?? YAML_LIMITS.maxBytes;
  const file = await open(path, 'r');
  try {
    const { size, isFile } = await file.stat().then((s) => ({ size: s.size, isFile: s.isFile() }));
    if (isFile && size > maxBytes) throw tooLarge(path, size, maxBytes);
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await file.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) throw tooLarge(path, undefined, maxBytes);
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    await file.close();
  }
}

/** The first line of a `yaml` library message, without the position it repeats. */
const firstLine = (message: string) => (message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');

/**
 * Parses YAML (or JSON) text into plain data within the limits; throws YamlInputError listing every
 * syntax problem with its line and column. `source` names the input in messages (a file path).
 */
export function parseYaml(text: string, source: string, limits: Partial<YamlLimits> = {}): unknown {
  const maxBytes = limits.maxBytes ?? YAML_LIMITS.maxBytes;
  const maxAliases = limits.maxAliases ?? YAML_LIMITS.maxAliases;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) throw tooLarge(source, bytes, maxBytes);
  try {
    return toData(text, source, maxAliases);
  } catch (e) {
    if (e instanceof YamlInputError) throw e;
    if (e instanceof ReferenceError && /alias/i.test(e.message)) {
      throw new YamlInputError(
        source,
        'limit',
        [{ message: `its aliases (*name) expand to more than ${maxAliases} copies; write the values out instead of nesting anchors and aliases` }],
        { cause: e },
      );
    }
    throw unparseable(source, e);
  }
}

function toData(text: string, source: string, maxAliases: number): unknown {
  const lineCounter = new LineCounter();
  // uniqueKeys: false: the library's check is quadratic; duplicateKeys() below does it in one pass.
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: false, lineCounter });
  const problems: YamlProblem[] = doc.errors.map((e) => {
    const pos = e.linePos?.[0];
    return { line: pos?.line, column: pos?.col, message: firstLine(e.message) };
  });
  if (!problems.length) problems.push(...duplicateKeys(doc, lineCounter));
  if (problems.length) throw new YamlInputError(source, 'syntax', problems);
  const aliases = aliasNodes(doc, maxAliases);
  if (aliases.count > maxAliases) {
    const at = lineCounter.linePos(aliases.firstOverAt);
    throw new YamlInputError(source, 'limit', [
      { line: at.line, column: at.col, message: `more than ${maxAliases} aliases (*name); write the values out instead of referring to anchors` },
    ]);
  }
  // The library counts the anchored node as one of its copies: 100 aliases of one anchor are 101.
  return doc.toJS({ maxAliasCount: maxAliases + 1 });
}

/** A parser that gave up (e.g. nesting deeper than the call stack): one problem, not a stack trace. */
function unparseable(source: string, e: unknown): YamlInputError {
  if (e instanceof RangeError) return new YamlInputError(source, 'limit', [{ message: 'nests too deeply to be read; flatten it' }], { cause: e });
  return new YamlInputError(source, 'syntax', [{ message: `cannot be read as YAML: ${firstLine(e instanceof Error ? e.message : String(e))}` }], { cause: e });
}

/** Keys repeated in one mapping, in one pass (a Set per mapping), with the message the `yaml` library uses. */
function duplicateKeys(doc: Document, lineCounter: LineCounter): YamlProblem[] {
  const offsets: number[] = [];
  visit(doc, {
    Map(_key, map) {
      // Keys as the data will hold them (1 and "1" are one key of a plain object); the library compares
      // other keys (mappings, lists as keys) by identity, so those are never equal.
      const seen = new Set<string>();
      for (const pair of map.items) {
        const key = pair.key;
        if (!isScalar(key)) continue;
        const name = String(key.value);
        if (seen.has(name)) offsets.push(key.range?.[0] ?? 0);
        seen.add(name);
      }
    },
  });
  return offsets
    .sort((a, b) => a - b)
    .map((offset) => {
      const at = lineCounter.linePos(offset);
      return { line: at.line, column: at.col, message: 'Map keys must be unique' };
    });
}

/** How many alias nodes the document has, and where the first one past the limit is. */
function aliasNodes(doc: Document, max: number): { count: number; firstOverAt: number } {
  let count = 0;
  let firstOverAt = 0;
  visit(doc, {
    Alias(_key, node) {
      count += 1;
      if (count === max + 1) firstOverAt = node.range?.[0] ?? 0;
    },
  });
  return { count, firstOverAt };
}
