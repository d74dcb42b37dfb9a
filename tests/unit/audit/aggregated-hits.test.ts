import { AggregatedHits, HitWindow } from '../../../src/audit/aggregated-hits';
import { FrozenClock } from '../../../src/clock';
import { createLogger } from '../../../src/logging';

describe('AggregatedHits', () => {
  it('resolves flush only once the windows a hit turned over are written too (shutdown loses no audit row)', async () => {
    const clock = new FrozenClock('2026-01-01T00:00:00Z');
    let release!: () => void;
    const slowWrite = new Promise<void>((resolve) => (release = resolve));
    const written: HitWindow<'probe'>[] = [];
    const hits = new AggregatedHits<'probe'>(createLogger({ level: 'silent', pretty: false }), clock, {
      kinds: ['probe'],
      source: 'test',
      firstHitMessage: () => 'probe seen',
      onWindow: async (window) => {
        // The first window's row is slow to write (the audit chain lock is busy).
        if (written.length === 0 && window.hits === 2) await slowWrite;
        written.push(window);
      },
    });
    hits.record('probe', '192.0.2.1');
    hits.record('probe', '192.0.2.1');
    clock.advance(60_000);
    // This hit turns the first window over in the background.
    hits.record('probe', '192.0.2.2');
    let flushed = false;
    const flushing = hits.flush().then(() => (flushed = true));
    await new Promise(setImmediate);
    expect(flushed).toBe(false);
    release();
    await flushing;
    expect(written.map((window) => [window.hits, window.top])).toEqual([
      [1, [{ subject: '192.0.2.2', hits: 1 }]],
      [2, [{ subject: '192.0.2.1', hits: 2 }]],
    ]);
    expect(hits.counts()).toEqual({ probe: 3 });
  });
});
