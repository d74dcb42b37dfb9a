import { KeyedCounts } from '../../../src/net/keyed-counts';

describe('KeyedCounts', () => {
  it('takes up to the limit per key, gives back, and forgets a key back at zero', () => {
    const counts = new KeyedCounts();
    expect([counts.take('a', 2), counts.take('a', 2), counts.take('a', 2), counts.take('b', 2)]).toEqual([true, true, false, true]);
    expect([counts.of('a'), counts.of('b'), counts.of('c')]).toEqual([2, 1, 0]);
    counts.add('a', -1);
    expect(counts.take('a', 2)).toBe(true);
    counts.add('b', -1);
    counts.add('b', -1);
    expect(counts.of('b')).toBe(0);
    expect(counts.take('b', 1)).toBe(true);
  });
});
