/**
 * The text format of the language-model tasks (scripts/charlm.py reads it): a plain UTF-8 file, its
 * characters the model's tokens. Checked before a bundle is built: the training text, the texts an
 * evaluation scores, the prompts of a rollouts collection.
 */
import { readFile, stat } from 'node:fs/promises';
import type { Problem } from '../../bundle';
import { checkReadableFile } from '../common';

/** What a text request field holds. */
export const TEXT_FORMAT = 'a plain UTF-8 text file (.txt), relative to the request file';
/** The largest text the client reads to check it (the tasks read all of it into memory too). */
export const MAX_TEXT_BYTES = 256 * 1024 * 1024;
/** The largest vocabulary (distinct characters) of a training text: the embedding has a row per character. */
export const MAX_VOCAB = 2000;

export interface TextInfo {
  /** Characters (Unicode code points), as the scripts count them. */
  chars: number;
  /** Distinct characters, sorted: the vocabulary a model trained on the text has. */
  vocab: string[];
  /** Lines that are not blank. */
  lines: number;
}

/** True when a path names a CSV table (by its extension), not a text. */
export const isCsvPath = (p: string): boolean => p.trim().toLowerCase().endsWith('.csv');
/** True when a path names a .txt text. */
export const isTxtPath = (p: string): boolean => p.trim().toLowerCase().endsWith('.txt');

/**
 * Checks that `abs` is a readable UTF-8 text of at least `minChars` characters (and, with
 * `minLines`, that many non-blank lines). Reports the first problem found, at `field`, saying what
 * `expected` is (the format and what the task needs of it).
 */
export async function checkText(
  abs: string,
  field: string,
  options: { minChars?: number; minLines?: number; maxVocab?: number; why?: string } = {},
): Promise<{ problems: Problem[]; text?: TextInfo }> {
  const fileProblems = await checkReadableFile(abs, field, TEXT_FORMAT);
  if (fileProblems.length) return { problems: fileProblems };
  const fail = (message: string) => ({ problems: [{ path: field, message: `${abs} ${message}` }] });
  const { size } = await stat(abs);
  if (size > MAX_TEXT_BYTES) return fail(`is ${Math.round(size / 2 ** 20)} MiB; a text for these tasks is at most ${MAX_TEXT_BYTES / 2 ** 20} MiB`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(await readFile(abs));
  } catch {
    return fail(`is not UTF-8 text; expected ${TEXT_FORMAT} (convert it, e.g. iconv -f latin1 -t utf-8)`);
  }
  // As the scripts read it: without a byte-order mark, line ends as \n.
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  text = text.replace(/\r\n?/g, '\n');
  const chars = [...text];
  const vocab = [...new Set(chars)].sort();
  const lines = text.split('\n').filter((l) => l.trim() !== '').length;
  const why = options.why ? ` (${options.why})` : '';
  if (options.minChars !== undefined && chars.length < options.minChars) {
    return fail(`has ${chars.length} characters; it needs at least ${options.minChars}${why}`);
  }
  if (options.minLines !== undefined && lines < options.minLines) {
    return fail(`has ${lines} non-blank lines; it needs at least ${options.minLines}${why}`);
  }
  if (options.maxVocab !== undefined && vocab.length > options.maxVocab) {
    return fail(`has ${vocab.length} distinct characters; a char-lm's vocabulary holds at most ${options.maxVocab} (one embedding row each)`);
  }
  return { problems: [], text: { chars: chars.length, vocab, lines } };
}
