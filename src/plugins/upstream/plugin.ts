import { existsSync, statSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSafeRelativePath, type Bundle, type Problem } from '../../bundle';
import {
  assertNoProblems,
  baseHealthRules,
  CONFIG_INPUT,
  createTaskBundle,
  existingPaths,
  jobSpecFor,
  outcomePrefix,
  pluginFile,
  pythonCommand,
  readJson,
  requestPath,
  runOptionProblems,
  SchemaPlugin,
} from '../common';
import type { RunOutcome, TaskPlugin, TaskSubmission, TaskSummary } from '../types';
import { git, GitError, hasCommit, isGitUrl, lsTree, porcelain, readBlobs, type TreeEntry } from './git';
import {
  UPSTREAM_ARTIFACTS_DIR,
  UPSTREAM_DIRTY_EXIT_CODE,
  UPSTREAM_LOG,
  UPSTREAM_RUN_FILE,
  UPSTREAM_RUN_SCHEMA_VERSION,
  upstreamRequestSchema,
  type UpstreamRequest,
} from './schema';

/** Where the commit's files go, relative to inputs/. */
export const UPSTREAM_TREE_INPUT = 'upstream/tree';
/** The commit's tree as git records it (path, mode, blob id), relative to inputs/; the host checks the staged copy against it. */
export const UPSTREAM_TREE_MANIFEST = 'upstream/UPSTREAM_TREE.json';
const RUNNER = 'upstream_runner.py';
/**
 * What upstream_runner.py imports beyond the standard library: nothing. The upstream's own
 * dependencies are its business; a request names the ones it cannot run without in `precheck.modules`.
 */
export const UPSTREAM_MODULES: { name: string; minVersion?: string }[] = [];

/** Files Orbit itself writes under artifacts/; everything else there is the upstream's raw output. */
const ORBIT_ARTIFACTS = [UPSTREAM_LOG, UPSTREAM_RUN_FILE, 'manifest.json', 'runtime-precheck.log', 'nvml-audit.jsonl'];

/**
 * Runs an upstream repository's own entry point as a black box, at an exact commit. The tree is
 * copied from the commit's blobs byte for byte (never patched); a dirty checkout is refused in the
 * client, and the staged copy is checked against the commit's tree again on the host before the entry runs.
 */
export class UpstreamPlugin extends SchemaPlugin<typeof upstreamRequestSchema> implements TaskPlugin<typeof upstreamRequestSchema> {
  readonly taskType = 'upstream';
  readonly jobKind = 'upstream-blackbox';
  readonly description = "run an upstream git repository's entry point as is, at an exact commit, with a thin run manifest";
  override readonly requestSchema = upstreamRequestSchema;

  async validate(request: UpstreamRequest, baseDir: string): Promise<Problem[]> {
    return [...(await this.repositoryProblems(request, baseDir)), ...(await runOptionProblems(request, baseDir))];
  }

  private async repositoryProblems(request: UpstreamRequest, baseDir: string): Promise<Problem[]> {
    if (isGitUrl(request.repository)) return [];
    const repo = requestPath(baseDir, request.repository);
    if (!existsSync(repo) || !statSync(repo).isDirectory()) return [{ path: 'repository', message: `${repo} is not a folder; expected a git checkout of the upstream repository` }];
    try {
      const top = (await git(repo, ['rev-parse', '--show-toplevel'])).trim();
      if (!top) throw new GitError('no work tree');
    } catch (e) {
      return [{ path: 'repository', message: `${repo} is not a git checkout (${(e as Error).message.split('\n')[0]})` }];
    }
    const problems: Problem[] = [];
    const dirty = await porcelain(repo);
    if (dirty.length) {
      const shown = dirty.slice(0, 5).join('; ') + (dirty.length > 5 ? `; ... ${dirty.length - 5} more` : '');
      problems.push({
        path: 'repository',
        message: `the upstream tree ${repo} is dirty (git status --porcelain: ${shown}); commit, stash or discard the changes: Orbit runs upstream code exactly as committed`,
      });
    }
    if (!(await hasCommit(repo, request.commit))) {
      problems.push({ path: 'commit', message: `commit ${request.commit} is not in ${repo}; fetch it first (git -C ${repo} fetch) or check the hash` });
    }
    return problems;
  }

