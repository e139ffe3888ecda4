import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diagnoseBundle } from '../../src/diagnose';
import { makeBundle, runWrapper, useTempDirs } from './helpers';

const tempDir = useTempDirs();
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

async function precheckFinding(parts: Parameters<typeof makeBundle>[1]) {
  const dir = join(await tempDir(), 'bundle');
  await makeBundle(dir, parts);
  const { exitCode } = await runWrapper(dir);
  return { exitCode, finding: (await diagnoseBundle(dir)).layers.find((l) => l.layer === 'precheck')! };
}

const INIT = '__version__ = "2.0-fork"\n';
const fork = {
  'fork/mylib/__init__.py': INIT,
  'fork/FORK_MANIFEST.json': JSON.stringify({ repository: 'https://example.org/me/mylib', commit: 'b'.repeat(40), files: { 'mylib/__init__.py': sha(INIT) } }),
};
const forkCheck = { kind: 'tree-manifest' as const, label: 'fork mylib', noun: 'fork', manifest: 'inputs/fork/FORK_MANIFEST.json', module: 'mylib' };

describe('the precheck layer of a passed precheck counts each dependency once', () => {
  it('a staged fork (its import line and its tree check) is one dependency, with its version and what was verified', async () => {
    const { exitCode, finding } = await precheckFinding({
      command: ['true'],
      inputs: fork,
      env: { PYTHONPATH: 'inputs/fork' },
      precheck: { python: { modules: [{ name: 'json' }, { name: 'mylib' }] }, provenance: [forkCheck] },
    });
    expect(exitCode).toBe(0);
    expect(finding).toMatchObject({ status: 'ok', summary: expect.stringMatching(/^2 dependencies resolved: json [\d.]+, mylib 2\.0-fork \(staged fork, 1 file verified\)$/) });
    // Every line stays in the evidence: the interpreter, both modules and the fork check.
    expect(finding.evidence.map((e) => e.text.replace(/:.*/, ''))).toEqual(['[ok] interpreter', '[ok] module json', '[ok] module mylib', '[ok] fork mylib']);
  });

  it('one module reads in the singular; a fork declared only as a check (the old modules[].fork) still counts once', async () => {
    const one = await precheckFinding({ command: ['true'], precheck: { python: { modules: [{ name: 'json' }] } } });
    expect(one.finding.summary).toMatch(/^1 dependency resolved: json [\d.]+$/);
    const legacy = await precheckFinding({
      command: ['true'],
      inputs: fork,
      env: { PYTHONPATH: 'inputs/fork' },
      precheck: { python: { modules: [{ name: 'mylib', fork: 'inputs/fork/FORK_MANIFEST.json' }] } },
    });
    expect(legacy.finding.summary).toBe('1 dependency resolved: mylib 2.0-fork (staged fork, 1 file verified)');
  });
});
