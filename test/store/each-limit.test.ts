import { describe, expect, it } from 'vitest';
import { eachLimit } from '../../src/store/cas';

describe('eachLimit', () => {
  it('after a failure starts no more items and rejects only once the running ones have settled', async () => {
    const started: number[] = [];
    const finished: number[] = [];
    const err = await eachLimit([0, 1, 2, 3, 4, 5, 6, 7], 3, async (i) => {
      started.push(i);
      if (i === 1) throw new Error('item 1 failed');
      await new Promise((r) => setTimeout(r, 50));
      finished.push(i);
    }).catch((e: Error) => e);
    expect((err as Error).message).toBe('item 1 failed');
    // 0 and 2 were running when 1 failed: both finished before the rejection; nothing after them started.
    expect(started).toEqual([0, 1, 2]);
    expect(finished.sort()).toEqual([0, 2]);
  });

  it('runs every item, at most `limit` at once', async () => {
    let running = 0;
    let most = 0;
    const done: number[] = [];
    await eachLimit([...Array(10).keys()], 4, async (i) => {
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      done.push(i);
    });
    expect(done.sort((a, b) => a - b)).toEqual([...Array(10).keys()]);
    expect(most).toBe(4);
  });
});
