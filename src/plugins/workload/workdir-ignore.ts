/**
 * The rules that leave paths out of a workdir: every `.gitignore` of a local folder, rebased onto the
 * workdir root, then the request's `exclude` patterns (gitignore syntax, relative to the workdir root),
 * in one matcher where the last match wins as in git; and the checks that refuse an `exclude` pattern
 * that cannot mean what was meant. Matching is the `ignore` package's.
 */
import { relative } from 'node:path';
import ignore from 'ignore';
import type { Problem } from '../../bundle';
import type { WorkdirDrop } from './workdir-types';

const EXCLUDE_SOURCE = 'workdir.exclude';

/**
 * Every .gitignore met so far (rebased onto the workdir root) then `exclude`, in one matcher: last match wins, as in git.
 * - `.gitignore` files apply at every level as git reads them: a nested one to its own folder, the
 *   deeper one winning, negations, folder patterns (`build/`). Not read: .gitignore files above the
 *   workdir root, .git/info/exclude and the global excludes file (the workdir is its own root).
 * - `exclude` comes after every .gitignore and wins: a pattern drops what .gitignore keeps, and a
 *   negation (`!data/small/`) re-includes what it drops.
 */
export class WorkdirRules {
  private readonly gitignore: { pattern: string; mark: string }[] = [];
  private readonly exclude: { pattern: string; mark: string }[];
  private readonly origins: { file: string; pattern: string }[] = [];
  private matcher: ReturnType<typeof ignore>;

  constructor(exclude: readonly string[]) {
    this.exclude = exclude.map((pattern) => ({ pattern, mark: this.origin(EXCLUDE_SOURCE, pattern) }));
    this.matcher = this.build();
  }

  /** Adds the lines of the .gitignore in folder `dir` ('' for the root). */
  addGitignore(dir: string, text: string): void {
    const file = dir ? `${dir}/.gitignore` : '.gitignore';
    for (const line of text.split(/\r?\n/)) {
      const pattern = rebase(line, dir);
      if (pattern !== undefined) this.gitignore.push({ pattern, mark: this.origin(file, line.trim()) });
    }
    this.matcher = this.build();
  }

  /** Why `path` is left out, or undefined when it is kept. */
  test(path: string, dir: boolean): WorkdirDrop | undefined {
    const r = this.matcher.test(dir ? `${path}/` : path);
    if (!r.ignored || !r.rule) return undefined;
    const origin = this.origins[Number(r.rule.mark)] ?? { file: '.gitignore', pattern: r.rule.pattern };
    return { path, dir, by: origin.file === EXCLUDE_SOURCE ? 'exclude' : 'gitignore', reason: `${origin.file} excludes it (pattern ${JSON.stringify(origin.pattern)})` };
  }

  private origin(file: string, pattern: string): string {
    this.origins.push({ file, pattern });
    return String(this.origins.length - 1);
  }

  private build(): ReturnType<typeof ignore> {
    return ignore({ ignorecase: false }).add([...this.gitignore, ...this.exclude]);
  }
}

/**
 * A line of the .gitignore in `dir`, as a pattern relative to the workdir root: a pattern with a '/'
 * before its end is anchored to `dir`, one without matches at any depth below it (gitignore(5)).
 */
function rebase(line: string, dir: string): string | undefined {
  if (!line.trim() || line.startsWith('#')) return undefined;
  if (!dir) return line;
  const negative = line.startsWith('!');
  const body = negative ? line.slice(1) : line;
  const bare = body.trimEnd().replace(/\/+$/, '');
  if (!bare) return undefined;
  const prefix = `${dir.replace(/[\\*?[\]!#]/g, '\\$&')}/`;
  return (negative ? '!' : '') + (bare.includes('/') ? prefix + body.replace(/^\/+/, '') : `${prefix}**/${body}`);
}

/**
 * The `exclude` patterns that cannot mean what was meant (empty, a comment, '..', './', an absolute
 * path under `root`), each named `workdir.exclude[i]`.
 */
export function excludeProblems(exclude: readonly string[], root?: string): Problem[] {
  const problems: Problem[] = [];
  exclude.forEach((p, i) => {
    const fail = (message: string) => problems.push({ path: `workdir.exclude[${i}]`, message });
    const body = p.startsWith('!') ? p.slice(1) : p;
    if (!p.trim()) fail('is empty; give a gitignore pattern such as data/raw/ or *.ckpt, or remove the entry');
    else if (p.startsWith('#')) fail(`${JSON.stringify(p)} starts with '#', which gitignore syntax reads as a comment; write \\${p} to match a name starting with '#', or remove it`);
    else if (root && (body === root || body.startsWith(`${root}/`))) {
      fail(`${JSON.stringify(p)} is an absolute path; patterns are relative to the workdir root: write ${JSON.stringify((p.startsWith('!') ? '!' : '') + (relative(root, body) || '/'))}`);
    } else if (body.split('/').includes('..')) fail(`${JSON.stringify(p)} reaches out of the workdir with '..'; patterns are relative to the workdir root (gitignore syntax), e.g. data/raw/`);
    else if (body.startsWith('./')) fail(`${JSON.stringify(p)} starts with './', which gitignore syntax never matches; write ${JSON.stringify(p.replace('./', ''))} (patterns are relative to the workdir root)`);
  });
  return problems;
}
