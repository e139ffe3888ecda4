/**
 * What every command writes through: `out` is the command's answer (stdout: tables, ids, JSON), `note`
 * is for people (stderr: progress, hints, footers), so `orbit list | wc -l` counts runs and
 * `orbit status ID -o json | jq` parses. Also the one time format and the -o renderers.
 */
export interface Io {
  out(line: string): void;
  note(line: string): void;
}

export const stdio: Io = {
  out: (s) => console.log(s),
  note: (s) => console.error(s),
};

/** -o: text for people, json or yaml for programs. */
export type OutputFormat = 'text' | 'json' | 'yaml';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['text', 'json', 'yaml'];

/**
 * Prints `data` as JSON (Dates as ISO strings, undefined fields dropped) or YAML, or calls `text` for
 * people. JSON and YAML go out in one write so a pipe gets one document.
 */
export async function emit(io: Io, format: OutputFormat, data: unknown, text: () => void | Promise<void>): Promise<void> {
  if (format === 'json') io.out(JSON.stringify(data, null, 2));
  else if (format === 'yaml') {
    const { stringify } = await import('yaml');
    io.out(stringify(JSON.parse(JSON.stringify(data)) as unknown).trimEnd());
  } else await text();
}

/**
 * The one time format people read: local time with its zone, `2026-12-01 21:04:05 UTC` (or `CET`,
 * `GMT+1`...). JSON output carries ISO 8601 instead.
 */
export function formatTime(t: Date | string | undefined | null): string {
  if (t === undefined || t === null || t === '') return '-';
  const d = typeof t === 'string' ? new Date(t) : t;
  if (Number.isNaN(d.getTime())) return String(t);
  const p = (n: number) => String(n).padStart(2, '0');
  // Made per call: the zone is read when a formatter is made, and TZ may change (tests do).
  const zone = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((x) => x.type === 'timeZoneName')?.value ?? '';
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}${zone ? ` ${zone}` : ''}`;
}
