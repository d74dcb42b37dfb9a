import type { Clock } from '../clock';
import type { Logger } from '../logging';

export type HitKind = 'ip_blocked' | 'rate_limited';

/**
 * Counts firewall blocks and rate-limit hits, and logs them without letting an attack flood the
 * log: the first hit of each (kind, key) in a window is logged; the rest are counted and summed
 * up in one line when the window turns over (on the next hit: no timer).
 */
export class HitLog {
  private readonly totals: Record<HitKind, number> = { ip_blocked: 0, rate_limited: 0 };
  private window = new Map<string, number>();
  private windowStart = 0;
  /** Hits from subjects beyond maxSubjects in this window. */
  private overflow = 0;

  constructor(
    private readonly logger: Logger,
    private readonly clock: Clock,
    private readonly windowMs = 60_000,
    /** Distinct subjects kept per window: beyond, hits are only counted (an attacker rotating addresses cannot flood the log or memory). */
    private readonly maxSubjects = 1_000,
  ) {}

  record(kind: HitKind, key: string, detail: Record<string, unknown> = {}): void {
    const now = this.clock.now().getTime();
    if (now - this.windowStart >= this.windowMs) this.turnOver(now);
    this.totals[kind] += 1;
    const id = `${kind} ${key}`;
    const seen = this.window.get(id) ?? 0;
    if (seen === 0 && this.window.size >= this.maxSubjects) {
      this.overflow += 1;
      return;
    }
    this.window.set(id, seen + 1);
    // "subject", not "key": the log redacts fields named like secrets.
    if (seen === 0) this.logger.warn({ kind, subject: key, ...detail }, kind === 'ip_blocked' ? 'firewall: request blocked' : 'firewall: rate limit hit');
  }

  /** Hits since this process started, by kind (for the self-audit and metrics). */
  counts(): Readonly<Record<HitKind, number>> {
    return { ...this.totals };
  }

  private turnOver(now: number): void {
    const repeated = [...this.window.entries()].filter(([, count]) => count > 1);
    if (repeated.length > 0 || this.overflow > 0) {
      const top = repeated.sort((a, b) => b[1] - a[1]).slice(0, 10).map(([subject, count]) => ({ subject, count }));
      this.logger.warn({ windowSeconds: this.windowMs / 1000, subjects: repeated.length, hits: repeated.reduce((sum, [, count]) => sum + count, 0), unlistedHits: this.overflow, top }, 'firewall: repeated hits in the last window');
    }
    this.window = new Map();
    this.overflow = 0;
    this.windowStart = now;
  }
}
