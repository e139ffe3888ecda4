import { join } from 'node:path';

/** `~` and `~/...` in a configured path, taken from `home`; any other path unchanged. */
export function expandHome(p: string, home: string): string {
  if (p === '~') return home;
  return p.startsWith('~/') ? join(home, p.slice(2)) : p;
}
