/** `orbit sweep results` as a table and CSV: a cell's metrics keyed by one of its own axis values fold into one column. */
import { describe, expect, it } from 'vitest';
import { formatResults, type CellResult, type FiringResults } from '../../src/cli/sweep-results';

const cell = (ckpt: string, env: string, metrics: CellResult['metrics']): CellResult => ({
  cell: `${ckpt}.${env}`,
  axes: { checkpoint: ckpt, env },
  workflowId: `w-${ckpt}-${env}`,
  status: 'succeeded',
  host: 'local',
  metrics,
});

const results = (cells: CellResult[]): FiringResults => ({ sweep: 's', firingId: 'f', firings: ['f'], axes: ['checkpoint', 'env'], metricNames: [], cells });

describe('sweep results', () => {
  it('folds <metric>.<axis value> into <metric>: checkpoints x environments read as one column per metric', () => {
    const csv = formatResults(
      results([cell('step-100', 'austen', { 'perplexity.austen': 14, steps: 100 }), cell('step-400', 'whitman', { 'perplexity.whitman': 10.8, steps: 400 })]),
      'csv',
    );
    expect(csv.split('\n')).toEqual(['cell,checkpoint,env,status,host,perplexity,steps', 'step-100.austen,step-100,austen,succeeded,local,14,100', 'step-400.whitman,step-400,whitman,succeeded,local,10.8,400']);
  });

  it('keeps a key that is not of its own axis values, or that would clash with one it has', () => {
    const csv = formatResults(results([cell('a', 'austen', { 'perplexity.whitman': 3, 'loss.austen': 2, loss: 1 })]), 'csv');
    expect(csv.split('\n')).toEqual(['cell,checkpoint,env,status,host,perplexity.whitman,loss.austen,loss', 'a.austen,a,austen,succeeded,local,3,2,1']);
  });

  it('JSON keeps every cell\'s metrics as the plugin named them', () => {
    const json = JSON.parse(formatResults(results([cell('a', 'austen', { 'perplexity.austen': 14 })]), 'json')) as FiringResults;
    expect(json.cells[0]!.metrics).toEqual({ 'perplexity.austen': 14 });
  });
});
