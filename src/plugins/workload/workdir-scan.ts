/**
 * The result of a workdir scan, whichever the source: starting an empty WorkdirScan, checking the scan
 * options, recording a skipped entry, and finishing it (sorting, counting what was left out, naming the
 * biggest files, refusing a workdir over its size limit or with no file to stage), with the size and
 * count wording its messages share. Sizes are in MB of 2^20 bytes.
 */
import type { Problem } from '../../bundle';
import { excludeProblems } from './workdir-ignore';
import { DEFAULT_WORKDIR_MAX_MB } from './schema';
import type { ScanOptions, WorkdirDrop, WorkdirScan } from './workdir-types';

export const MB = 1024 * 1024;
/** How many of the biggest files a scan names. */
const BIGGEST = 5;

export function newScan(kind: WorkdirScan['kind'], root: string, label: string, maxBytes: number): WorkdirScan {
  return { kind, root, label, files: [], totalBytes: 0, complete: true, ignoredByGitignore: 0, ignoredByExclude: 0, skipped: 0, dropped: [], biggest: [], maxBytes, problems: [] };
}

/** The size limit in bytes the options ask for (default DEFAULT_WORKDIR_MAX_MB). */
export function maxBytesOption(options: ScanOptions): number {
  return options.maxBytes ?? DEFAULT_WORKDIR_MAX_MB * MB;
}

/** A limit that is not above 0, then the exclude patterns that cannot mean what was meant. */
export function optionProblems(options: ScanOptions, root?: string): Problem[] {
  const problems: Problem[] = [];
  const maxBytes = maxBytesOption(options);
  if (!Number.isFinite(maxBytes) || maxBytes <= 0) {
    problems.push({ path: 'workdir.maxSizeMb', message: `must be a number of megabytes above 0, not ${maxBytes / MB}; the default is ${DEFAULT_WORKDIR_MAX_MB}` });
  }
  problems.push(...excludeProblems(options.exclude ?? [], root));
  return problems;
}

const byPath = <T extends { path: string }>(a: T, b: T) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** An entry skipped (not staged), with the reason. */
export function skip(path: string, reason: string, dir = false): WorkdirDrop {
  return { path, dir, by: 'skipped', reason };
}

/** Sorts, counts and names the biggest files; adds the size and empty refusals. */
export function finish(scan: WorkdirScan): WorkdirScan {
  scan.files.sort(byPath);
  scan.dropped.sort(byPath);
  for (const d of scan.dropped) {
    if (d.by === 'gitignore') scan.ignoredByGitignore++;
    else if (d.by === 'exclude') scan.ignoredByExclude++;
    else scan.skipped++;
  }
  scan.biggest = [...scan.files].sort((a, b) => b.size - a.size || byPath(a, b)).slice(0, BIGGEST);
  if (scan.problems.length) return scan;
  const fixes = scan.kind === 'local' ? 'add them to workdir.exclude or .gitignore, or raise workdir.maxSizeMb' : 'add them to workdir.exclude, or raise workdir.maxSizeMb';
  const biggest = scan.biggest.map((f) => `${f.path} ${formatSize(f.size)}`).join(', ');
  if (scan.totalBytes > scan.maxBytes) {
    const limit = `the ${formatLimit(scan.maxBytes)} limit`;
    const message = scan.complete
      ? `${formatSize(scan.totalBytes)} in ${plural(scan.files.length, 'file')} is over ${limit} (biggest: ${biggest}); ${fixes}`
      : `more than ${formatSize(scan.totalBytes)} (the count stopped after ${plural(scan.files.length, 'file')}) is over ${limit} (biggest so far: ${biggest}); ${fixes}`;
    scan.problems.push({ path: 'workdir', message });
  } else if (!scan.files.length) {
    const left = leftOut(scan);
    const fix = scan.kind === 'local' ? 'check workdir.path, and that .gitignore and workdir.exclude keep your code' : 'check workdir.commit, and that workdir.exclude keeps your code';
    scan.problems.push({ path: 'workdir', message: `${scan.label} holds no file to stage${left ? ` (${left})` : ''}; ${fix}` });
  }
  return scan;
}

/** `3 ignored by .gitignore, 1 by exclude, 2 skipped` (only the counts above 0), or ''. */
export function leftOut(scan: WorkdirScan): string {
  const parts = [];
  if (scan.ignoredByGitignore) parts.push(`${scan.ignoredByGitignore} ignored by .gitignore`);
  if (scan.ignoredByExclude) parts.push(`${scan.ignoredByExclude} by exclude`);
  if (scan.skipped) parts.push(`${scan.skipped} skipped`);
  return parts.join(', ');
}

/** 512 B, 38.2 KB, 412.0 MB, 1.5 GB (powers of 1024). */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function formatLimit(bytes: number): string {
  return Number.isInteger(bytes / MB) ? `${bytes / MB} MB` : formatSize(bytes);
}
