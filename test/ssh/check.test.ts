import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHost, factsWarnings, parseHostFacts } from '../../src/hosts/check';
import { loadInventory } from '../../src/hosts/inventory';
import { MARK } from '../../src/common/protocol';
import { sshTransportFor } from '../../src/worker/hosts';
import { tempDir } from '../helpers/bundles';
import { startSshd, writeHostsFile, type SshdServer } from '../helpers/sshd';

describe('checkHost', () => {
  let server: SshdServer;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    [server, tmp] = await Promise.all([startSshd({ name: 'check-a' }), tempDir()]);
  });
  afterAll(async () => Promise.all([server?.stop(), tmp?.cleanup()]));

  it('reports the facts of a host loaded from hosts.yaml', async () => {
    const file = join(tmp.dir, 'hosts.yaml');
    await writeHostsFile(file, [server]);
    const inventory = await loadInventory({ path: file });
    const host = inventory.hosts[0];
    if (!host) throw new Error('no host');
    const transport = sshTransportFor(host);
    try {
      const facts = await checkHost(transport, { workRoot: join(host.workRoot, 'not/yet/there') });
      expect(facts.kernel).toMatch(/^\d+\.\d+/);
      expect(facts.os.length).toBeGreaterThan(0);
      expect(facts.os).not.toBe('unknown');
      expect(facts.diskPath).toBe(host.workRoot);
      expect(facts.freeDiskBytes).toBeGreaterThan(0);
      expect(facts.python3).toMatch(/^3\.\d+\.\d+$/);
      expect(factsWarnings(facts, host).filter((w) => !w.startsWith('only'))).toEqual(
        facts.gpus.length === 0 ? [] : [`hosts.yaml says 0 gpus, the host shows ${facts.gpus.length} (${facts.gpuSummary.split('\n')[0]})`],
      );
    } finally {
      await transport.close();
    }
  });

  it('parses GPUs, missing tools and hostile output defensively', () => {
    const mark = `${MARK.checkSection} `;
    const out = (sections: Record<string, string>) => Object.entries(sections).map(([k, v]) => `\n${mark}${k}\n${v}`).join('');
    const gpu = parseHostFacts(
      out({
        os: '"Ubuntu 22.04.4 LTS"\n\nLinux',
        kernel: '5.15.0-101-generic',
        arch: 'x86_64',
        hostname: 'gpu-a',
        disk: '/data/orbit\n/dev/nvme0n1p1   960379496 402417804 509108940      45% /data',
        gpus: 'GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-1)\nGPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-2)\nexit=0',
        python3: '3.10.12',
      }),
    );
    expect(gpu).toEqual({
      os: 'Ubuntu 22.04.4 LTS',
      kernel: '5.15.0-101-generic',
      arch: 'x86_64',
      hostname: 'gpu-a',
      diskPath: '/data/orbit',
      freeDiskBytes: 509108940 * 1024,
      gpus: ['GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-1)', 'GPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-2)'],
      gpuSummary: 'GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-1)\nGPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-2)',
      python3: '3.10.12',
    });
    const bare = parseHostFacts(out({ os: '\nLinux', gpus: 'exit=missing', python3: 'missing', disk: '/\ngarbage' }));
    expect(bare).toMatchObject({ os: 'Linux', kernel: 'unknown', gpus: [], gpuSummary: 'no GPU', python3: null, freeDiskBytes: null });
    const broken = parseHostFacts(out({ gpus: 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.\nexit=9' }));
    expect(broken.gpuSummary).toBe('nvidia-smi failed (exit 9): NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.');
    expect(parseHostFacts('\u001b[31m'.repeat(5000)).os).toBe('unknown');
    expect(parseHostFacts(out({ hostname: `evil\u001b]0;title\u0007${'x'.repeat(1000)}` })).hostname).toHaveLength(300);
  });
});
