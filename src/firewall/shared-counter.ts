import type Redis from 'ioredis';
import type { Pool } from 'pg';
import type { Clock } from '../clock';
import type { RateLimit } from '../config';
import type { Logger } from '../logging';
import { RATE_LIMIT_TABLE } from './rate-limit.entity';

/** Adds counts to the shared totals of some keys and returns their new totals. */
export interface CounterStore {
  add(entries: readonly { key: string; count: number; expiresAt: number }[]): Promise<Map<string, number>>;
}

/** In the rate-limit table (rate-limiter-flexible's layout), one statement per flush for every key. */
export class PostgresCounterStore implements CounterStore {
  constructor(private readonly pool: Pool) {}

  async add(entries: readonly { key: string; count: number; expiresAt: number }[]): Promise<Map<string, number>> {
    const { rows } = await this.pool.query<{ key: string; points: number }>(
      `INSERT INTO ${RATE_LIMIT_TABLE} (key, points, expire)
       SELECT * FROM unnest($1::varchar[], $2::int[], $3::bigint[])
       ON CONFLICT (key) DO UPDATE SET points = ${RATE_LIMIT_TABLE}.points + EXCLUDED.points
       RETURNING key, points`,
      [entries.map((entry) => entry.key), entries.map((entry) => entry.count), entries.map((entry) => entry.expiresAt)],
    );
    return new Map(rows.map((row) => [row.key, Number(row.points)]));
  }
}

/** In Redis: INCRBY and PEXPIREAT per key, one round trip per flush. */
export class RedisCounterStore implements CounterStore {
  constructor(private readonly client: Redis) {}

  async add(entries: readonly { key: string; count: number; expiresAt: number }[]): Promise<Map<string, number>> {
    const pipeline = this.client.pipeline();
    for (const entry of entries) pipeline.incrby(entry.key, entry.count).pexpireat(entry.key, entry.expiresAt);
    const results = (await pipeline.exec()) ?? [];
    const totals = new Map<string, number>();
    entries.forEach((entry, index) => {
      const [error, total] = results[index * 2] ?? [];
      if (!error) totals.set(entry.key, Number(total));
    });
    return totals;
  }
}

interface Window {
  readonly start: number;
  /** The shared total as the store last reported it (every instance's requests). */
  shared: number;
  /** Counted here since the last flush. */
  pending: number;
  /** Sent with a flush still in flight. */
  sending: number;
}

/**
 * A fixed-window request counter shared by every instance, without a database write per request:
 * each instance counts in memory and decides at once from the last shared total plus its own
 * count; every `flushMs` it adds its counts to the store in one statement and reads the new
 * totals back, which include every other instance's requests. Across N instances a client can
 * overshoot by what the other instances let through in one flush interval. If the store fails, counting goes on here alone until it answers again.
 */
export class SharedWindowCounter {
  private readonly windows = new Map<string, Window>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly name: string,
    private readonly store: CounterStore,
    private readonly limit: RateLimit,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly options: { flushMs: number; maxKeys: number } = { flushMs: 100, maxKeys: 100_000 },
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.options.flushMs).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  /** Counts one request; the milliseconds until the window ends when it is over the limit, else null. */
  consume(key: string): number | null {
    const now = this.clock.now().getTime();
    const length = this.limit.seconds * 1000;
    const start = Math.floor(now / length) * length;
    let window = this.windows.get(key);
    if (!window || window.start !== start) {
      if (!window && this.windows.size >= this.options.maxKeys) this.forgetEnded(start);
      window = { start, shared: 0, pending: 0, sending: 0 };
      this.windows.set(key, window);
    }
    window.pending += 1;
    return window.shared + window.sending + window.pending > this.limit.points ? start + length - now : null;
  }

  /** Sends the counts of this window to the store and reads every active key's shared total back. */
  flush(): Promise<void> {
    this.flushing ??= this.send().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async send(): Promise<void> {
    const now = this.clock.now().getTime();
    const length = this.limit.seconds * 1000;
    this.forgetEnded(Math.floor(now / length) * length);
    // The keys counted since the last flush: they get their counts in and their fresh totals back.
    const batch = [...this.windows.entries()].filter(([, window]) => window.pending > 0).map(([key, window]) => ({ key, window, count: window.pending }));
    if (batch.length === 0) return;
    for (const entry of batch) {
      entry.window.sending += entry.count;
      entry.window.pending = 0;
    }
    try {
      const totals = await this.store.add(batch.map(({ key, window, count }) => ({ key: `${this.name}:${window.start}:${key}`, count, expiresAt: window.start + length })));
      for (const { key, window, count } of batch) {
        window.sending -= count;
        const total = totals.get(`${this.name}:${window.start}:${key}`);
        if (total !== undefined) window.shared = total;
        else window.pending += count;
      }
    } catch (error) {
      for (const { window, count } of batch) {
        window.sending -= count;
        window.pending += count;
      }
      this.logger.warn({ err: error, counter: this.name }, 'rate limits: the shared store did not answer; counting on this instance meanwhile');
    }
  }

  /** Drops windows that ended (their counts were flushed, or are moot now). */
  private forgetEnded(currentStart: number): void {
    for (const [key, window] of this.windows) {
      if (window.start < currentStart && window.sending === 0) this.windows.delete(key);
    }
  }
}
