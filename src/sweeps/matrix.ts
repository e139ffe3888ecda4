/**
 * A sweep's matrix: axes of named overrides, expanded into cells (one value per axis, every
 * combination), each a full request: the base deep-merged with its values' overrides. Node-free.
 *
 * An axis is either `{field: a.b, values: {name: value, ...}}` (sets one field) or a list of
 * `{name, set: {...}}` (merges a mapping). Mappings merge key by key; lists and scalars replace.
 * A cell's name joins its value names with '.', in axis order: `step-100.holdout-a`.
 */
import type { Problem } from '../bundle/parse';
import { MATRIX_HINT } from './schema';

export const VALUE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/;
const VALUE_NAME_RULE = "1-40 chars of A-Z, a-z, 0-9, '_' and '-', starting with a letter or digit (no '.')";
const FIELD_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
export const MAX_CELLS = 256;

type Mapping = Record<string, unknown>;

export interface AxisValue {
  name: string;
  /** Merged into the base request. */
  patch: Mapping;
}

export interface Axis {
  name: string;
  values: AxisValue[];
}

export interface MatrixCell {
  /** Value names joined with '.', in axis order. */
  name: string;
  /** Axis name -> value name. */
  axes: Record<string, string>;
  /** The full request of this cell (the base with every override merged). */
  request: Mapping;
}

function isMapping(v: unknown): v is Mapping {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `a` with `b` merged in: mappings merge key by key, everything else in `b` replaces. Neither is changed. */
export function deepMerge(a: unknown, b: unknown): unknown {
  if (!isMapping(a) || !isMapping(b)) return structuredClone(b);
  const out: Mapping = structuredClone(a);
  for (const [k, v] of Object.entries(b)) out[k] = k in out ? deepMerge(out[k], v) : structuredClone(v);
  return out;
}

/** `{a: {b: value}}` for the path `a.b`. */
export function patchAt(path: string, value: unknown): Mapping {
  return path
    .split('.')
    .reverse()
    .reduce<unknown>((inner, key) => ({ [key]: inner }), value) as Mapping;
}

/** Reads the matrix mapping into axes; every problem names its field (`matrix.env[1].name`). */
export function parseMatrix(raw: Mapping): { axes: Axis[]; problems: Problem[] } {
  const problems: Problem[] = [];
  const axes: Axis[] = [];
  const entries = Object.entries(raw);
  if (entries.length === 0) {
    return { axes, problems: [{ path: 'matrix', message: `is empty: name at least one axis with at least one value (${MATRIX_HINT})` }] };
  }
  for (const [axisName, spec] of entries) {
    const at = `matrix.${axisName}`;
    if (!VALUE_NAME.test(axisName)) problems.push({ path: at, message: `axis name "${axisName}" must be ${VALUE_NAME_RULE}` });
    const values: AxisValue[] = [];
    if (Array.isArray(spec)) {
      spec.forEach((item, i) => {
        if (!isMapping(item)) return problems.push({ path: `${at}[${i}]`, message: 'must be a mapping {name, set: {field: value, ...}}' });
        const unknown = Object.keys(item).filter((k) => k !== 'name' && k !== 'set');
        if (unknown.length) problems.push({ path: `${at}[${i}]`, message: `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}; known fields: name, set` });
        if (typeof item.name !== 'string' || !VALUE_NAME.test(item.name)) {
          problems.push({ path: `${at}[${i}].name`, message: `is required and must be ${VALUE_NAME_RULE}` });
        }
        if (!isMapping(item.set)) problems.push({ path: `${at}[${i}].set`, message: 'is required: a mapping of request fields this value overrides' });
        else if (typeof item.name === 'string') values.push({ name: item.name, patch: item.set });
      });
    } else if (isMapping(spec)) {
      const unknown = Object.keys(spec).filter((k) => k !== 'field' && k !== 'values');
      if (unknown.length) problems.push({ path: at, message: `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}; known fields: field, values (or write the axis as a list of {name, set})` });
      const field = spec.field;
      if (typeof field !== 'string' || !FIELD_PATH.test(field)) {
        problems.push({ path: `${at}.field`, message: 'is required: the request field this axis sets, e.g. checkpoint or source.seed' });
      }
      if (!isMapping(spec.values)) {
        problems.push({ path: `${at}.values`, message: 'is required: a mapping of value names to values, e.g. {step-100: ckpt/step-100}' });
      } else {
        for (const [name, v] of Object.entries(spec.values)) {
          if (!VALUE_NAME.test(name)) problems.push({ path: `${at}.values.${name}`, message: `value name "${name}" must be ${VALUE_NAME_RULE}` });
          else if (typeof field === 'string') values.push({ name, patch: patchAt(field, v) });
        }
      }
    } else {
      problems.push({ path: at, message: `must be {field, values} or a list of {name, set} (${MATRIX_HINT})` });
      continue;
    }
    const rawCount = Array.isArray(spec) ? spec.length : isMapping(spec) && isMapping(spec.values) ? Object.keys(spec.values).length : 0;
    if (rawCount === 0) problems.push({ path: at, message: 'lists no values: give at least one' });
    const seen = new Set<string>();
    for (const v of values) {
      if (seen.has(v.name)) problems.push({ path: at, message: `value name "${v.name}" is used twice; names must be unique within an axis` });
      seen.add(v.name);
    }
    axes.push({ name: axisName, values });
  }
  const count = axes.reduce((n, a) => n * a.values.length, 1);
  if (count > MAX_CELLS) problems.push({ path: 'matrix', message: `makes ${count} cells; at most ${MAX_CELLS} are allowed` });
  return { axes, problems };
}

/** Every combination of one value per axis, in axis order (the last axis varies fastest). */
export function expandCells(base: Mapping, axes: Axis[]): MatrixCell[] {
  let cells: MatrixCell[] = [{ name: '', axes: {}, request: structuredClone(base) }];
  for (const axis of axes) {
    cells = cells.flatMap((c) =>
      axis.values.map((v) => ({
        name: c.name ? `${c.name}.${v.name}` : v.name,
        axes: { ...c.axes, [axis.name]: v.name },
        request: deepMerge(c.request, v.patch) as Mapping,
      })),
    );
  }
  return cells;
}
