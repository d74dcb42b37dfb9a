import { FrozenClock } from '../../../src/clock';
import { CounterStore, SharedWindowCounter } from '../../../src/firewall/shared-counter';
import { createLogger } from '../../../src/logging';
import { LogCollector } from '../../support/log-collector';

/** A store shared by "instances" in this test: a plain map of totals. */
class MemoryStore implements CounterStore {
  readonly totals = new Map<string, number>();
  failing = false;

  async add(entries: readonly { key: string; count: number; expiresAt: number }[]): Promise<Map<string, number>> {
    if (this.failing) throw new Error('store down');
    for (const entry of entries) this.totals.set(entry.key, (this.totals.get(entry.key) ?? 0) + entry.count);
    return new Map(entries.map((entry) => [entry.key, this.totals.get(entry.key)!]));
  }
}

describe('SharedWindowCounter', () => {
  const logs = new LogCollector();
  const logger = createLogger({ level: 'debug', pretty: false, destination: logs });
  const limit = { points: 5, seconds: 60 };

  it('decides at once from its own count, and learns the other instances\' counts at its next flush', async () => {
    const clock = new FrozenClock('2026-01-01T00:00:10Z');
    const store = new MemoryStore();
    const a = new SharedWindowCounter('t', store, limit, clock, logger);
    const b = new SharedWindowCounter('t', store, limit, clock, logger);
    for (let request = 0; request < 3; request += 1) expect([a.consume('x'), b.consume('x')]).toEqual([null, null]);
    await a.flush();
    await b.flush();
    expect([...store.totals.values()]).toEqual([6]);
    expect(a.consume('x')).toBeNull(); // still on what it knew: 3 + 1
    await a.flush(); // learns 7
    expect(a.consume('x')).toBe(50_000); // refused until the window ends (00:01:00)
    expect(b.consume('y')).toBeNull(); // another key, its own budget
  });

  it('starts over in the next window', async () => {
    const clock = new FrozenClock('2026-01-01T00:00:59Z');
    const counter = new SharedWindowCounter('t', new MemoryStore(), { points: 1, seconds: 60 }, clock, logger);
    expect(counter.consume('x')).toBeNull();
    expect(counter.consume('x')).toBe(1_000);
    clock.advance(1_000);
    expect(counter.consume('x')).toBeNull();
  });

  it('keeps counting alone while the store fails, and sends the counts once it answers', async () => {
    const clock = new FrozenClock('2026-01-01T00:00:10Z');
    const store = new MemoryStore();
    const counter = new SharedWindowCounter('t', store, limit, clock, logger);
    store.failing = true;
    for (let request = 0; request < 5; request += 1) expect(counter.consume('x')).toBeNull();
    await counter.flush();
    expect(logs.find((line) => line.msg === 'rate limits: the shared store did not answer; counting on this instance meanwhile')).toBeDefined();
    expect(counter.consume('x')).not.toBeNull(); // the 6th, counted here
    store.failing = false;
    await counter.flush();
    expect([...store.totals.values()]).toEqual([6]);
  });
});
