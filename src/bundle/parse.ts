import { ERROR } from '../common/errors';
import type { z } from 'zod';

/** One problem found in input: the field path and what is wrong with it, with the fix. */
export interface Problem {
  path: string;
  message: string;
}

export function formatProblem(p: Problem): string {
  return p.path ? `${p.path}: ${p.message}` : p.message;
}

/** Turns zod issues into problems named by their field path (`resources.gpus`, `environments[0]`). */
export function zodProblems(error: z.ZodError, prefix = ''): Problem[] {
  return error.issues.map((issue) => ({
    path: joinPath(prefix, issue.path),
    message: issue.message,
  }));
}

function joinPath(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix;
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; problems: Problem[] };

/** Parses `data` with `schema`; never throws for bad input, returns problems with field paths. */
export function parseWith<S extends z.ZodType>(schema: S, data: unknown, prefix = ''): ParseResult<z.infer<S>> {
  const result = schema.safeParse(data);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, problems: zodProblems(result.error, prefix) };
}

/** Thrown when input fails validation; carries every problem, each naming its field. */
export class ValidationError extends Error {
  constructor(
    readonly what: string,
    readonly problems: Problem[],
  ) {
    super(`${what} is invalid:\n${problems.map((p) => `  - ${formatProblem(p)}`).join('\n')}`);
    this.name = ERROR.validation;
  }
}

/** Parses or throws a ValidationError listing every problem. */
export function parseOrThrow<S extends z.ZodType>(schema: S, data: unknown, what: string): z.infer<S> {
  const r = parseWith(schema, data);
  if (!r.ok) throw new ValidationError(what, r.problems);
  return r.value;
}
