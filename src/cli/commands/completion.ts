/**
 * `orbit completion bash|zsh`: a completion script made from the command tree itself, so it never
 * falls behind the commands. `source <(orbit completion bash)`, or for zsh
 * `source <(orbit completion zsh)` (bashcompinit).
 */
import { Argument, type Command } from 'commander';
import { act, type Register } from './common';

/** Every command path (`hosts check`) with the words that may follow it: subcommands and flags. */
function words(cmd: Command, path: string[] = [], out = new Map<string, string[]>()): Map<string, string[]> {
  const flags = cmd.options.flatMap((o) => [o.short, o.long].filter((x): x is string => Boolean(x)));
  out.set(path.join(' '), [...cmd.commands.map((c) => c.name()), ...flags, '--help']);
  for (const c of cmd.commands) words(c, [...path, c.name()], out);
  return out;
}

export function bashCompletion(program: Command): string {
  const cases = [...words(program)]
    .map(([path, w]) => `    "${path}") opts="${w.join(' ')}" ;;`)
    .join('\n');
  return `# orbit completion for bash (and zsh with bashcompinit): source <(orbit completion bash)
_orbit_complete() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" w i
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    case " $(_orbit_words "\${path# }") " in *" $w "*) path="$path $w" ;; esac
  done
  COMPREPLY=($(compgen -W "$(_orbit_words "\${path# }")" -- "$cur"))
  [[ \${#COMPREPLY[@]} -eq 0 ]] && COMPREPLY=($(compgen -f -- "$cur"))
}
_orbit_words() {
  local opts=""
  case "$1" in
${cases}
  esac
  echo "$opts"
}
complete -F _orbit_complete orbit
`;
}

export const register: Register = (program, ctx) => {
  program
    .command('completion')
    .description('print a shell completion script: source <(orbit completion bash)')
    .addArgument(new Argument('[shell]', 'bash or zsh').choices(['bash', 'zsh']).default('bash'))
    .action(
      act(ctx, async (shell: string) => {
        const script = bashCompletion(program);
        ctx.io.out(shell === 'zsh' ? `autoload -U +X bashcompinit && bashcompinit\n${script}` : script);
        return 0;
      }),
    );
};
