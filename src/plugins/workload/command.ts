/**
 * A job's `setup` and `run`: a shell string (the runner runs it with `bash -c` in the staged workdir) or
 * an argv list (run as is, no shell). commandProblems checks in the client what can be checked before
 * anything starts:
 *
 * - the command is not empty, and an argv list's first item names a program (not an option, not a
 *   `VAR=value` assignment, not a whole command line in one item);
 * - a shell string is valid bash (`bash -n`, when the client's bash is 4 or newer, so that a macOS
 *   bash 3.2 does not refuse newer syntax), and runs some program;
 * - the first command's program (leading `VAR=value` assignments and the wrappers exec, env, nohup and
 *   time skipped; it ends at the first operator: &&, ||, |, ;, a redirection, a newline): when it is a
 *   path relative to the workdir (it holds a '/': ./run.sh, bin/train), that file must be staged, and
 *   executable. When it is an interpreter of INTERPRETERS followed by a script (its first argument that
 *   is not an option or an option's value), the script must be staged: `python3 -u train.py`,
 *   `bash scripts/run.sh`. `python -m pkg.mod`, `python -c ...`, `bash -c ...` name no file.
 *
 * Not checked on the client, because the host decides: a program without '/' that is not an
 * interpreter (make, torchrun, accelerate, pip: the host's PATH), absolute paths, `~/...`, anything
 * holding `$` (a variable, a substitution), globs, and every command after the first (it may depend on
 * the ones before: `cd sub && ./run.sh`, or on files setup creates).
 *
 * A file that is on disk but not staged is named with the reason (".gitignore excludes it", a link
 * out of the workdir) and the fix.
 */
import { spawnSync } from 'node:child_process';
import { posix } from 'node:path';
import { parse } from 'shell-quote';
import type { Problem } from '../../bundle';

export type Command = string | readonly string[];

/** What the runner reads from the config: `{shell}` runs with bash -c, `{argv}` as is. */
export type RunnerCommand = { shell: string } | { argv: string[] };

/** The staged workdir's files as the checks need them: a WorkdirScan is one. */
export interface StagedListing {
  files: readonly { path: string; executable?: boolean }[];
  /** What the scan left out, and why; a folder covers everything under it. */
  dropped?: readonly { path: string; dir?: boolean; by?: string; reason: string }[];
}

/** Interpreters whose script argument is checked: python, python3 (and pythonX.Y), bash, sh. */
export const INTERPRETERS = ['python', 'python3', 'bash', 'sh'] as const;

/** Programs that run the rest of their command line: skipped to find the program they run. */
const WRAPPERS = new Set(['exec', 'env', 'nohup', 'time']);
const REDIRECTIONS = new Set(['>', '>>', '<', '>&']);
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;
const HINT = 'e.g. "python3 train.py --steps 100", or an argv list such as [python3, train.py]';

export function runnerCommand(command: Command): RunnerCommand {
  return typeof command === 'string' ? { shell: command } : { argv: [...command] };
}

/** The argv the runner executes for a command. */
export function commandArgv(command: Command): string[] {
  return typeof command === 'string' ? ['bash', '-c', command] : [...command];
}

interface Word {
  text: string;
  /** False for a glob or a word holding `$`: what it names is only known on the host. */
  literal: boolean;
}

/**
 * Problems of `command` (the request field `field`: setup or run). With `staged`, the files the first
 * command names are checked against the staged workdir; without it, only the command itself is.
 */
