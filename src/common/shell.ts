/** Quoting for the bash scripts Orbit writes and sends to hosts. Node-free, dependency-free. */

/** Quotes one word for POSIX sh: plain words stay as they are, anything else goes in single quotes. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./=:@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
