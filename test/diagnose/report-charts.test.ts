import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRuntimeLog } from '../../src/diagnose';
import { collectReportData, gpuTimeline, progressScale, renderReport, runMarks, type ChartData } from '../../src/report';
import { useTempDirs } from './helpers';
import { at, auditLines, CANCELLED, chartBundle, DIVERGING_LOSS, KILLED, RUN_START, T0, type ChartBundle } from './report-fixtures';

const tempDir = useTempDirs();

/** The report page for a fixture bundle, and the chart data its script draws. */
async function render(parts: ChartBundle): Promise<{ html: string; charts: ChartData }> {
  const dir = await chartBundle(join(await tempDir(), 'bundle'), parts);
  const html = renderReport(await collectReportData(dir), { js: '', css: '' });
  const json = /<script id="report-data" type="application\/json">(.*?)<\/script>/s.exec(html)?.[1];
  return { html, charts: JSON.parse(json!) as ChartData };
}

describe('the report: a diverging loss', () => {
  it('is drawn on a log axis whose decade ticks span the range, labelled 1, 100, 1e4 ... 1e12', async () => {
    const { html, charts } = await render(KILLED);
    const loss = charts.series[0]!;
    expect(loss.scale).toEqual({
      kind: 'log',
      min: 1,
      max: 1e12,
      ticks: [1, 100, 1e4, 1e6, 1e8, 1e10, 1e12],
      labels: ['1', '100', '1e4', '1e6', '1e8', '1e10', '1e12'],
      note: 'log y axis: the positive values span 1 to 1e12 (12 decades)',
    });
    expect(html).toContain('<span class="scale-note">log y axis: the positive values span 1 to 1e12 (12 decades)</span>');
  });

  it('marks its inf and NaN points at the top edge, labelled by step, instead of dropping them', async () => {
    const { html, charts } = await render(KILLED);
    const loss = charts.series[0]!;
    expect(loss.y.slice(48)).toEqual([1e12, ...Array<null>(11).fill(null)]); // gaps in the line...
    expect(loss.marks).toEqual([
      // ...and a marker per point, a label per run
      { kind: 'inf', steps: [50], label: 'inf at step 50' },
      { kind: 'NaN', steps: [51, 52, 53, 54, 55, 56, 57, 58, 59, 60], label: 'NaN at steps 51-60 (10 points)' },
    ]);
    expect(html).toContain('11 not finite, drawn as gaps and marked ▲ at the top edge: inf at step 50; NaN at steps 51-60 (10 points)');
  });

  it('stays linear when it spans decades but has a value <= 0, and says why', async () => {
    const loss = DIVERGING_LOSS.slice(0, 40).map((r) => (r.step === 20 ? { ...r, loss: 0 } : r));
    const { html, charts } = await render({ ...KILLED, loss });
    expect(charts.series[0]!.scale).toEqual({
      kind: 'linear',
      note: 'linear y axis, not log: the positive values span 1 to 5.623e9 (9.8 decades), but 1 value is <= 0, which a log axis cannot show',
    });
    expect(html).toContain('which a log axis cannot show</span>');
  });

  it('labels the first six runs of non-finite points and marks every point', async () => {
    const loss = DIVERGING_LOSS.slice(0, 20).map((r) => (r.step % 2 === 0 ? { ...r, loss: 'nan' as const } : r));
    const { html, charts } = await render({ ...KILLED, loss });
    const marks = charts.series[0]!.marks;
    expect(marks.map((r) => r.steps)).toEqual([[2], [4], [6], [8], [10], [12], [14], [16], [18], [20]]);
    expect(marks.map((r) => r.label)).toEqual(['NaN at step 2', 'NaN at step 4', 'NaN at step 6', 'NaN at step 8', 'NaN at step 10', 'NaN at step 12', null, null, null, null]);
    expect(html).toContain('NaN at step 12; 4 more runs, marked but not labelled</b>');
  });

  it('puts -inf at the bottom edge', async () => {
    const loss = DIVERGING_LOSS.slice(0, 10).map((r) => (r.step === 5 ? { ...r, loss: -Infinity } : r));
    const { html, charts } = await render({ ...KILLED, loss });
    expect(charts.series[0]!.marks).toEqual([{ kind: '-inf', steps: [5], label: '-inf at step 5' }]);
    expect(html).toContain('marked ▼ at the bottom edge (-inf): -inf at step 5');
  });
});

describe('progressScale', () => {
  it('is log past two decades of positive values, linear up to them, whatever the goal', () => {
    expect(progressScale([2, 1.5, 0.5, 0.021]).kind).toBe('linear'); // 1.98 decades
    expect(progressScale([2, 0.019]).kind).toBe('log');
    expect(progressScale([5e-3, 2, NaN, Infinity])).toMatchObject({ kind: 'log', labels: ['1e-3', '1e-2', '0.1', '1', '10'] });
    expect(progressScale([NaN, NaN]).kind).toBe('linear');
    expect(progressScale([]).kind).toBe('linear');
  });

  it('labels every 2nd, 3rd... decade so that no more than 9 ticks show', () => {
    expect(progressScale([1e-20, 1e20])).toMatchObject({ min: 1e-20, max: 1e20, labels: ['1e-20', '1e-15', '1e-10', '1e-5', '1', '1e5', '1e10', '1e15', '1e20'] });
    expect(progressScale([3e-5, 7e6])).toMatchObject({ min: 1e-6, max: 1e8, labels: ['1e-6', '1e-4', '1e-2', '1', '100', '1e4', '1e6', '1e8'] });
  });
});

