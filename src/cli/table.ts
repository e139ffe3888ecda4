/** Plain-text tables (cli-table3, borderless) and RFC 4180 CSV (csv-stringify) for the command line. */
import Table from 'cli-table3';
import { stringify } from 'csv-stringify/sync';

export type Cell = string | number | boolean | null | undefined;

/** A number in at most `digits` significant digits, without trailing zeros; other values as text. */
export function cellText(v: Cell, digits = 4): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v)) return String(v);
    return String(Number(v.toPrecision(digits)));
  }
  return String(v);
}

const NO_BORDER = {
  top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
  bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
  left: '', 'left-mid': '', mid: '', 'mid-mid': '',
  right: '', 'right-mid': '', middle: '  ',
};

/** Columns padded to their widest cell, two spaces apart, the header in upper case (as kubectl and temporal print). */
export function formatTable(headers: string[], rows: Cell[][]): string {
  const table = new Table({ head: headers.map((h) => h.toUpperCase()), chars: NO_BORDER, style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0, compact: true } });
  for (const r of rows) table.push(headers.map((_, i) => cellText(r[i])));
  return table
    .toString()
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n');
}

/** RFC 4180 CSV: a header row, then one row per record; numbers at full precision, empty for none. */
export function formatCsv(headers: string[], rows: Cell[][]): string {
  const records = [headers, ...rows.map((r) => headers.map((_, i) => r[i] ?? ''))];
  return stringify(records, { cast: { boolean: (v) => String(v) }, record_delimiter: '\n' }).replace(/\n$/, '');
}
