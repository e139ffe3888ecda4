/**
 * The upstream black-box request (YAML or JSON, camelCase). Node-free. Example:
 *
 *   repository: ../vendor/bench           # a local git checkout (relative to the request file) or a git URL
 *   commit: 3f0c1e...                     # exactly 40 lowercase hex characters: no branch, tag or short hash
 *   entry: [python3, run_bench.py, --out, results]   # argv, run inside the upstream tree as is
 *   outputs: [results]                    # what the entry writes in its tree, copied to artifacts/upstream/
 *
 * Orbit never patches upstream code: the tree is copied byte for byte from the commit's blobs, checked
 * again on the host, and run unchanged. Orbit adds only artifacts/upstream_run.json.
 */
import { z } from 'zod';
import { isSafeRelativePath } from '../../bundle/schema';
import { requiredString, runOptionsShape, strictFields } from '../common-schema';

export const UPSTREAM_RUN_SCHEMA_VERSION = 'orbit.upstream_blackbox_run.v1';
/** The thin manifest Orbit writes beside the upstream's raw artifacts. */
export const UPSTREAM_RUN_FILE = 'upstream_run.json';
/** The task log: the entry's stdout and stderr, and the runner's own lines. */
export const UPSTREAM_LOG = 'upstream.log';
/** Folder under artifacts/ that receives the entry's declared outputs. */
export const UPSTREAM_ARTIFACTS_DIR = 'upstream';
/** Exit code of the run when the staged upstream tree differs from the pinned commit on the host. */
export const UPSTREAM_DIRTY_EXIT_CODE = 87;

const COMMIT = /^[0-9a-f]{40}$/;

/** Why `ref` is not an exact commit, or undefined when it is one. */
export function commitProblem(ref: string): string | undefined {
  if (COMMIT.test(ref)) return undefined;
  const shown = JSON.stringify(ref.length > 60 ? `${ref.slice(0, 60)}...` : ref);
  const fix = `pin the exact commit: git rev-parse ${/^[\w./-]+$/.test(ref) && ref ? ref : '<ref>'}`;
  if (/^[0-9a-fA-F]{40}$/.test(ref)) return `commit ${shown} must be lowercase hex; use ${ref.toLowerCase()}`;
  if (/^[0-9a-fA-F]{4,39}$/.test(ref)) return `commit ${shown} is a short hash (${ref.length} characters), which can become ambiguous; give all 40 characters (${fix})`;
  return `commit ${shown} is not a 40-character commit hash: a branch or tag can move, so the run could not be reproduced; ${fix}`;
}

const relativeInTree = (field: string) =>
  z
    .string({ error: `${field} entries must be strings: paths inside the upstream tree` })
    .refine((p) => isSafeRelativePath(p), { message: `${field} entries must be relative paths inside the upstream tree, without '..', '.', empty parts or a leading '/'` });

export const upstreamRequestSchema = strictFields(
  {
    /** The upstream git repository: a local checkout, resolved against the request file's folder, or a URL git can clone. */
    repository: requiredString('repository', 'the upstream git repository: a local checkout (relative to the request file) or a git URL'),
    /** The exact commit to run. */
    commit: z
      .string({ error: 'commit is required: the exact 40-character lowercase hex commit to run' })
      .trim()
      .superRefine((v, ctx) => {
        const problem = commitProblem(v);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .meta({ pattern: COMMIT.source }),
    /** argv of the upstream's own entry point, run with the upstream tree as working directory. */
    entry: z
      .array(z.string({ error: 'entry items must be strings' }).min(1, 'entry items must not be empty'), {
        error: 'entry must be a list of strings: the argv of the upstream entry point, e.g. [python3, evaluate.py]',
      })
      .min(1, 'entry must name a program: the argv of the upstream entry point, e.g. [python3, evaluate.py]'),
    /** Files or folders the entry writes inside its tree; copied to artifacts/upstream/ after it ends. */
    outputs: z.array(relativeInTree('outputs'), { error: 'outputs must be a list of paths inside the upstream tree' }).default([]),
    ...runOptionsShape,
  },
  'an upstream request',
);
export type UpstreamRequest = z.infer<typeof upstreamRequestSchema>;
