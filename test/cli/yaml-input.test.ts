import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/bundle';
import { loadInventory, parseInventory } from '../../src/hosts/inventory';
import { loadSweep, SweepFileError } from '../../src/sweeps/load';
import { parseYaml, readYamlText, YAML_LIMITS, YamlInputError } from '../../src/yaml-input';
import { tempDir } from '../helpers/bundles';
import { ALIAS_BOMB } from './inputs';
import { testRegistry } from '../helpers/sleeper-plugin';

function refusal(f: () => unknown): YamlInputError {
  try {
    f();
  } catch (e) {
    if (e instanceof YamlInputError) return e;
    throw e;
  }
  throw new Error('expected a YamlInputError');
}

describe('the shared YAML loader', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir('yaml-input-');
  });
  afterAll(async () => tmp.cleanup());

  it('states its limits: 1 MiB and 100 aliases', () => {
    expect(YAML_LIMITS).toEqual({ maxBytes: 1024 * 1024, maxAliases: 100 });
  });

  it('refuses an alias bomb in one line instead of throwing ReferenceError', () => {
    const e = refusal(() => parseYaml(`task: training\n${ALIAS_BOMB}\n`, 'bomb.yaml'));
    expect(e.kind).toBe('limit');
    expect(e.message).toBe('bomb.yaml: its aliases (*name) expand to more than 100 copies; write the values out instead of nesting anchors and aliases');
    expect(e.message).not.toContain('\n');
  });

  it('refuses more than 100 alias nodes, naming the line of the first one past the limit, and reads 100', () => {
    const anchors = 'x: &x 1\n';
    const ok = `${anchors}${Array.from({ length: 100 }, (_, i) => `k${i}: *x`).join('\n')}\n`;
    expect((parseYaml(ok, 'ok.yaml') as Record<string, unknown>).k99).toBe(1);
    const e = refusal(() => parseYaml(`${ok}k100: *x\n`, 'many.yaml'));
    expect(e.message).toBe('many.yaml: line 102, column 7: more than 100 aliases (*name); write the values out instead of referring to anchors');
  });

  it('refuses text over the size limit before parsing it', () => {
    const e = refusal(() => parseYaml(`a: "${'x'.repeat(YAML_LIMITS.maxBytes)}"\n`, 'big.yaml'));
    expect(e.message).toBe(`big.yaml: is ${YAML_LIMITS.maxBytes + 6} bytes, over the 1 MiB (1048576-byte) limit on YAML/JSON input; make the file smaller`);
  });

  it('reads a file only up to the limit', async () => {
    const big = join(tmp.dir, 'big.yaml');
    await writeFile(big, 'x'.repeat(4 * 1024 * 1024));
    await expect(readYamlText(big)).rejects.toThrow(/big\.yaml: is 4194304 bytes, over the 1 MiB/);
    await writeFile(big, 'a: 1\n');
    expect(await readYamlText(big)).toBe('a: 1\n');
    await expect(readYamlText(join(tmp.dir, 'none.yaml'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('still finds duplicate keys, in block and flow mappings, at any depth, with line and column', () => {
    const e = refusal(() => parseYaml('a: 1\nb:\n  c: 1\n  c: 2\nd: { e: 1, e: 2 }\na: 3\n', 'dup.yaml'));
    expect(e.kind).toBe('syntax');
    expect(e.problems).toEqual([
      { line: 4, column: 3, message: 'Map keys must be unique' },
      { line: 5, column: 12, message: 'Map keys must be unique' },
      { line: 6, column: 1, message: 'Map keys must be unique' },
    ]);
    // 1 and "1" would be one key of the data: refused rather than one value silently dropped.
    expect(refusal(() => parseYaml('1: a\n"1": b\n', 'num.yaml')).message).toBe('num.yaml: not valid YAML: line 2, column 1: Map keys must be unique');
  });

  it('reads 20,000 keys just under the limit (the library check compared every key with every other)', () => {
    const text = Array.from({ length: 20_000 }, (_, i) => `key${i}: ${i}`).join('\n');
    const data = parseYaml(text, 'wide.yaml') as Record<string, number>;
    expect(Object.keys(data)).toHaveLength(20_000);
    expect(data.key19999).toBe(19999);
  });

  it('reports syntax errors by line and column, one line each', () => {
    const e = refusal(() => parseYaml('a: [1, 2\n', 'bad.yaml'));
    expect(e.kind).toBe('syntax');
    expect(e.problems[0]).toMatchObject({ line: expect.any(Number), column: expect.any(Number) });
    expect(e.problems.every((p) => !p.message.includes('\n'))).toBe(true);
  });

  it('is what sweep files and hosts.yaml are read with', async () => {
    const sweep = join(tmp.dir, 'bomb-sweep.yaml');
    await writeFile(sweep, `${ALIAS_BOMB}\n`);
    const e = await loadSweep(sweep, await testRegistry()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SweepFileError);
    expect((e as Error).message).toBe(`${sweep}: its aliases (*name) expand to more than 100 copies; write the values out instead of nesting anchors and aliases`);

    expect(() => parseInventory(`${ALIAS_BOMB}\n`, '/h.yaml')).toThrow(ValidationError);
    expect(() => parseInventory(`${ALIAS_BOMB}\n`, '/h.yaml')).toThrow('hosts file /h.yaml is invalid:\n  - its aliases (*name) expand to more than 100 copies');
    const hosts = join(tmp.dir, 'hosts.yaml');
    await writeFile(hosts, `hosts: []\n#${'x'.repeat(YAML_LIMITS.maxBytes)}\n`);
    await expect(loadInventory({ path: hosts, env: {} })).rejects.toThrow(/hosts file .*hosts\.yaml is invalid:\n {2}- is \d+ bytes, over the 1 MiB/);
  });
});