  async buildBundle(bundleDir: string, submission: TaskSubmission<UpstreamRequest>): Promise<Bundle> {
    const { request, baseDir, jobId } = submission;
    assertNoProblems('upstream request', await this.validate(request, baseDir));
    const url = isGitUrl(request.repository);
    const repository = url ? request.repository : requestPath(baseDir, request.repository);
    let clone: string | undefined;
    try {
      let repo = repository;
      if (url) {
        clone = await mkdtemp(join(tmpdir(), 'orbit-upstream-clone-'));
        await git(clone, ['clone', '--quiet', '--no-checkout', '--', repository, 'repo']);
        repo = join(clone, 'repo');
        if (!(await hasCommit(repo, request.commit))) assertNoProblems('upstream request', [{ path: 'commit', message: `commit ${request.commit} is not in ${repository}` }]);
      }
      const entries = await lsTree(repo, request.commit);
      assertNoProblems('upstream request', treeProblems(entries));
      const spec = jobSpecFor(this, jobId, request, {
        defaults: { cpus: 1, memoryGb: 1 },
        command: pythonCommand(RUNNER),
        logFile: UPSTREAM_LOG,
        modules: UPSTREAM_MODULES,
        // A black box: it may print little; only a long silence, idle GPUs or a full disk are named.
        health: baseHealthRules(60, 30),
        inputs: [{ path: UPSTREAM_TREE_MANIFEST, description: `tree of ${repository} at ${request.commit}` }],
        expectedOutputs: [
          { path: UPSTREAM_RUN_FILE, required: true },
          { path: UPSTREAM_LOG, required: true },
        ],
        metadata: { repository, commit: request.commit, entry: request.entry.join(' ') },
        // The precheck records the staged tree against the commit's blob ids in the provenance log; the
        // runner enforces it (and writes the differences into upstream_run.json), so here it only warns.
        provenance: [
          {
            kind: 'tree-manifest',
            label: 'upstream tree',
            noun: 'upstream tree',
            manifest: `inputs/${UPSTREAM_TREE_MANIFEST}`,
            root: `inputs/${UPSTREAM_TREE_INPUT}`,
            digest: 'git-blob',
            required: false,
          },
        ],
      });
      const config = {
        repository,
        commit: request.commit,
        entry: request.entry,
        outputs: request.outputs,
        tree: `inputs/${UPSTREAM_TREE_INPUT}`,
        treeManifest: `inputs/${UPSTREAM_TREE_MANIFEST}`,
        artifactsSubdir: UPSTREAM_ARTIFACTS_DIR,
        orbitArtifacts: ORBIT_ARTIFACTS,
        dirtyExitCode: UPSTREAM_DIRTY_EXIT_CODE,
        schemaVersion: UPSTREAM_RUN_SCHEMA_VERSION,
      };
      const bundle = await createTaskBundle(bundleDir, spec, { run: request, baseDir });
      await bundle.writeScript(RUNNER, await readFile(pluginFile('upstream', RUNNER)), true);
      await bundle.writeInput(CONFIG_INPUT, JSON.stringify(config, null, 2) + '\n');
      const files = entries.filter((e) => e.mode !== '120000');
      const links = entries.filter((e) => e.mode === '120000');
      const blobs = await readBlobs(repo, [...new Set(entries.map((e) => e.oid))]);
      for (const e of files) {
        await bundle.writeInput(`${UPSTREAM_TREE_INPUT}/${e.path}`, blobs.get(e.oid)!);
        if (e.mode === '100755') await chmod(bundle.path(`inputs/${UPSTREAM_TREE_INPUT}/${e.path}`), 0o755);
      }
      const manifest = {
        schemaVersion: 'orbit.upstream_tree.v1',
        repository,
        commit: request.commit,
        files: files.map((e) => ({ path: e.path, mode: e.mode, oid: e.oid })),
        symlinks: links.map((e) => ({ path: e.path, oid: e.oid, target: blobs.get(e.oid)!.toString('utf8') })),
      };
      await bundle.writeInput(UPSTREAM_TREE_MANIFEST, JSON.stringify(manifest, null, 1) + '\n');
      return bundle;
    } finally {
      if (clone) await rm(clone, { recursive: true, force: true });
    }
  }

  async summarizeResult(bundle: Bundle, outcome: RunOutcome): Promise<TaskSummary> {
    const run = (await readJson(bundle.path(`artifacts/${UPSTREAM_RUN_FILE}`))) as UpstreamRunRecord | undefined;
    const commit = String(bundle.spec.metadata['commit'] ?? '?');
    const where = `${String(bundle.spec.metadata['repository'] ?? '?')}@${commit.slice(0, 12)}`;
    const highlights = existingPaths(bundle, [`artifacts/${UPSTREAM_RUN_FILE}`, `artifacts/${UPSTREAM_LOG}`]);
    if (!run || run.schema_version !== UPSTREAM_RUN_SCHEMA_VERSION) {
      return { headline: `${outcomePrefix(outcome)}upstream ${where}: no ${UPSTREAM_RUN_FILE} was written`, metrics: { exitCode: outcome.exitCode }, highlights };
    }
    const raw = Array.isArray(run.raw_artifacts) ? run.raw_artifacts : [];
    const code = run.exit_status?.code ?? null;
    const headline = run.aborted
      ? `${outcomePrefix(outcome)}upstream ${where} not run: ${run.aborted}`
      : `${outcomePrefix(outcome)}upstream ${where}: \`${(run.entry ?? []).join(' ')}\` exited ${code ?? run.exit_status?.signal ?? '?'} after ${run.timings?.duration_seconds ?? '?'}s; ${raw.length} raw artifact(s)`;
    return {
      headline,
      metrics: { exitCode: code, durationSeconds: run.timings?.duration_seconds ?? null, rawArtifacts: raw.length },
      highlights: [...highlights, ...existingPaths(bundle, raw.slice(0, 5).filter((a) => typeof a.path === 'string' && isSafeRelativePath(a.path)).map((a) => `artifacts/${a.path}`))],
    };
  }
}

interface UpstreamRunRecord {
  schema_version?: string;
  entry?: string[];
  aborted?: string;
  exit_status?: { code?: number | null; signal?: string | null };
  timings?: { duration_seconds?: number };
  raw_artifacts?: { path: string }[];
}

/** Tree entries a bundle cannot carry faithfully: submodules and paths that are not safe relative paths. */
function treeProblems(entries: TreeEntry[]): Problem[] {
  const problems: Problem[] = [];
  for (const e of entries) {
    if (e.mode === '160000') problems.push({ path: 'repository', message: `the commit has a submodule at ${e.path}; submodules are not copied, so the upstream could not run as committed` });
    else if (!isSafeRelativePath(e.path)) problems.push({ path: 'repository', message: `the commit has a file at ${JSON.stringify(e.path)}, a path a bundle cannot hold` });
  }
  return problems;
}
