import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commandArgv, commandProblems, runnerCommand, type Command, type StagedListing } from '../../src/plugins/workload/command';
import { scanWorkdir } from '../../src/plugins/workload/workdir';
import { useTempDirs } from './helpers';

const tempDir = useTempDirs();

const staged: StagedListing = {
  files: [
    { path: 'train.py', executable: false },
    { path: 'run.sh', executable: true },
    { path: 'scripts/eval.sh', executable: false },
    { path: 'pkg/__init__.py', executable: false },
    { path: 'pkg/__main__.py', executable: false },
    { path: 'pkg/mod.py', executable: false },
    { path: 'src/model.py', executable: false },
  ],
  dropped: [
    { path: 'secret.py', dir: false, by: 'gitignore', reason: '.gitignore excludes it (pattern "secret.py")' },
    { path: 'build', dir: true, by: 'gitignore', reason: '.gitignore excludes it (pattern "build/")' },
    { path: 'data', dir: true, by: 'exclude', reason: 'workdir.exclude excludes it (pattern "data/")' },
    { path: 'link.py', dir: false, by: 'skipped', reason: 'a symbolic link to /etc/x.py, outside the workdir: a bundle never holds a path that leads out of it' },
  ],
};

const problems = (command: Command, field = 'run') => commandProblems(field, command, staged).map((p) => `${p.path}: ${p.message}`);

const bashMajor = Number(spawnSync('bash', ['-c', 'echo "${BASH_VERSINFO[0]}"'], { encoding: 'utf8' }).stdout.trim()) || 0;

describe('commandProblems: accepted commands', () => {
  it.each<[string, Command]>([
    ['an interpreter with options before the script', 'python3 -u train.py --x 1'],
    ['an executable path in the workdir', './run.sh'],
    ['assignments first, operators after', 'FOO=1 python train.py && echo done'],
    ['an argv list', ['python3', 'train.py', '--lr', '0.1']],
    ['an argv list running a staged executable', ['./run.sh', '--fast']],
    ['a module', 'python -m pkg.mod --steps 3'],
    ['options combined with -m', 'python3 -um pkg.mod'],
    ['a program on the host PATH', 'make train'],
    ['torchrun: not an interpreter of the list, so not checked', 'torchrun --nproc-per-node 2 missing.py'],
    ['a script run by sh, executable or not', 'sh scripts/eval.sh'],
    ['bash -c', ['bash', '-c', 'python3 missing.py']],
    ['an option that takes a value', 'python -W ignore train.py'],
    ['a folder with __main__.py', 'python pkg'],
    ['a leading ./ and a trailing redirection', 'python ./train.py > logs/out.txt 2>&1'],
    ['a leading redirection', '2>/dev/null python3 train.py'],
    ['a comment line first', '# train\npython3 train.py'],
    ['a multi-line script with continuations', 'set -euo pipefail\npip install -r requirements.txt\npython3 train.py \\\n  --steps 10'],
    ['an assignment on its own line', 'FOO=1\npython3 train.py'],
    ['wrappers', 'exec env CUDA_VISIBLE_DEVICES=0 python3 src/model.py'],
    ['a later command is not checked', 'cd src && ./missing.sh'],
    ['a variable', 'python3 $SCRIPT'],
    ['a glob', 'bash scripts/*.sh'],
    ['an absolute path on the host', '/usr/bin/python3 -c "print(1)"'],
    ['a path in home', '~/bin/tool --x'],
    ['a subshell', '(cd src && python3 model.py)'],
    ['a pinned python', 'python3.11 train.py'],
  ])('%s: %j', (_what, command) => {
    expect(problems(command)).toEqual([]);
  });

  it('checks only the command itself without a staged listing', () => {
    expect(commandProblems('run', 'python3 missing.py')).toEqual([]);
    expect(commandProblems('run', ['./missing.sh'])).toEqual([]);
    expect(commandProblems('run', '')).toHaveLength(1);
  });
});

