/** The probe's output, parsed as untrusted (src/hosts/host/process.ts parseProbe): the disk line above all. */
import { describe, expect, it } from 'vitest';
import { parseProbe, splitTails } from '../../src/hosts/host/process';
import { PROBE_SECTION } from '../../src/common/protocol';

const output = (head: string) => `pid=42\nalive=1\nexit=\nlaunched=1\nbytes=123\n${head}\n${PROBE_SECTION.runtimeLog}\nline\n${PROBE_SECTION.taskLog}\nstep 1\n`;

describe('parseProbe', () => {
  it('reads df\'s available and total KiB of the run folder as whole MB', () => {
    expect(parseProbe(output('disk=2048 49152'))).toMatchObject({ state: 'running', pid: 42, artifactBytes: 123, diskFreeMb: 2, diskTotalMb: 48, runtimeLogTail: ['line'], taskLogTail: ['step 1'] });
    expect(parseProbe(output('disk=0 49152'))).toMatchObject({ diskFreeMb: 0, diskTotalMb: 48 });
    // A 4 PB filesystem: KiB counts beyond 32 bits.
    expect(parseProbe(output('disk=1099511627776 4398046511104'))).toMatchObject({ diskFreeMb: 1073741824, diskTotalMb: 4294967296 });
  });

  it('leaves the disk out when the host says nothing usable, and never throws', () => {
    for (const bad of ['disk=', 'disk=abc def', 'disk=-5 100', 'disk=100', 'disk=200 100', 'disk=1 0', 'disk=1e9 2e9', 'disk=1 2 3', `disk=${'9'.repeat(30)} ${'9'.repeat(30)}`, 'disk=99999999999999999 99999999999999999', '']) {
      const p = parseProbe(output(bad));
      expect(p.diskFreeMb, bad).toBeUndefined();
      expect(p.diskTotalMb, bad).toBeUndefined();
      expect(p.state).toBe('running');
    }
    expect(parseProbe('state=missing\n')).toEqual({ state: 'missing', pid: null, exitCode: null, artifactBytes: 0, runtimeLogTail: [], taskLogTail: [] });
  });

  it('keeps the task log apart when the runtime log is empty (the marker then follows its own at once)', () => {
    const p = parseProbe(`pid=42\nalive=1\nexit=\nlaunched=1\n${PROBE_SECTION.runtimeLog}\n${PROBE_SECTION.taskLog}\nstep 1\nstep 2\n`);
    expect(p).toMatchObject({ runtimeLogTail: [], taskLogTail: ['step 1', 'step 2'] });
  });

  it("splits one tail of both logs by GNU tail's headers; either log may be missing", () => {
    const both = '==> runtime/runtime.log <==\nlaunched\nstarted\n\n==> artifacts/job.log <==\nstep 1\nstep 2';
    expect(splitTails(both, 'runtime/runtime.log', 'artifacts/job.log')).toEqual({ runtimeLogTail: ['launched', 'started'], taskLogTail: ['step 1', 'step 2'] });
    expect(splitTails('==> artifacts/job.log <==\nonly\n', 'runtime/runtime.log', 'artifacts/job.log')).toEqual({ runtimeLogTail: [], taskLogTail: ['only'] });
    expect(splitTails('==> runtime/runtime.log <==\nno task log yet', 'runtime/runtime.log', 'artifacts/job.log')).toEqual({ runtimeLogTail: ['no task log yet'], taskLogTail: [] });
    expect(splitTails('', 'runtime/runtime.log', 'artifacts/job.log')).toEqual({ runtimeLogTail: [], taskLogTail: [] });
    // A header the job prints into its own log changes only its own task log's tail.
    const forged = '==> runtime/runtime.log <==\nlaunched\n\n==> artifacts/job.log <==\nstep 1\n==> runtime/runtime.log <==\nfake\n';
    expect(splitTails(forged, 'runtime/runtime.log', 'artifacts/job.log')).toEqual({ runtimeLogTail: ['launched'], taskLogTail: ['step 1', '==> runtime/runtime.log <==', 'fake'] });
  });
});
