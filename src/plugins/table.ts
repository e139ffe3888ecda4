/** The table format's check (see TABLE_FORMAT): what the tasks' CSV inputs must be, checked before a bundle is built. */
import { constants, createReadStream } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Problem } from '../bundle';
import { TABLE_FORMAT } from './common-schema';

/** Problems (at most one) keeping `abs` from being a readable plain file; `expected` says what belongs there. */
export async function checkReadableFile(abs: string, field: string, expected: string): Promise<Problem[]> {
  try {
    const st = await stat(abs);
    if (!st.isFile()) return [{ path: field, message: `${abs} is not a file; expected ${expected}` }];
    await access(abs, constants.R_OK);
    return [];
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [{ path: field, message: `${abs} does not exist; expected ${expected}` }];
    return [{ path: field, message: `${abs} cannot be read (${code ?? (e as Error).message}); expected ${expected}` }];
  }
}

export interface TableInfo {
  /** Header names, the target last. */
  columns: string[];
  rows: number;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function cells(line: string): string[] {
  return line.split(',').map((c) => c.trim().replace(/^"(.*)"$/, '$1'));
}

/**
 * Checks a file against the table format (see TABLE_FORMAT): readable, a header of at least two
 * names, then rows of numbers with the header's cell count. `numericRows: false` checks the header only.
 * Reports the first problem found, naming the line.
 */
export async function checkTable(
  abs: string,
  field: string,
  options: { numericRows?: boolean } = {},
): Promise<{ problems: Problem[]; table?: TableInfo }> {
  const fileProblems = await checkReadableFile(abs, field, TABLE_FORMAT);
  if (fileProblems.length) return { problems: fileProblems };
  const fail = (message: string) => ({ problems: [{ path: field, message: `${abs} ${message}; expected ${TABLE_FORMAT}` }] });
  const lines = createInterface({ input: createReadStream(abs, { encoding: 'utf8' }), crlfDelay: Infinity });
  let columns: string[] | undefined;
  let rows = 0;
  let lineNo = 0;
  try {
    for await (const raw of lines) {
      lineNo++;
      const line = lineNo === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (!columns) {
        columns = cells(line);
        if (columns.length < 2 || columns.some((c) => c === '')) return fail('line 1: the header must name at least 2 columns (features, then the target)');
        if (columns.every((c) => NUMBER.test(c))) return fail('line 1 holds numbers, not column names: add a header row');
        if (options.numericRows === false) return { problems: [], table: { columns, rows: 0 } };
        continue;
      }
      if (line.trim() === '') continue;
      const row = cells(line);
      if (row.length !== columns.length) return fail(`line ${lineNo}: ${row.length} cells, but the header has ${columns.length}`);
      const bad = row.findIndex((c) => !NUMBER.test(c));
      if (bad >= 0) return fail(`line ${lineNo}: cell ${bad + 1} (${JSON.stringify(row[bad])}) is not a number`);
      rows++;
    }
  } finally {
    lines.close();
  }
  if (!columns) return fail('is empty');
  if (options.numericRows !== false && rows === 0) return fail('has a header but no data rows');
  return { problems: [], table: { columns, rows } };
}

