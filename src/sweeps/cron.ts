/**
 * Checks cron strings the way Temporal's scheduler reads them, so a bad one is refused before any
 * bundle or schedule is made. Node-free. Accepted, as by the server:
 *
 *   5 fields  minute hour day-of-month month day-of-week
 *   6 fields  ... year
 *   7 fields  second minute hour day-of-month month day-of-week year
 *   @yearly @annually @monthly @weekly @daily @midnight @hourly
 *   a trailing `# comment`
 *
 * Each field is a comma list of `*`, `N`, `N-M`, each optionally `/STEP`. Months accept names
 * (`jan`, `March`), days of week names (`mon`, `Fri`) and 0-7 (0 and 7 are Sunday). Time zones go in
 * the sweep's `schedule.timezone`, intervals in `schedule.interval`: `TZ=` and `@every` are refused here.
 */

type Mode = 'int' | 'month' | 'dow';

interface Field {
  name: string;
  min: number;
  max: number;
  mode: Mode;
}

const SECOND: Field = { name: 'second', min: 0, max: 59, mode: 'int' };
const MINUTE: Field = { name: 'minute', min: 0, max: 59, mode: 'int' };
const HOUR: Field = { name: 'hour', min: 0, max: 23, mode: 'int' };
const DAY_OF_MONTH: Field = { name: 'day of month', min: 1, max: 31, mode: 'int' };
const MONTH: Field = { name: 'month', min: 1, max: 12, mode: 'month' };
const DAY_OF_WEEK: Field = { name: 'day of week', min: 0, max: 7, mode: 'dow' };
const YEAR: Field = { name: 'year', min: 2000, max: 2100, mode: 'int' };

const LAYOUTS: Record<number, Field[]> = {
  5: [MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK],
  6: [MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK, YEAR],
  7: [SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK, YEAR],
};

const PREDEFINED: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const DAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

function value(text: string, field: Field, min: number): number | undefined {
  const lower = text.toLowerCase();
  if (field.mode === 'month' && lower.length >= 3) {
    const i = MONTHS.findIndex((m) => m.startsWith(lower));
    if (i >= 0) return i + 1 >= min ? i + 1 : undefined;
  }
  if (field.mode === 'dow' && lower.length >= 2) {
    const i = DAYS.findIndex((d) => d.startsWith(lower));
    if (i >= 0) return i >= min ? i : undefined;
  }
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n >= min && n <= field.max ? n : undefined;
}

function checkField(text: string, field: Field): string | undefined {
  const range = `${field.min}-${field.max}${field.mode === 'month' ? ' or jan-dec' : field.mode === 'dow' ? ' or sun-sat' : ''}`;
  for (const part of text.split(',')) {
    if (part === '') return `${field.name} "${text}" has an empty item between commas`;
    const slash = part.split('/');
    if (slash.length > 2) return `${field.name} "${part}" has more than one "/"`;
    const [span, step] = slash as [string, string | undefined];
    if (step !== undefined && !(/^\d+$/.test(step) && Number(step) >= 1)) return `${field.name} "${part}": the step after "/" must be a whole number of at least 1`;
    if (span === '*') continue;
    const dash = span.split('-');
    if (dash.length > 2) return `${field.name} "${part}" has more than one "-"`;
    const start = value(dash[0]!, field, field.min);
    if (start === undefined) return `${field.name} "${dash[0]}" is not in range ${range}`;
    if (dash.length === 2 && value(dash[1]!, field, start) === undefined) {
      return `${field.name} "${part}": the end must be in range ${range} and not before the start`;
    }
  }
  return undefined;
}

/** Why Temporal would refuse `expr` as a cron string, or undefined when it is valid. */
export function cronProblem(expr: string): string | undefined {
  let s = expr.trim();
  if (/^(CRON_)?TZ=/.test(s)) return 'do not put a time zone in the cron string; set schedule.timezone instead';
  s = s.split('#')[0]!.trim();
  if (!s) return 'is empty; write 5-7 fields such as "0 3 * * *" (03:00 every day) or @daily';
  if (s.startsWith('@every')) return '@every is an interval: write schedule.interval (e.g. interval: 6h) instead of cron';
  if (s.startsWith('@')) {
    if (!(s in PREDEFINED)) return `"${s}" is not one of ${Object.keys(PREDEFINED).join(', ')}`;
    s = PREDEFINED[s]!;
  }
  const fields = s.split(/\s+/);
  const layout = LAYOUTS[fields.length];
  if (!layout) {
    return `"${expr}" has ${fields.length} field${fields.length === 1 ? '' : 's'}; write 5 (minute hour day-of-month month day-of-week), 6 (plus year) or 7 (second first, plus year)`;
  }
  for (const [i, f] of fields.entries()) {
    const problem = checkField(f, layout[i]!);
    if (problem) return `"${expr}": ${problem}`;
  }
  return undefined;
}
