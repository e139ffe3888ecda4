import { readFileSync } from 'node:fs';

/** True when `pid` no longer runs: gone, or a zombie waiting for its parent (or init) to reap it. */
export function processGone(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return true;
  }
  return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
}
