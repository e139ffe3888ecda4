/**
 * A training checkpoint folder as the built-in evaluation and collection tasks read it: complete (its
 * COMPLETE marker), the files they stage, and its meta.json's kind (char-lm or mlp) with what the kind
 * needs to be scored (a char-lm's vocabulary, an mlp's feature count).
 */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Problem } from '../../bundle';
import { checkReadableFile, numberField, readJson } from '../common';

export type CheckpointKind = 'char-lm' | 'mlp';

/**
 * Files of a trainer checkpoint a task stages (COMPLETE proves the folder is whole). An mlp's weights
 * are model.pt (what the trainer writes) or model.json (the same state_dict as text: the mlp
 * checkpoints shipped in examples/ are, so the repository holds no binary); a char-lm's are model.pt.
 */
export const CHECKPOINT_FILES = ['model.pt', 'meta.json', 'COMPLETE'] as const;
const TEXT_WEIGHTS = 'model.json';

export interface CheckpointInfo {
  kind: CheckpointKind;
  step: number | null;
  /** An mlp's feature count. */
  inputs?: number;
  /** A char-lm's vocabulary size (characters, without the unknown id). */
  vocab?: number;
}

/** The checkpoint's files as staged: model.pt, or (an mlp's) model.json when only that is there. */
export function checkpointFiles(dir: string): string[] {
  return CHECKPOINT_FILES.map((f) => (f === 'model.pt' && !existsSync(join(dir, f)) && existsSync(join(dir, TEXT_WEIGHTS)) ? TEXT_WEIGHTS : f));
}

/**
 * Checks a checkpoint folder written by the trainer (problems at `field`), and reads its kind. With
 * `want`, a checkpoint of the other kind is a problem naming what the task needs.
 */
export async function checkCheckpoint(dir: string, field: string, want?: { kind: CheckpointKind; why: string }): Promise<{ problems: Problem[]; checkpoint?: CheckpointInfo }> {
  const fail = (message: string) => ({ problems: [{ path: field, message }] });
  const isDir = await stat(dir).then((s) => s.isDirectory(), () => undefined);
  if (isDir === undefined) return fail(`${dir} does not exist; give the step-N folder of a training job's checkpoint (it holds model.pt and COMPLETE)`);
  if (!isDir) return fail(`${dir} is not a folder; give the step-N folder that holds model.pt, not the file itself`);
  if (!existsSync(join(dir, 'COMPLETE'))) {
    return fail(`${dir} has no COMPLETE marker: the checkpoint is partial (its job stopped while writing it); pick a step-N folder that has COMPLETE`);
  }
  for (const f of checkpointFiles(dir)) {
    const problems = await checkReadableFile(join(dir, f), field, `a training checkpoint folder holding ${CHECKPOINT_FILES.join(', ')}`);
    if (problems.length) return { problems };
  }
  const meta = await readJson(join(dir, 'meta.json'));
  const doc = (typeof meta === 'object' && meta !== null ? meta : {}) as Record<string, unknown>;
  const step = numberField(doc, 'step');
  let checkpoint: CheckpointInfo;
  if (doc['kind'] === 'char-lm') {
    const vocab = doc['vocab'];
    if (!Array.isArray(vocab) || !vocab.length || !vocab.every((c) => typeof c === 'string') || typeof doc['architecture'] !== 'object') {
      return fail(`${dir}/meta.json says kind char-lm but gives no vocabulary (vocab) and architecture; the folder was not written by the training task`);
    }
    if (checkpointFiles(dir)[0] !== 'model.pt') return fail(`${join(dir, 'model.pt')} does not exist; a char-lm checkpoint holds its weights in model.pt`);
    checkpoint = { kind: 'char-lm', step, vocab: vocab.length };
  } else if (doc['kind'] === undefined || doc['kind'] === 'mlp') {
    const inputs = numberField(doc, 'inputs');
    if (inputs === null) return fail(`${dir}/meta.json does not give the model's input count; the folder was not written by the training task`);
    checkpoint = { kind: 'mlp', step, inputs };
  } else {
    return fail(`${dir}/meta.json gives kind ${JSON.stringify(doc['kind'])}; the training task writes char-lm or mlp checkpoints`);
  }
  if (want && checkpoint.kind !== want.kind) {
    return { problems: [{ path: field, message: `${dir} is ${describeKind(checkpoint.kind)}; ${want.why}` }], checkpoint };
  }
  return { problems: [], checkpoint };
}

/** "a char-lm checkpoint (a language model)" / "an mlp checkpoint (a regressor on a table)". */
export function describeKind(kind: CheckpointKind): string {
  return kind === 'char-lm' ? 'a char-lm checkpoint (a language model trained on a text)' : 'an mlp checkpoint (a regressor trained on a CSV table)';
}
