import type { Clock } from '../clock';
import type { Logger } from '../logging';

export type HitKind = 'ip_blocked' | 'rate_limited';

/** One kind's hits in one window, for the audit log. */
export interface HitWindow {
  readonly kind: HitKind;
  readonly from: Date;
  readonly to: Date;
  readonly hits: number;
  /** The busiest subjects (addresses, accounts) and their hits. */
  readonly top: readonly { subject: string; hits: number }[];
  /** Distinct subjects seen (up to the cap). */
  readonly subjects: number;
}

/**
 * Counts firewall blocks and rate-limit hits, and logs them without letting an attack flood the
 * log: the first hit of each (kind, key) in a window is logged; the rest are counted and summed
 * up in one line when the window turns over (at the next hit, or at `flush`). Each window's
 * hits go to `onWindow`, one summary per kind (the audit log's aggregated rows).
 */
export class HitLog {
  private readonly totals: Record<HitKind, number> = { ip_blocked: 0, rate_limited: 0 };
  private window = new Map<string, number>();
  private windowStart = 0;
  /** Hits from subjects beyond maxSubjects in this window, by kind. */
  private overflow: Record<HitKind, number> = { ip_blocked: 0, rate_limited: 0 };

  constructor(
    private readonly logger: Logger,
    private readonly clock: Clock,
    private readonly windowMs = 60_000,
    /** Distinct subjects kept per window: beyond, hits are only counted (an attacker rotating addresses cannot flood the log or memory). */
    private readonly maxSubjects = 1_000,
    private readonly onWindow: (window: HitWindow) => Promise<void> = async () => undefined,
  ) {}

  record(kind: HitKind, key: string, detail: Record<string, unknown> = {}): void {
    const now = this.clock.now().getTime();
    if (now - this.windowStart >= this.windowMs) void this.turnOver(now);
    this.totals[kind] += 1;
    const id = `${kind} ${key}`;
    const seen = this.window.get(id) ?? 0;
    if (seen === 0 && this.window.size >= this.maxSubjects) {
      this.overflow[kind] += 1;
      return;
    }
    this.window.set(id, seen + 1);
    // "subject", not "key": the log redacts fields named like secrets.
    if (seen === 0)
      this.logger.warn({ kind, subject: key, ...detail }, kind === 'ip_blocked' ? 'firewall: request blocked' : 'firewall: rate limit hit');
  }

  /** Hits since this process started, by kind (for the self-audit and metrics). */
  counts(): Readonly<Record<HitKind, number>> {
    return { ...this.totals };
  }

  /** Ends the current window now (a timer calls it, so a burst is summed up even when no hit follows). */
  flush(): Promise<void> {
    return this.turnOver(this.clock.now().getTime());
  }

  private async turnOver(now: number): Promise<void> {
    const window = this.window;
    const overflow = this.overflow;
    const from = new Date(this.windowStart);
    this.window = new Map();
    this.overflow = { ip_blocked: 0, rate_limited: 0 };
    this.windowStart = now;
    if (window.size === 0) return;
    const repeated = [...window.entries()].filter(([, count]) => count > 1);
    const unlistedHits = overflow.ip_blocked + overflow.rate_limited;
    if (repeated.length > 0 || unlistedHits > 0) {
      const top = repeated
        .sort((a, b) => b[1] - a[1])
        .slice(0, 10)
        .map(([subject, count]) => ({ subject, count }));
      this.logger.warn(
        {
          windowSeconds: this.windowMs / 1000,
          subjects: repeated.length,
          hits: repeated.reduce((sum, [, count]) => sum + count, 0),
          unlistedHits,
          top,
        },
        'firewall: repeated hits in the last window',
      );
    }
    for (const kind of ['ip_blocked', 'rate_limited'] as const) {
      const entries = [...window.entries()]
        .filter(([id]) => id.startsWith(`${kind} `))
        .map(([id, hits]) => ({ subject: id.slice(kind.length + 1), hits }));
      if (entries.length === 0 && overflow[kind] === 0) continue;
      const hits = entries.reduce((sum, entry) => sum + entry.hits, 0) + overflow[kind];
      try {
        await this.onWindow({
          kind,
          from,
          to: new Date(now),
          hits,
          subjects: entries.length,
          top: entries.sort((a, b) => b.hits - a.hits).slice(0, 10),
        });
      } catch (error) {
        this.logger.error({ err: error, kind }, "firewall: could not record the window's hits in the audit log");
      }
    }
  }
}
