import type { EntityManager } from 'typeorm';
import type { Clock } from '../clock';
import { Notifications, notify } from './notifications';

/**
 * One value loaded from the database and kept in this process (the policy, the IP rules): every
 * instance reloads it at its next use after a change anywhere, because the changing transaction
 * sends a NOTIFY on `channel` (`announce`), and after `maxAgeMs` in case a message was lost.
 * While the database is unreachable, the last good value keeps serving.
 */
export class NotifiedCache<T> {
  private loading: Promise<T> | null = null;
  private lastGood: T | undefined;
  private loadedAt = 0;

  constructor(
    private readonly channel: string,
    private readonly load: () => Promise<T>,
    private readonly clock: Clock,
    notifications: Notifications,
    private readonly options: { maxAgeMs: number; staleAt?: (value: T) => number },
  ) {
    notifications.subscribe(channel, () => this.invalidate());
    notifications.onReconnect(() => this.invalidate());
  }

  current(): Promise<T> {
    const now = this.clock.now().getTime();
    const staleAt = this.lastGood !== undefined && this.options.staleAt ? this.options.staleAt(this.lastGood) : Infinity;
    if (this.loading && (now - this.loadedAt >= this.options.maxAgeMs || now >= staleAt)) this.loading = null;
    if (!this.loading) {
      const loading = this.load().then(
        (value) => {
          this.lastGood = value;
          return value;
        },
        (error: unknown) => {
          // Not remembered: the next use tries again. Until then, the last good value if there is one.
          if (this.loading === loading) this.loading = null;
          if (this.lastGood !== undefined) return this.lastGood;
          throw error;
        },
      );
      this.loading = loading;
      this.loadedAt = now;
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