describe('commandProblems: refusals', () => {
  it('refuses an empty command', () => {
    expect(problems('')).toEqual(['run: is empty; give the command to run in the workdir, e.g. "python3 train.py --steps 100", or an argv list such as [python3, train.py]']);
    expect(problems('  \n ', 'setup')).toEqual(['setup: is empty; give the command to run in the workdir, e.g. "python3 train.py --steps 100", or an argv list such as [python3, train.py]']);
    expect(problems([])).toEqual(['run: is an empty list; the first item names the program to run, e.g. "python3 train.py --steps 100", or an argv list such as [python3, train.py]']);
  });

  it("refuses an argv list whose first item is not a program's name", () => {
    expect(problems(['', 'train.py'])).toEqual(['run[0]: is empty; the first item names the program to run, e.g. python3']);
    expect(problems(['--lr', '1'])).toEqual(['run[0]: "--lr" is an option, not a program; the first item names the program to run, e.g. [python3, train.py, --lr]']);
    expect(problems(['FOO=1', 'python3', 'train.py'])).toEqual([
      'run[0]: "FOO=1" is a variable assignment, which an argv list would run as a program; set the variable in env, or give run as a shell string such as "FOO=1 python3 train.py"',
    ]);
    expect(problems(['python3 train.py'])).toEqual([
      'run[0]: "python3 train.py" holds a space: an argv list runs its first item as the program\'s name; split it into items ([python3, train.py]) or give run as a shell string',
    ]);
  });

  it('refuses a shell string that runs no program', () => {
    expect(problems('FOO=1 BAR=2')).toEqual([
      'run: runs no program: "FOO=1 BAR=2" only sets variables or holds comments; name the program to run, e.g. "python3 train.py --steps 100", or an argv list such as [python3, train.py]',
    ]);
    expect(problems('# nothing yet')).toHaveLength(1);
  });

  it.skipIf(bashMajor < 4)('refuses a shell string bash cannot parse', () => {
    expect(problems('python3 "train.py')).toEqual([
      "run: is not valid bash (bash -n: line 1: unexpected EOF while looking for matching `\"'); fix the quoting or the syntax: the host runs it with bash -c in the workdir",
    ]);
    expect(problems('&& python3 train.py')).toEqual([expect.stringMatching(/^run: is not valid bash \(bash -n: .*syntax error near unexpected token `&&'/)]);
  });

  it('refuses a script that is not in the workdir, suggesting a file of the same name', () => {
    expect(problems('python3 missing.py')).toEqual(['run: missing.py is not in the workdir (7 files staged); name a file relative to the workdir root']);
    expect(problems('python3 model.py --x 1')).toEqual(['run: model.py is not in the workdir (7 files staged; did you mean src/model.py?); name a file relative to the workdir root']);
    expect(problems(['python3', '-u', 'missing.py'])).toEqual(['run[2]: missing.py is not in the workdir (7 files staged); name a file relative to the workdir root']);
    expect(problems('bash -e ./missing.sh', 'setup')).toEqual(['setup: ./missing.sh is not in the workdir (7 files staged); name a file relative to the workdir root']);
  });

  it('refuses a program path that is not in the workdir, not executable, or a folder', () => {
    expect(problems('./missing.sh --x')).toEqual(['run: ./missing.sh is not in the workdir (7 files staged); name a file relative to the workdir root']);
    expect(problems(['bin/train'])).toEqual(['run[0]: bin/train is not in the workdir (7 files staged); name a file relative to the workdir root']);
    expect(problems('./train.py')).toEqual([
      'run: ./train.py is not executable, so it cannot be run as a program; chmod +x train.py (in git: git update-index --chmod=+x train.py), or run it with its interpreter, e.g. "python3 train.py"',
    ]);
    expect(problems('./scripts')).toEqual(['run: ./scripts is a folder of the workdir, not a file; name the program to run']);
  });

  it('names why a file on disk is not staged, and the fix', () => {
    expect(problems('python3 secret.py')).toEqual([
      'run: secret.py is not staged: .gitignore excludes it (pattern "secret.py"); re-include it with "!secret.py" in workdir.exclude, or change that .gitignore',
    ]);
    expect(problems('./build/run.sh')).toEqual([
      'run: ./build/run.sh is not staged: its folder build/ is left out: .gitignore excludes it (pattern "build/"); re-include it with "!build/" in workdir.exclude, or change that .gitignore',
    ]);
    expect(problems('bash data/prep.sh')).toEqual(['run: data/prep.sh is not staged: its folder data/ is left out: workdir.exclude excludes it (pattern "data/"); remove that pattern from workdir.exclude']);
    expect(problems('python link.py')).toEqual(['run: link.py is not staged: a symbolic link to /etc/x.py, outside the workdir: a bundle never holds a path that leads out of it']);
  });

  it('refuses a path that leads out of the workdir', () => {
    expect(problems('python3 ../other/train.py')).toEqual([
      'run: ../other/train.py leads out of the workdir; the commands run in the staged workdir, so name a file inside it (relative to the workdir root)',
    ]);
  });

  it('checks against a real scan: a script .gitignore drops is named with its pattern', async () => {
    const root = await tempDir();
    for (const [name, text] of Object.entries({ '.gitignore': '*.py\n!main.py\n', 'main.py': 'x', 'train.py': 'x', 'tools/.gitignore': 'gen/\n', 'tools/gen/prep.sh': 'x' })) {
      mkdirSync(dirname(join(root, name)), { recursive: true });
      writeFileSync(join(root, name), text);
    }
    const scan = await scanWorkdir(root);
    expect(commandProblems('run', 'python main.py', scan)).toEqual([]);
    expect(commandProblems('run', 'python train.py', scan)).toEqual([
      { path: 'run', message: 'train.py is not staged: .gitignore excludes it (pattern "*.py"); re-include it with "!train.py" in workdir.exclude, or change that .gitignore' },
    ]);
    expect(commandProblems('setup', ['bash', 'tools/gen/prep.sh'], scan)).toEqual([
      {
        path: 'setup[1]',
        message: 'tools/gen/prep.sh is not staged: its folder tools/gen/ is left out: tools/.gitignore excludes it (pattern "gen/"); re-include it with "!tools/gen/" in workdir.exclude, or change that .gitignore',
      },
    ]);
    const fixed = await scanWorkdir(root, { exclude: ['!train.py', '!tools/gen/'] });
    expect(commandProblems('run', 'python train.py', fixed)).toEqual([]);
    expect(commandProblems('setup', ['bash', 'tools/gen/prep.sh'], fixed)).toEqual([]);
  });
});

describe('runnerCommand and commandArgv', () => {
  it('renders a shell string and an argv list for the runner', () => {
    expect(runnerCommand('python3 train.py && echo done')).toEqual({ shell: 'python3 train.py && echo done' });
    expect(runnerCommand(['python3', 'train.py'])).toEqual({ argv: ['python3', 'train.py'] });
    expect(commandArgv('make train')).toEqual(['bash', '-c', 'make train']);
    expect(commandArgv(['./run.sh', '--x'])).toEqual(['./run.sh', '--x']);
  });
});
