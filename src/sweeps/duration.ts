/** Durations written in sweep files: `90s`, `5m`, `1h30m`, `2d`. Node-free. */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)/;

/** Milliseconds of a duration such as `90s`, `1h30m` or `2d`; a message naming the problem otherwise. */
export function parseDuration(text: string): { ok: true; ms: number } | { ok: false; message: string } {
  const s = text.trim().toLowerCase();
  if (!s) return { ok: false, message: 'is empty; write a duration such as 30s, 5m, 1h30m or 2d' };
  let rest = s;
  let ms = 0;
  while (rest) {
    const m = DURATION.exec(rest);
    if (!m) return { ok: false, message: `"${text}" is not a duration; write a number with a unit (ms, s, m, h, d), e.g. 30s, 5m, 1h30m or 2d` };
    ms += Number(m[1]) * UNIT_MS[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return { ok: true, ms: Math.round(ms) };
}

/** A short readable duration: 90000 -> `1m30s`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const parts: string[] = [];
  let left = ms;
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    const n = Math.floor(left / size);
    if (n) parts.push(`${n}${unit}`);
    left -= n * size;
  }
  if (left) parts.push(`${left}ms`);
  return parts.join('');
}
