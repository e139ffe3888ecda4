import { describe, expect, it } from 'vitest';
import { healthText, printStatus, type StatusReport } from '../../src/cli/status';
import type { HealthReport } from '../../src/common/health';

const base: StatusReport = { runId: 'r1', execution: 'running', phase: 'running', answeredBy: 'query', phases: [], taskQueue: 'q', startedAt: '2026-12-01T10:00:00Z' };

function printed(r: StatusReport): string[] {
  const out: string[] = [];
  printStatus(r, { out: (s) => out.push(s), note: () => undefined });
  return out;
}

describe('orbit status shows the health verdict', () => {
  it('prints the worst finding with its evidence, then the others', () => {
    const health: HealthReport = {
      state: 'unhealthy',
      at: '2026-12-01T10:05:00Z',
      rules: 3,
      findings: [
        { rule: 'not-finite:loss', level: 'unhealthy', summary: 'loss became NaN at step 40 (it was 2.1 at step 39)', evidence: { file: 'artifacts/logging.jsonl', line: 40, text: '{"step": 40, "loss": NaN}' }, onUnhealthy: 'stop' },
        { rule: 'disk', level: 'warning', summary: "the host's disk under the run folder has 700 MB free (the rule wants 512 MB)", onUnhealthy: 'warn' },
      ],
    };
    const lines = printed({ ...base, health });
    const at = lines.findIndex((l) => l.startsWith('  health: '));
    expect(lines.slice(at, at + 3)).toEqual([
      '  health: unhealthy: not-finite:loss: loss became NaN at step 40 (it was 2.1 at step 39) (artifacts/logging.jsonl:40); +1 more',
      '    artifacts/logging.jsonl:40: {"step": 40, "loss": NaN}',
      "    also warning: disk: the host's disk under the run folder has 700 MB free (the rule wants 512 MB)",
    ]);
  });

  it('prints the memo headline when no worker answered, and nothing for a bundle without rules', () => {
    expect(printed({ ...base, answeredBy: 'history', health: { state: 'warning', rule: 'stalled:loss', summary: 'loss has not improved' } })).toContain('  health: warning: stalled:loss: loss has not improved');
    expect(healthText({ state: 'ok', at: '2026-12-01T10:05:00Z', rules: 4, findings: [] })).toBe('ok (4 rules)');
    expect(printed(base).some((l) => l.includes('health'))).toBe(false);
  });
});