describe('runMarks: the process end in runtime/runtime.log', () => {
  const marks = (lines: string[]) => runMarks(parseRuntimeLog(lines.join('\n'))).map((m) => [m.kind, m.label, m.time]);

  it('labels the exit by its code: 0, non-zero, and a signal (128 + N)', () => {
    expect(marks([`${at(1)} exit code=0 stopping=0`])).toEqual([['exit', 'exit 0', at(1)]]);
    expect(marks([`${at(1)} exit code=1 stopping=0`])).toEqual([['failed', 'exit 1', at(1)]]);
    expect(marks([`${at(1)} exit code=137 stopping=0`])).toEqual([['kill', 'killed (SIGKILL) 137', at(1)]]);
    expect(marks([`${at(1)} exit code=143 stopping=1`])).toEqual([['kill', 'terminated (SIGTERM) 143', at(1)]]);
    expect(marks([`${at(1)} exit code=139 stopping=0`])).toEqual([['kill', 'killed (SIGSEGV) 139', at(1)]]);
  });

  it('marks a stop, a cancel or timeout, the KILL after the grace and a process found gone; not the other phases', () => {
    expect(
      marks([
        ...RUN_START,
        `${at(5)} cancel requested: TERM to process group 10 why=timed-out`,
        `${at(5.1)} stop requested: forwarding TERM to pid 11`,
        `${at(15.1)} grace of 10s over: KILL to process group 10`,
        `${at(60)} process 10 vanished without an exit code; manifest of what remains written by Orbit`,
      ]),
    ).toEqual([
      ['stop', 'timed out: TERM', at(5)],
      ['stop', 'stop requested', at(5.1)],
      ['kill', 'KILL after the grace', at(15.1)],
      ['kill', 'found gone, no exit code', at(60)],
    ]);
    expect(marks([`${at(2)} cancel requested: TERM to process group 10 why=cancelled`, `${at(3)} cancel requested: TERM to process group 10`])).toEqual([
      ['stop', 'cancel requested (TERM)', at(2)],
      ['stop', 'TERM from Orbit', at(3)],
    ]);
  });
});

describe('the report: the GPU charts mark the exit and a kill', () => {
  it('draws the SIGKILL exit at its time on the audit time axis', async () => {
    const { html, charts } = await render(KILLED);
    expect(charts.gpus[0]!.t[0]).toBe((T0 + 1000) / 1000); // the x axis: epoch seconds
    expect(charts.gpuMarks).toEqual([{ x: (T0 + 14_500) / 1000, kind: 'kill', label: 'killed (SIGKILL) 137' }]);
    expect(charts.gpuRange).toEqual([(T0 + 1000) / 1000, (T0 + 16_000) / 1000]);
    expect(html).toContain(
      '<p class="caption" id="gpu-marks">vertical lines, from runtime/runtime.log: <span class="mark-kill">killed (SIGKILL) 137</span> at 2026-11-25T10:00:14.500Z (+14.50s, runtime/runtime.log:7)</p>',
    );
  });

  it('draws a cancel: the TERM request, the stop the wrapper logged, the exit 143', async () => {
    const { charts } = await render(CANCELLED);
    expect(charts.gpuMarks).toEqual([
      { x: (T0 + 8000) / 1000, kind: 'stop', label: 'cancel requested (TERM)' },
      { x: (T0 + 8010) / 1000, kind: 'stop', label: 'stop requested' },
      { x: (T0 + 9000) / 1000, kind: 'kill', label: 'terminated (SIGTERM) 143' },
    ]);
  });

  it('widens the time axis to a mark just past the last sample; one far outside is listed, not drawn', async () => {
    const runtime = [...RUN_START, `${at(20)} exit code=0 stopping=0`, `${at(400)} process 10 vanished without an exit code; manifest of what remains written by Orbit`];
    const { html, charts } = await render({ ...KILLED, runtime, audit: auditLines(1, 10) });
    expect(charts.gpuRange).toEqual([(T0 + 1000) / 1000, (T0 + 20_000) / 1000]);
    expect(charts.gpuMarks).toEqual([{ x: (T0 + 20_000) / 1000, kind: 'exit', label: 'exit 0' }]);
    expect(html).toContain("found gone, no exit code</span> at 2026-11-25T10:06:40.000Z (+400.00s, runtime/runtime.log:8), outside the audit's time range: not drawn");
    expect(gpuTimeline([], []).marks).toEqual([]);
  });

  it('says when runtime.log has nothing to mark', async () => {
    const { html, charts } = await render({ ...KILLED, runtime: RUN_START });
    expect(charts.gpuMarks).toEqual([]);
    expect(html).toContain('no exit, stop or kill in runtime/runtime.log to mark');
  });
});
