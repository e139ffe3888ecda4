/** Hostile inputs the CLI tests share. */

/** The "billion laughs": 9 levels of 9 aliases each, 9^9 strings once expanded, from 72 alias nodes. */
export const ALIAS_BOMB = [
  'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  ...'bcdefghi'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`),
].join('\n');
