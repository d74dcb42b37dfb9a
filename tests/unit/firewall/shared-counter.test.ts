import { FrozenClock } from '../../../src/clock';
import { CounterStore, SharedWindowCounter } from '../../../src/firewall/shared-counter';
import { createLogger } from '../../../src/logging';
import { LogCollector } from '../../support/log-collector';

/** A store shared by "instances" in this test: a plain map of totals, which can fail or hold its answer. */
class MemoryStore implements CounterStore {
  readonly totals = new Map<string, number>();
  failing = false;
  calls = 0;
  private held: (() => void)[] | undefined;

  async add(entries: readonly { key: string; count: number; expiresAt: number }[]): Promise<Map<string, number>> {
    this.calls += 1;
    if (this.held) await new Promise<void>((resolve) => this.held!.push(resolve));
    if (this.failing) throw new Error('store down');
    for (const entry of entries) this.totals.set(entry.key, (this.totals.get(entry.key) ?? 0) + entry.count);
    return new Map(entries.map((entry) => [entry.key, this.totals.get(entry.key)!]));
  }

  /** Answers nothing until `release`. */
  hold(): void {
    this.held = [];
  }

  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const resolve of held) resolve();
  }
}

describe('SharedWindowCounter', () => {
  const logs = new LogCollector();
  const logger = createLogger({ level: 'debug', pretty: false, destination: logs });
  const limit = { points: 5, seconds: 60 };
  const instances = (store: CounterStore, clock: FrozenClock, options = {}) => [
    new SharedWindowCounter('t', store, limit, clock, logger, options),
    new SharedWindowCounter('t', store, limit, clock, logger, options),
  ];

  it("counts every instance's requests before it decides: the limit holds whichever instance serves", async () => {
    const clock = new FrozenClock('2026-01-01T00:00:10Z');
    const [a, b] = instances(new MemoryStore(), clock);
    const decisions: (number | null)[] = [];
    for (let request = 0; request < 8; request += 1) decisions.push(await (request % 2 === 0 ? a : b).consume('x'));
    expect(decisions).toEqual([null, null, null, null, null, 50_000, 50_000, 50_000]); // refused until the window ends (00:01:00)
    expect(await b.consume('y')).toBeNull(); // another key, its own budget
  });

  it('allows exactly the limit of many requests at once on two instances, one store call per round trip', async () => {
    const clock = new FrozenClock('2026-01-01T00:00:10Z');
    const store = new MemoryStore();
    const [a, b] = instances(store, clock);
    const decisions = await Promise.all(Array.from({ length: 40 }, (_, request) => (request % 2 === 0 ? a : b).consume('x')));
    expect(decisions.filter((decision) => decision === null)).toHaveLength(5);
    expect(store.calls).toBeLessThanOrEqual(4); // at most one in flight and one queued per instance
    expect([...store.totals.values()]).toEqual([40]);
  });

  it('refuses at once, without waiting for the store, a key whose last total is already over', async () => {
    const clock = new FrozenClock('2026-01-01T00:00:10Z');
    const store = new MemoryStore();
    const [a] = instances(store, clock, { storeWaitMs: 60_000 });
    for (let request = 0; request < 6; request += 1) await a.consume('x');
    store.hold();
    let answered = false;
    const refused = a.consume('x').then((decision) => {
      answered = true;
      return decision;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(answered).toBe(true); // while the store still holds every answer
    expect(await refused).toBe(50_000);
    store.release();
    await a.flush();
    expect([...store.totals.values()]).toEqual([7]);
  });

  it('places the requests that arrived during a failed send after its counts', async () => {
    const clock = new FrozenClock('2026-01-01T00:00:10Z');
    const store = new MemoryStore();
    const counter = new SharedWindowCounter('t', store, { points: 2, seconds: 60 }, clock, logger, { storeWaitMs: 60_000 });
    store.hold();
    const first = counter.consume('x'); // its send is held, then fails
    const later = [counter.consume('x'), counter.consume('x')]; // counted while it is in flight
    store.failing = true;
    store.release();
    await first;
    store.failing = false;
    // The first is decided alone (1 of 2); the failed count goes again ahead of the later two: places 2 and 3.
    expect([await first, ...(await Promise.all(later))]).toEqual([null, null, 50_000]);
    expect([...store.totals.values()]).toEqual([3]);
  });

  it('stays exact when an address spray makes it forget idle keys', async () => {
    const clock = new FrozenClock('2026-01-01T00:00:10Z');
    const store = new MemoryStore();
    const counter = new SharedWindowCounter('t', store, limit, clock, logger, { maxKeys: 10 });
    for (let request = 0; request < 4; request += 1) expect(await counter.consume('x')).toBeNull();
    for (let spray = 0; spray < 50; spray += 1) await counter.consume(`spray-${spray}`);
    // What the timer does: forget idle keys beyond ten, 'x' among them; the store still knows its 4.
    counter.prune();
    expect([await counter.consume('x'), await counter.consume('x')]).toEqual([null, 50_000]);
  });

  it('starts over in the next window', async () => {
    const clock = new FrozenClock('2026-01-01T00:00:59Z');
    const counter = new SharedWindowCounter('t', new MemoryStore(), { points: 1, seconds: 60 }, clock, logger);
    expect(await counter.consume('x')).toBeNull();
    expect(await counter.consume('x')).toBe(1_000);
    clock.advance(1_000);
    expect(await counter.consume('x')).toBeNull();
  });

  it('decides on its own counts while the store fails, and sends them once it answers', async () => {
    const clock = new FrozenClock('2026-01-01T00:00:10Z');
    const store = new MemoryStore();
    const logs = new LogCollector();
    const counter = new SharedWindowCounter('t', store, limit, clock, createLogger({ level: 'debug', pretty: false, destination: logs }));
    store.failing = true;
    for (let request = 0; request < 5; request += 1) expect(await counter.consume('x')).toBeNull();
    expect(await counter.consume('x')).not.toBeNull(); // the 6th, counted here
    // Said once for the outage, not once per request.
    expect(
      logs.lines.filter((line) => line.msg === 'rate limits: the shared store did not answer; counting on this instance meanwhile'),
    ).toHaveLength(1);
    store.failing = false;
    await counter.flush();
    expect([...store.totals.values()]).toEqual([6]);
    expect(logs.lines.filter((line) => line.msg === 'rate limits: the shared store answers again')).toHaveLength(1);
  });

  it('does not keep a request waiting on a store that does not answer, and loses no count', async () => {
    const clock = new FrozenClock('2026-01-01T00:00:10Z');
    const store = new MemoryStore();
    const [counter] = instances(store, clock, { storeWaitMs: 25 });
    store.hold();
    const decisions = await Promise.all(Array.from({ length: 6 }, () => counter.consume('x')));
    expect(decisions.filter((decision) => decision === null)).toHaveLength(5); // decided on its own counts
    store.release();
    await counter.flush();
    // Sends that timed out landed after all: counted more than once rather than lost.
    expect([...store.totals.values()][0]).toBeGreaterThanOrEqual(6);
  });
});
