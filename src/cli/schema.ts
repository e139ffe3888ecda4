/**
 * `orbit schema TASK`: the JSON Schema (draft-07) of one task type's request file, generated from its
 * plugin's zod schema, for editors (yaml-language-server) and CI. The same text is checked in as
 * schemas/<task>.schema.json by scripts/gen-schemas.ts. It states the fields, types, ranges, patterns
 * and defaults; the checks zod makes beyond them (paths inside artifacts/, unique names, files that
 * exist) stay with `orbit validate`.
 */
import { z } from 'zod';
import { SLUG_PATTERN } from '../bundle/schema';
import { buildDefaultTaskRegistry, type TaskRegistry } from '../plugins/registry';
import { CliError } from './cli-error';
import type { Io } from './io';

export const JSON_SCHEMA_DIALECT = 'http://json-schema.org/draft-07/schema#';
/** Folder of the checked-in schemas, relative to the repository root. */
export const SCHEMAS_DIR = 'schemas';

/** File name of a task type's checked-in schema. */
export const schemaFileName = (taskType: string): string => `${taskType}.schema.json`;

type JsonObject = Record<string, unknown>;

/**
 * The JSON Schema of a request file of `taskType`: `task` (that type), optional `jobId`, then the
 * plugin's own fields, with what the plugin's schema says of them (required fields, no unknown
 * fields, ranges, defaults). Throws UnknownTaskTypeError for a task type the registry lacks.
 */
export function requestJsonSchema(taskType: string, registry: TaskRegistry): object {
  const plugin = registry.get(taskType);
  const generated = z.toJSONSchema(plugin.requestSchema, { io: 'input', target: 'draft-7' }) as JsonObject;
  delete generated.$schema; // stated first, below
  const head = {
    $schema: JSON_SCHEMA_DIALECT,
    title: `Orbit ${taskType} request`,
    description: `${plugin.description.charAt(0).toUpperCase()}${plugin.description.slice(1)}. Check a file with: orbit validate FILE`,
  };
  // A task with two request forms (built-in, or the user's own code): a file is one of them.
  const forms = generated.anyOf;
  if (Array.isArray(forms) && Object.keys(generated).length === 1) return { ...head, anyOf: forms.map((f) => fileShape(taskType, f as JsonObject)) };
  return { ...head, ...fileShape(taskType, generated) };
}

/** One request form as a file's schema: `task` (that type) and optional `jobId` before the form's own fields. */
function fileShape(taskType: string, generated: JsonObject): JsonObject {
  const { type, properties, required, ...rest } = generated;
  if (type !== 'object' || typeof properties !== 'object' || properties === null) {
    throw new Error(`the ${taskType} request schema is not an object of fields, so no request file schema can be made of it`);
  }
  const fields = properties as JsonObject;
  for (const own of ['task', 'jobId']) {
    if (own in fields) throw new Error(`the ${taskType} request schema has a field "${own}", which belongs to the request file`);
  }
  return {
    type: 'object',
    properties: {
      task: { description: 'The task type of this request.', type: 'string', const: taskType },
      jobId: {
        description: "Job id; by default the file name. 1-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit.",
        type: 'string',
        pattern: SLUG_PATTERN.source,
      },
      ...fields,
    },
    required: ['task', ...(Array.isArray(required) ? (required as string[]) : [])],
    ...rest,
  };
}

/** The text of every task type's schema file, by file name, as scripts/gen-schemas.ts writes them. */
export function schemaFiles(registry: TaskRegistry): Map<string, string> {
  return new Map(registry.taskTypes().map((t) => [schemaFileName(t), `${JSON.stringify(requestJsonSchema(t, registry), null, 2)}\n`]));
}

/** `orbit schema TASK`: prints the task type's request file schema as JSON. A missing or unknown task is a usage error (exit 2). */
export async function schemaCommand(task: string | undefined, io: Io): Promise<number> {
  const registry = await buildDefaultTaskRegistry();
  const known = registry.taskTypes().join(', ');
  if (!task) throw new CliError(`orbit schema TASK: name a task type (one of: ${known})`);
  if (!registry.has(task)) throw new CliError(`unknown task type "${task}"; known task types: ${known}`);
  io.out(JSON.stringify(requestJsonSchema(task, registry), null, 2));
  return 0;
}
