import type Redis from 'ioredis';
import type { Pool } from 'pg';
import type { Clock } from '../clock';
import type { RateLimit } from './firewall.settings';
import type { Logger } from '../logging';
import { FreshCall } from '../db/fresh-call';
import { TIMED_OUT, settleWithin } from '../settle-within';
import { RATE_LIMIT_TABLE } from './rate-limit.entity';

/** Adds counts to the shared totals of some keys and returns their new totals. */
export interface CounterStore {
  add(entries: readonly { key: string; count: number; expiresAt: number }[]): Promise<Map<string, number>>;
}

/**
 * In the rate-limit table (rate-limiter-flexible's layout), one statement per send for every key.
 * Rows are written in key order, so two instances sending overlapping keys at once lock them in
 * the same order and cannot deadlock.
 */
export class PostgresCounterStore implements CounterStore {
  constructor(private readonly pool: Pool) {}

  async add(entries: readonly { key: string; count: number; expiresAt: number }[]): Promise<Map<string, number>> {
    const sorted = [...entries].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const { rows } = await this.pool.query<{ key: string; points: number }>(
      `INSERT INTO ${RATE_LIMIT_TABLE} (key, points, expire)
       SELECT key, points, expire FROM unnest($1::varchar[], $2::int[], $3::bigint[]) WITH ORDINALITY AS t(key, points, expire, n) ORDER BY n
       ON CONFLICT (key) DO UPDATE SET points = ${RATE_LIMIT_TABLE}.points + EXCLUDED.points
       RETURNING key, points`,
      [sorted.map((entry) => entry.key), sorted.map((entry) => entry.count), sorted.map((entry) => entry.expiresAt)],
    );
    return new Map(rows.map((row) => [row.key, Number(row.points)]));
  }
}

/**
 * In Redis: INCRBY and PEXPIRE per key, one round trip per send. The expiry is relative (time left
 * by Bastion's clock), so a Redis server whose clock differs from ours still ends the window on time.
 */
export class RedisCounterStore implements CounterStore {
  constructor(
    private readonly client: Redis,
    private readonly clock: Clock,
  ) {}

  async add(entries: readonly { key: string; count: number; expiresAt: number }[]): Promise<Map<string, number>> {
    const now = this.clock.now().getTime();
    const pipeline = this.client.pipeline();
    for (const entry of entries) pipeline.incrby(entry.key, entry.count).pexpire(entry.key, Math.max(1, entry.expiresAt - now));
    const results = (await pipeline.exec()) ?? [];
    const totals = new Map<string, number>();
    entries.forEach((entry, index) => {
      const [error, total] = results[index * 2] ?? [new Error('Redis gave no reply')];
      // exec() reports a failed command in its reply rather than rejecting: a failure is a failure.
      if (error) throw error;
      totals.set(entry.key, Number(total));
    });
    return totals;
  }
}

/** One request waiting for its count to reach the store; `position` is its place among the window's unsent counts. */
interface Waiter {
  position: number;
  readonly resolve: (over: boolean) => void;
}

interface Window {
  readonly key: string;
  readonly start: number;
  /** The shared total as the store last reported it (every instance's requests). */
  shared: number;
  /** Counted here since the last send. */
  pending: number;
  /** Sent with a send still in flight. */
  sending: number;
  /** The requests among `pending` that wait for the store's answer. */
  waiters: Waiter[];
}

export interface SharedWindowCounterOptions {
  /** How often counts that nobody waits for (refused requests) are sent anyway. */
  readonly flushMs: number;
  /** Beyond this many keys, idle ones are forgotten (`prune`); the store keeps their totals. */
  readonly maxKeys: number;
  /** How long a request waits for the store before it is decided on this instance's counts alone. */
  readonly storeWaitMs: number;
}

/** A send silent for this many times `storeWaitMs` is given up (its counts are sent again). */
const SEND_TIMEOUT_FACTOR = 10;

const DEFAULT_OPTIONS: SharedWindowCounterOptions = { flushMs: 100, maxKeys: 100_000, storeWaitMs: 1_000 };

/**
 * A fixed-window request counter shared by every instance, exact across them: a request's count
 * goes to the store before it is decided, and the total that comes back (every instance's requests,
 * serialised by the store) places it. Requests that arrive while a send is in flight share the next
 * one (FreshCall): one statement per round trip, however many requests wait. A key already over the
 * limit by the last total is refused at once, since counts only grow within a window. If the store
 * fails or is slow, the request is decided on what this instance knows, and its count is sent later.
 */
export class SharedWindowCounter {
  private readonly windows = new Map<string, Window>();
  /** The windows with counts not yet sent: what the next send takes, without scanning every key. */
  private unsent = new Set<Window>();
  private readonly sends = new FreshCall(() => this.send());
  private readonly options: SharedWindowCounterOptions;
  private timer: NodeJS.Timeout | undefined;
  private storeDown = false;

