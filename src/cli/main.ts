/**
 * orbit: submit and inspect runs. The command tree is commander's (per-command help, typo
 * suggestions, --version, usage errors as one line with exit 2); each command lives in
 * src/cli/commands/ and loads what it needs only when it runs, so `orbit --help` loads almost nothing.
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../paths';
import { CliError } from './cli-error';
import { COMMANDS } from './commands';
import { stdio, type Io } from './io';

const ENVIRONMENT = `
Environment:
  ORBIT_HOME          bundles, work dirs, the dev server's data (default ~/.orbit)
  ORBIT_TASK_QUEUE    the task queue runs and workers share (default orbit)
  ORBIT_STORE         file://DIR (default file://$ORBIT_HOME/store) or s3://bucket/prefix,
                      with ORBIT_S3_ENDPOINT, ORBIT_S3_REGION, ORBIT_S3_PATH_STYLE and the AWS credentials
  TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE
                      an existing cluster; otherwise the embedded dev server on 127.0.0.1:ORBIT_TEMPORAL_PORT (7233)

Exit codes: 0 ok, 1 the run (or check) failed, 2 usage or validation, 3 Temporal or the store unreachable, 130 interrupted.`;

function version(): string {
  try {
    return (JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The program, its output routed through `io`; `exit` receives each action's exit code. */
export function buildProgram(io: Io, exit: (code: number) => void): Command {
  const program = new Command('orbit')
    .description('durable ML jobs on rented machines, on Temporal')
    .version(version(), '-V, --version')
    .showSuggestionAfterError(true)
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s.replace(/\n$/, '')),
      writeErr: (s) => io.note(s.replace(/\n$/, '')),
      outputError: () => undefined, // thrown as a CliError below: printed once, as one line
    })
    .addHelpText('after', ENVIRONMENT);
  const ctx = { io, exit };
  for (const register of COMMANDS) register(program, ctx);
  // Every subcommand inherits the same behaviour (errors thrown, not printed and exited on).
  const configure = (c: Command) => {
    for (const sub of c.commands) {
      sub.exitOverride().showSuggestionAfterError(true).configureOutput({
        writeOut: (s) => io.out(s.replace(/\n$/, '')),
        writeErr: (s) => io.note(s.replace(/\n$/, '')),
        outputError: () => undefined,
      });
      configure(sub);
    }
  };
  configure(program);
  return program;
}

/** The command path an error happened under (`orbit hosts check`), for the help hint. */
function commandPath(argv: string[], program: Command): string {
  const path = ['orbit'];
  let c: Command | undefined = program;
  for (const word of argv) {
    const next: Command | undefined = c?.commands.find((x) => x.name() === word || x.aliases().includes(word));
    if (!next) break;
    path.push(word);
    c = next;
  }
  return path.join(' ');
}

/**
 * Runs one command line; resolves to its exit code. A usage error (unknown command or flag, missing
 * argument, bad choice) throws a CliError with exit code 2, in one line naming the help to read.
 */
export async function main(argv: string[], out: (s: string) => void = stdio.out, note: (s: string) => void = stdio.note): Promise<number> {
  let code = 0;
  const io: Io = { out, note };
  const program = buildProgram(io, (c) => (code = c));
  if (argv.length === 0) {
    out(program.helpInformation().replace(/\n$/, ''));
    return 0;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
    const message = e.message.replace(/^error: /, '').replace(/\n+/g, ' ').trim();
    throw new CliError(`${message}; see ${commandPath(argv, program)} --help`, 2);
  }
  return code;
}

if (require.main === module) {
  main(process.argv.slice(2))
    .then((code) => process.exit(code))
    .catch(async (e: unknown) => {
      const { reportError } = await import('./report-error');
      process.exit(reportError(e));
    });
}
