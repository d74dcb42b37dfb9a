import type { EntityManager } from 'typeorm';
import type { Clock } from '../clock';
import { Notifications, notify } from './notifications';

/** After a failed reload, how long the last good value serves before the next try. */
const RETRY_MS = 1_000;

/**
 * One value loaded from the database and kept in this process (the policy, the IP rules): every
 * instance reloads it at its next use after a change anywhere, because the changing transaction
 * sends a NOTIFY on `channel` (`announce`) and each request first hears the messages committed
 * before it (Notifications.sync); also when messages may have been missed, and after `maxAgeMs`.
 * While the database is unreachable, the last good value keeps serving.
 */
export class NotifiedCache<T> {
  private loading: Promise<T> | null = null;
  private lastGood: T | undefined;
  private loadedAt = 0;
  /** When the loaded value goes stale by itself (a rule expiring), fixed when it loads. */
  private staleAt = Infinity;

  constructor(
    private readonly channel: string,
    private readonly load: () => Promise<T>,
    private readonly clock: Clock,
    notifications: Notifications,
    private readonly options: { maxAgeMs: number; staleAt?: (value: T) => number },
  ) {
    notifications.subscribe(channel, () => this.invalidate());
    notifications.onMissed(() => this.invalidate());
  }

  current(): Promise<T> {
    const now = this.clock.now().getTime();
    if (this.loading && (now - this.loadedAt >= this.options.maxAgeMs || now >= this.staleAt)) this.loading = null;
    if (!this.loading) {
      const loading = this.load().then(
        (value) => {
          if (this.loading === loading) {
            this.lastGood = value;
            this.staleAt = this.options.staleAt ? this.options.staleAt(value) : Infinity;
          }
          return value;
        },
        (error: unknown) => {
          if (this.lastGood === undefined) {
            // Nothing to fall back on: not remembered, the next use tries again.
            if (this.loading === loading) this.loading = null;
            throw error;
          }
          // The last good value keeps serving; the next load is tried after RETRY_MS, not on every request.
          if (this.loading === loading) this.loadedAt = this.clock.now().getTime() - this.options.maxAgeMs + RETRY_MS;
          return this.lastGood;
        },
      );
      this.loading = loading;
      this.loadedAt = now;
      this.staleAt = Infinity;
    }
    return this.loading;
  }

  invalidate(): void {
    this.loading = null;
  }

  /** Tells every instance to reload; call inside the changing transaction (delivered on commit). */
  async announce(manager: EntityManager): Promise<void> {
    await notify(manager, this.channel, 'changed');
  }
}
