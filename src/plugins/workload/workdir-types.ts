/** The types of a workdir source, its scan and its staged manifest: shared by workdir.ts and its helpers (workdir-git, -ignore, -scan). */
import type { Problem } from '../../bundle';

export const WORKDIR_MANIFEST_SCHEMA = 'orbit.workdir.v1';

/** What to stage: the request's `workdir`, paths already resolved against the request file's folder. */
export type WorkdirSourceInput =
  | { kind: 'local'; path: string; exclude?: readonly string[]; maxSizeMb?: number }
  | { kind: 'git'; repository: string; commit: string; exclude?: readonly string[]; maxSizeMb?: number };

export interface ScanOptions {
  /** gitignore patterns relative to the workdir root, applied after every .gitignore. */
  exclude?: readonly string[];
  /** Refuse above this many bytes (default DEFAULT_WORKDIR_MAX_MB). */
  maxBytes?: number;
}

export interface WorkdirFile {
  /** Relative to the workdir root, '/' separators. */
  path: string;
  size: number;
  executable: boolean;
  /** For a symbolic link staged as a copy: the file it points to, relative to the workdir root. */
  linkTo?: string;
}

/** An entry left out, and why. A folder left out counts once; what is inside it is not walked. */
export interface WorkdirDrop {
  path: string;
  dir: boolean;
  by: 'gitignore' | 'exclude' | 'skipped';
  /** One line, e.g. `sub/.gitignore excludes it (pattern "*.log")` or `a symbolic link to /data, outside the workdir`. */
  reason: string;
}

export interface WorkdirScan {
  kind: 'local' | 'git';
  /** The folder walked (its real path), or the git repository read (a temporary clone for a URL). */
  root: string;
  /** How messages name it: the folder, or repository@commit. */
  label: string;
  /** Sorted by path. */
  files: WorkdirFile[];
  totalBytes: number;
  /** False when the walk stopped early, far over the limit: the counts are then lower bounds. */
  complete: boolean;
  ignoredByGitignore: number;
  ignoredByExclude: number;
  skipped: number;
  dropped: WorkdirDrop[];
  /** The biggest staged files, biggest first. */
  biggest: WorkdirFile[];
  maxBytes: number;
  /** Empty when the workdir can be staged. */
  problems: Problem[];
}

export interface WorkdirManifest {
  schemaVersion: typeof WORKDIR_MANIFEST_SCHEMA;
  source: { kind: 'local'; path: string; exclude: string[] } | { kind: 'git'; repository: string; commit: string; exclude: string[] };
  /** Set for a git source: what the precheck's tree-manifest check prints. */
  repository?: string;
  commit?: string;
  /** The bundle folder the file paths are relative to. */
  root: string;
  totals: { files: number; bytes: number; ignoredByGitignore: number; ignoredByExclude: number; skipped: number };
  files: { path: string; size: number; sha256: string; executable: boolean; linkTo?: string }[];
  skipped: { path: string; reason: string }[];
}

export interface StagedWorkdir {
  scan: WorkdirScan;
  manifest: WorkdirManifest;
  /** Bundle paths of the staged folder and of its manifest. */
  dir: string;
  manifestPath: string;
}
