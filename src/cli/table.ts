/** Plain-text tables and CSV for the command line. */

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

/** Columns padded to their widest cell, two spaces apart; the header in upper case. */
export function formatTable(headers: string[], rows: Cell[][]): string {
  const text = [headers.map((h) => h.toUpperCase()), ...rows.map((r) => headers.map((_, i) => cellText(r[i])))];
  const widths = headers.map((_, i) => Math.max(...text.map((r) => r[i]!.length)));
  return text.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

function csvField(v: Cell): string {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** RFC 4180 CSV: a header row, then one row per record; numbers at full precision, empty for none. */
export function formatCsv(headers: string[], rows: Cell[][]): string {
  return [headers, ...rows].map((r) => headers.map((_, i) => csvField(r[i])).join(',')).join('\n');
}