  constructor(
    private readonly name: string,
    private readonly store: CounterStore,
    private readonly limit: RateLimit,
    private readonly clock: Clock,
    private readonly logger: Logger,
    options: Partial<SharedWindowCounterOptions> = {},
  ) {
    this.options = { ...DEFAULT_OPTIONS, ...options };
  }

  start(): void {
    this.timer ??= setInterval(() => {
      this.prune();
      void this.flush();
    }, this.options.flushMs).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  /** Counts one request; resolves to the milliseconds until the window ends when it is over the limit, else null. */
  async consume(key: string): Promise<number | null> {
    const now = this.clock.now().getTime();
    const length = this.limit.seconds * 1000;
    const start = this.windowStart(now);
    // Keyed by window too: requests of an ended window may still be waiting for its send.
    const id = `${start}:${key}`;
    let window = this.windows.get(id);
    if (!window) {
      window = { key, start, shared: 0, pending: 0, sending: 0, waiters: [] };
      this.windows.set(id, window);
    }
    window.pending += 1;
    this.unsent.add(window);
    const retryAfterMs = start + length - now;
    if (window.shared >= this.limit.points) return retryAfterMs;
    const localCount = window.shared + window.sending + window.pending;
    let timer: NodeJS.Timeout | undefined;
    const over = await new Promise<boolean>((resolve) => {
      window.waiters.push({ position: window.pending, resolve });
      timer = setTimeout(() => resolve(localCount > this.limit.points), this.options.storeWaitMs);
      void this.sends.run();
    });
    clearTimeout(timer);
    return over ? retryAfterMs : null;
  }

  /** Sends every unsent count now and reads the keys' shared totals back. */
  flush(): Promise<void> {
    return this.sends.run();
  }

  private async send(): Promise<void> {
    const length = this.limit.seconds * 1000;
    // The keys counted since the last send: they get their counts in and their fresh totals back.
    const batch = [...this.unsent].map((window) => ({
      key: `${this.name}:${window.start}:${window.key}`,
      window,
      count: window.pending,
      waiters: window.waiters,
    }));
    this.unsent = new Set();
    if (batch.length === 0) return;
    for (const entry of batch) {
      entry.window.sending += entry.count;
      entry.window.pending = 0;
      entry.window.waiters = [];
    }
    let totals: Map<string, number> | undefined;
    try {
      // A slow store: its waiters are decided locally after storeWaitMs (their own timers), while the
      // counts stay in flight. A store silent for SEND_TIMEOUT_FACTOR times that is taken for failed:
      // the counts go again with the next send (twice, if this one lands after all: the strict side),
      // and later sends no longer queue behind it.
      const sendTimeoutMs = this.options.storeWaitMs * SEND_TIMEOUT_FACTOR;
      const added = await settleWithin(
        this.store.add(batch.map(({ key, window, count }) => ({ key, count, expiresAt: window.start + length }))),
        sendTimeoutMs,
      );
      if (added === TIMED_OUT) throw new Error(`the store did not answer within ${sendTimeoutMs} ms`);
      totals = added;
      if (this.storeDown) this.logger.info({ counter: this.name }, 'rate limits: the shared store answers again');
      this.storeDown = false;
    } catch (error) {
      // Once per outage: during one, every batch of requests fails the same way.
      if (!this.storeDown)
        this.logger.warn(
          { err: error, counter: this.name },
          'rate limits: the shared store did not answer; counting on this instance meanwhile',
        );
      this.storeDown = true;
    }
    for (const { key, window, count, waiters } of batch) {
      window.sending -= count;
      const total = totals?.get(key);
      if (total !== undefined) {
        window.shared = Math.max(window.shared, total);
        // This batch holds the places total - count + 1 … total, in the order its requests arrived.
        for (const waiter of waiters) waiter.resolve(total - count + waiter.position > this.limit.points);
        continue;
      }
      // Not stored: decided on what this instance knows, and sent again with the next batch (before the counts made since).
      for (const waiter of waiters) waiter.resolve(window.shared + window.sending + waiter.position > this.limit.points);
      for (const waiter of window.waiters) waiter.position += count;
      window.pending += count;
      this.unsent.add(window);
    }
  }

  private windowStart(now: number): number {
    const length = this.limit.seconds * 1000;
    return Math.floor(now / length) * length;
  }

  /**
   * Run by the timer (every `flushMs`), not per request. Drops windows that ended (their counts were sent, or are moot
   * now), and beyond `maxKeys` (an address spray) idle ones of the current window too: losing one
   * costs only the refusal without a round trip, since every decision comes from the store's total.
   * A window with counts unsent or requests waiting stays until they are answered.
   */
  prune(): void {
    const currentStart = this.windowStart(this.clock.now().getTime());
    const idle = (window: Window) => window.sending === 0 && window.pending === 0 && window.waiters.length === 0;
    for (const [id, window] of this.windows) {
      if (window.start < currentStart && window.sending === 0 && window.waiters.length === 0) {
        this.windows.delete(id);
        this.unsent.delete(window);
      }
    }
    for (const [id, window] of this.windows) {
      if (this.windows.size <= this.options.maxKeys) break;
      if (idle(window)) this.windows.delete(id);
    }
  }
}
