/**
 * What the command modules share: the context they run in, the -o option, flag parsers that fail as
 * usage errors, and the Temporal connection (loaded only by the commands that need it).
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { Client } from '@temporalio/client';
import type { TemporalTarget } from '../../config';
import type { Io, OutputFormat } from '../io';

export interface CommandContext {
  io: Io;
  /** Records the command's exit code (main returns it). */
  exit(code: number): void;
}

/** A command module: adds its command (and subcommands) to the program. */
export type Register = (program: Command, ctx: CommandContext) => void;

/** `-o, --output text|json|yaml`. */
export function outputOption(formats: readonly string[] = ['text', 'json', 'yaml']): Option {
  return new Option('-o, --output <format>', 'output format').choices(formats).default('text');
}

export type WithOutput = { output: OutputFormat };

/** A whole-number flag from `min` to `max`; anything else is a usage error naming the flag. */
export function wholeNumber(min: number, max = Number.MAX_SAFE_INTEGER): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? `must be a whole number, ${min} or more` : `must be a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

/** Runs an action and records its exit code. */
export function act<A extends unknown[]>(ctx: CommandContext, fn: (...args: A) => Promise<number>): (...args: A) => Promise<void> {
  return async (...args: A) => ctx.exit(await fn(...args));
}

/** A client for the configured Temporal, its namespace checked (one line, exit 3, when it cannot be used). */
export async function connect(options: { checkNamespace?: boolean } = {}): Promise<{ client: Client; target: TemporalTarget }> {
  const { temporalTarget } = await import('../../config');
  const { connectClient } = await import('../connect');
  const target = temporalTarget();
  const client = await connectClient(target);
  if (options.checkNamespace !== false) {
    const { checkNamespace } = await import('../errors');
    await checkNamespace(client, target);
  }
  return { client, target };
}