export function commandProblems(field: string, command: Command, staged?: StagedListing): Problem[] {
  if (typeof command === 'string') {
    if (!command.trim()) return [{ path: field, message: `is empty; give the command to run in the workdir, ${HINT}` }];
    const syntax = bashSyntaxError(command);
    if (syntax) return [{ path: field, message: `is not valid bash (${syntax}); fix the quoting or the syntax: the host runs it with bash -c in the workdir` }];
    const first = firstShellCommand(command);
    if (!first) return [{ path: field, message: `runs no program: ${JSON.stringify(command.trim())} only sets variables or holds comments; name the program to run, ${HINT}` }];
    if (first === 'unknown') return [];
    return staged ? fileProblems(() => field, first.program, first.args, staged) : [];
  }
  if (!command.length) return [{ path: field, message: `is an empty list; the first item names the program to run, ${HINT}` }];
  const program = command[0]!;
  const at = `${field}[0]`;
  if (!program.trim()) return [{ path: at, message: `is empty; the first item names the program to run, e.g. python3` }];
  if (program.startsWith('-')) return [{ path: at, message: `${JSON.stringify(program)} is an option, not a program; the first item names the program to run, e.g. [python3, train.py, ${program}]` }];
  if (ASSIGNMENT.test(program)) {
    return [{ path: at, message: `${JSON.stringify(program)} is a variable assignment, which an argv list would run as a program; set the variable in env, or give ${field} as a shell string such as "${program} python3 train.py"` }];
  }
  if (/\s/.test(program.trim())) {
    return [{ path: at, message: `${JSON.stringify(program)} holds a space: an argv list runs its first item as the program's name; split it into items ([${program.trim().split(/\s+/).join(', ')}]) or give ${field} as a shell string` }];
  }
  if (!staged) return [];
  return fileProblems((i) => `${field}[${i}]`, { text: program, literal: true }, command.slice(1).map((text) => ({ text, literal: true })), staged);
}

/**
 * The program and arguments of a shell string's first command that runs a program, 'unknown' when it
 * starts with something this does not follow (a subshell, a group), undefined when it runs none.
 */
function firstShellCommand(command: string): { program: Word; args: Word[] } | 'unknown' | undefined {
  // Newlines end a command as ';' does (shell-quote reads them as spaces); a comment ends at its line.
  let text = command.replace(/\\\r?\n/g, ' ').replace(/\r?\n/g, ' ;\n');
  for (;;) {
    let words: Word[] = [];
    let rest: string | undefined;
    let redirectTarget = false;
    for (const t of parse(text, (key: string) => `$${key}`)) {
      if (typeof t === 'string') {
        if (redirectTarget) redirectTarget = false;
        else if (t) words.push({ text: t, literal: !t.includes('$') });
        continue;
      }
      if ('comment' in t) {
        const nl = t.comment.indexOf('\n');
        if (nl >= 0) rest = t.comment.slice(nl + 1);
        break;
      }
      if (t.op === 'glob') {
        if (redirectTarget) redirectTarget = false;
        else words.push({ text: t.pattern, literal: false });
        continue;
      }
      if (REDIRECTIONS.has(t.op)) {
        // `2>&1`, `> log`: the file descriptor before and the target after are not words of the command.
        if (/^\d+$/.test(words.at(-1)?.text ?? '')) words.pop();
        redirectTarget = true;
        continue;
      }
      if (!words.length && (t.op === '(' || t.op === '<(')) return 'unknown';
      const found = takeProgram(words);
      if (found) return found;
      words = [];
    }
    const found = takeProgram(words);
    if (found) return found;
    if (rest === undefined) return undefined;
    text = rest;
  }
}

function takeProgram(words: Word[]): { program: Word; args: Word[] } | undefined {
  let i = 0;
  while (i < words.length && (ASSIGNMENT.test(words[i]!.text) || WRAPPERS.has(words[i]!.text))) i++;
  const p = words[i];
  return p ? { program: p, args: words.slice(i + 1) } : undefined;
}

type Interpreter = 'python' | 'shell';

function interpreterOf(program: string): Interpreter | undefined {
  const name = posix.basename(program);
  if (name === 'python' || name === 'python3' || /^python3\.\d+$/.test(name)) return 'python';
  if (name === 'bash' || name === 'sh') return 'shell';
  return undefined;
}

/** Per interpreter: short options that mean "no script file" (-c, -m, -s), that take a value, and long options that take one. */
const OPTIONS: Record<Interpreter, { stop: string; value: string; longValue: string[] }> = {
  python: { stop: 'cm', value: 'WX', longValue: ['--check-hash-based-pycs'] },
  shell: { stop: 'cs', value: 'oO', longValue: ['--rcfile', '--init-file'] },
};

/** The index in `args` of the script an interpreter runs, or undefined when it runs none from a file. */
function scriptIndex(kind: Interpreter, args: Word[]): number | undefined {
  const opts = OPTIONS[kind];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!.text;
    if (a === '--') return i + 1 < args.length ? i + 1 : undefined;
    if (a === '-') return undefined;
    if (kind === 'shell' && a.startsWith('+')) {
      if (a === '+o' || a === '+O') i++;
      continue;
    }
    if (!a.startsWith('-')) return i;
    if (a.startsWith('--')) {
      if (opts.longValue.includes(a)) i++;
      continue;
    }
    for (let k = 1; k < a.length; k++) {
      if (opts.stop.includes(a[k]!)) return undefined;
      if (opts.value.includes(a[k]!)) {
        if (k === a.length - 1) i++;
        break;
      }
    }
  }
  return undefined;
}

