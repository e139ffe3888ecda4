import { describe, expect, it } from 'vitest';
import { buildProgram, main } from '../../src/cli/main';
import { CliError } from '../../src/cli/cli-error';
import { formatTime } from '../../src/cli/io';
import { orbit } from '../helpers/orbit-cli';
import type { Command } from 'commander';

/** Every command path of the program: ['submit'], ['hosts', 'check'], ... */
function paths(c: Command, prefix: string[] = []): string[][] {
  return c.commands.filter((x) => x.name() !== 'help').flatMap((x) => [[...prefix, x.name()], ...paths(x, [...prefix, x.name()])]);
}

async function run(argv: string[]): Promise<{ code: number | Error; out: string[]; note: string[] }> {
  const out: string[] = [];
  const note: string[] = [];
  const code = await main(argv, (s) => out.push(s), (s) => note.push(s)).catch((e: Error) => e);
  return { code, out, note };
}

describe('the command line', () => {
  const all = paths(buildProgram({ out: () => undefined, note: () => undefined }, () => undefined));

  it('has help for every command, on stdout, exit 0', async () => {
    expect(all.length).toBeGreaterThan(25);
    for (const p of all) {
      const r = await run([...p, '--help']);
      expect(r.code, p.join(' ')).toBe(0);
      expect(r.out.join('\n'), p.join(' ')).toContain(`Usage: orbit ${p.join(' ')}`);
    }
  });

  it('refuses an unknown flag or command with one line naming the help to read, exit 2', async () => {
    for (const [argv, want] of [
      [['list', '--gpus', '1'], /^unknown option '--gpus'; see orbit list --help$/],
      [['submit', 'f.yaml', '--gpus', '1'], /^unknown option '--gpus'; see orbit submit --help$/],
      [['hosts', 'check'], /^missing required argument 'name'; see orbit hosts check --help$/],
      [['sumbit', 'x'], /^unknown command 'sumbit' \(Did you mean submit\?\); see orbit --help$/],
      [['list', '-o', 'xml'], /option '-o, --output <format>' argument 'xml' is invalid. Allowed choices are text, json, yaml, csv.; see orbit list --help/],
      [['submit', 'f.yaml', '--priority', '5000'], /--priority <n>' argument '5000' is invalid. must be a whole number from -1000 to 1000/],
    ] as const) {
      const r = await run([...argv]);
      expect(r.code).toBeInstanceOf(CliError);
      expect((r.code as CliError).exitCode).toBe(2);
      expect((r.code as CliError).message).toMatch(want);
      expect((r.code as CliError).message).not.toContain('\n');
    }
  });

  it('prints its version', async () => {
    const r = await run(['--version']);
    expect(r.code).toBe(0);
    expect(r.out).toEqual([expect.stringMatching(/^\d+\.\d+\.\d+$/)]);
  });

  it('lists tasks as JSON that parses', async () => {
    const r = await run(['tasks', '-o', 'json']);
    expect(r.code).toBe(0);
    const tasks = JSON.parse(r.out.join('\n')) as { task: string }[];
    expect(tasks.map((t) => t.task)).toEqual(expect.arrayContaining(['training', 'evaluation', 'collection', 'upstream']));
  });

  it('writes a bash completion script that knows the commands and their flags', async () => {
    const r = await run(['completion', 'bash']);
    expect(r.code).toBe(0);
    const script = r.out.join('\n');
    expect(script).toContain('complete -F _orbit_complete orbit');
    expect(script).toMatch(/"hosts"\) opts="list check drain undrain/);
    expect(script).toMatch(/"submit"\) opts="[^"]*--follow/);
  });

  it('has one time format: local time with its zone', () => {
    const tz = process.env.TZ;
    try {
      process.env.TZ = 'Asia/Tokyo';
      expect(formatTime('2026-12-01T20:13:05.123Z')).toBe('2026-12-02 05:13:05 GMT+9');
      process.env.TZ = 'UTC';
      expect(formatTime(new Date('2026-12-01T20:13:05Z'))).toBe('2026-12-01 20:13:05 UTC');
      expect(formatTime(undefined)).toBe('-');
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });

  it('checks this machine as the host "local", which hosts list shows', async () => {
    const r = await run(['hosts', 'check', 'local', '-o', 'json']);
    expect(r.code === 0 || r.code === 1).toBe(true);
    const facts = JSON.parse(r.out.join('\n')) as { name: string; where: string; os: string; python3: string | null; warnings: string[] };
    expect(facts).toMatchObject({ name: 'local', where: 'this machine' });
    expect(facts.os).toMatch(/\S/);
    expect(facts.python3).toMatch(/^3\.\d+\.\d+$/);
    expect(r.code).toBe(facts.warnings.length ? 1 : 0);
  });

  it('as a process: an unknown flag is one line on stderr, exit 2, no stack', async () => {
    const r = await orbit(['list', '-x'], { ...process.env, ORBIT_TEMPORAL_PORT: '1' }, 60_000);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toEqual(["orbit: unknown option '-x'; see orbit list --help"]);
  });
});