/** The program (when it is a path) and the interpreter's script must be staged files. */
function fileProblems(fieldAt: (argIndex: number) => string, program: Word, args: Word[], staged: StagedListing): Problem[] {
  const problems: Problem[] = [];
  const files = new Map(staged.files.map((f) => [f.path, f]));
  const check = (word: Word, index: number, role: 'program' | 'script', kind?: Interpreter) => {
    const message = pathProblem(word, role, kind, files, staged);
    if (message) problems.push({ path: fieldAt(index), message });
  };
  if (program.text.includes('/')) check(program, 0, 'program');
  const kind = program.literal ? interpreterOf(program.text) : undefined;
  if (kind) {
    const i = scriptIndex(kind, args);
    if (i !== undefined) check(args[i]!, i + 1, 'script', kind);
  }
  return problems;
}

function pathProblem(word: Word, role: 'program' | 'script', kind: Interpreter | undefined, files: Map<string, StagedListing['files'][number]>, staged: StagedListing): string | undefined {
  const p = word.text;
  if (!word.literal || p.startsWith('/') || p.startsWith('~') || p.includes('$')) return undefined;
  const rel = posix.normalize(p).replace(/\/+$/, '');
  if (rel === '..' || rel.startsWith('../')) return `${p} leads out of the workdir; the commands run in the staged workdir, so name a file inside it (relative to the workdir root)`;
  if (rel === '.') return undefined;
  const file = files.get(rel);
  if (file) {
    if (role === 'program' && file.executable === false) {
      const interpreter = rel.endsWith('.py') ? 'python3' : 'bash';
      return `${p} is not executable, so it cannot be run as a program; chmod +x ${rel} (in git: git update-index --chmod=+x ${rel}), or run it with its interpreter, e.g. "${interpreter} ${rel}"`;
    }
    return undefined;
  }
  if (kind === 'python' && files.has(`${rel}/__main__.py`)) return undefined;
  if (staged.files.some((f) => f.path.startsWith(`${rel}/`))) return `${p} is a folder of the workdir, not a file; name the ${role === 'program' ? 'program' : 'script'} to run`;
  const dropped = (staged.dropped ?? []).find((d) => d.path === rel || (rel.startsWith(`${d.path}/`) && d.dir !== false));
  if (dropped) {
    const where = dropped.path === rel ? '' : `its folder ${dropped.path}/ is left out: `;
    const fix =
      dropped.by === 'gitignore'
        ? `; re-include it with "!${dropped.path === rel ? rel : `${dropped.path}/`}" in workdir.exclude, or change that .gitignore`
        : dropped.by === 'exclude'
          ? '; remove that pattern from workdir.exclude'
          : '';
    return `${p} is not staged: ${where}${dropped.reason}${fix}`;
  }
  const name = posix.basename(rel);
  const similar = staged.files.find((f) => posix.basename(f.path) === name);
  return `${p} is not in the workdir (${staged.files.length} file${staged.files.length === 1 ? '' : 's'} staged${similar ? `; did you mean ${similar.path}?` : ''}); name a file relative to the workdir root`;
}

let bashMajor: number | undefined;

/** bash -n's complaint about a script, or undefined (also when the client has no bash 4 or newer to ask). */
function bashSyntaxError(script: string): string | undefined {
  const env = { ...process.env };
  delete env['BASH_ENV'];
  delete env['ENV'];
  if (bashMajor === undefined) {
    const v = spawnSync('bash', ['-c', 'echo "${BASH_VERSINFO[0]}"'], { encoding: 'utf8', timeout: 5000, env });
    bashMajor = v.status === 0 ? Number(v.stdout.trim()) || 0 : 0;
  }
  if (bashMajor < 4) return undefined;
  const r = spawnSync('bash', ['-n', '-c', script], { encoding: 'utf8', timeout: 5000, env });
  if (r.error || r.status === 0) return undefined;
  const line = r.stderr.split('\n').find((l) => l.trim()) ?? `exit ${r.status}`;
  return `bash -n: ${line.replace(/^bash: (-c: )?/, '').trim()}`;
}
