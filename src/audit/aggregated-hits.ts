import type { Clock } from '../clock';
import type { Logger } from '../logging';
import type { AuditMetadata } from './audit-event.entity';

/** One kind's hits in one window, for the audit log. */
export interface HitWindow<K extends string = string> {
  readonly kind: K;
  readonly from: Date;
  readonly to: Date;
  readonly hits: number;
  /** The busiest subjects (addresses, accounts) and their hits. */
  readonly top: readonly { subject: string; hits: number }[];
  /** Distinct subjects seen (up to the cap). */
  readonly subjects: number;
}

export interface AggregatedHitsOptions<K extends string> {
  /** Every kind that can be recorded: `counts()` lists each, zero or not. */
  readonly kinds: readonly K[];
  /** Names the source in the log lines ("firewall", "tokens"). */
  readonly source: string;
  /** The log line of a subject's first hit of a kind in a window. */
  readonly firstHitMessage: (kind: K) => string;
  readonly windowMs?: number;
  /** Distinct subjects kept per window: beyond, hits are only counted (an attacker rotating addresses cannot flood the log or memory). */
  readonly maxSubjects?: number;
  readonly onWindow?: (window: HitWindow<K>) => Promise<void>;
}

/**
 * Counts repeated security events (firewall blocks, rate-limit hits, rejected tokens), and logs
 * and audits them without letting an attack flood either: the first hit of each (kind, subject)
 * in a window is logged; the rest are counted and summed up in one line when the window turns
 * over (at the next hit, or at `flush`). Each window's hits go to `onWindow`, one summary per
 * kind (the audit log's aggregated rows).
 */
export class AggregatedHits<K extends string> {
  private readonly totals = new Map<K, number>();
  private window = new Map<string, { kind: K; subject: string; hits: number }>();
  private windowStart = 0;
  /** Hits from subjects beyond maxSubjects in this window, by kind. */
  private overflow = new Map<K, number>();
  private readonly windowMs: number;
  private readonly maxSubjects: number;
  /** Windows turned over by a hit, still being written: `flush` waits for them too. */
  private readonly writing = new Set<Promise<void>>();

  constructor(
    private readonly logger: Logger,
    private readonly clock: Clock,
    private readonly options: AggregatedHitsOptions<K>,
  ) {
    this.windowMs = options.windowMs ?? 60_000;
    this.maxSubjects = options.maxSubjects ?? 1_000;
    for (const kind of options.kinds) this.totals.set(kind, 0);
  }

  record(kind: K, subject: string, detail: Record<string, unknown> = {}): void {
    const now = this.clock.now().getTime();
    if (now - this.windowStart >= this.windowMs) {
      const written = this.turnOver(now).finally(() => this.writing.delete(written));
      this.writing.add(written);
    }
    this.totals.set(kind, (this.totals.get(kind) ?? 0) + 1);
    const id = `${kind} ${subject}`;
    const seen = this.window.get(id);
    if (!seen && this.window.size >= this.maxSubjects) {
      this.overflow.set(kind, (this.overflow.get(kind) ?? 0) + 1);
      return;
    }
    if (seen) {
      seen.hits += 1;
      return;
    }
    this.window.set(id, { kind, subject, hits: 1 });
    // "subject", not "key": the log redacts fields named like secrets.
    this.logger.warn({ kind, subject, ...detail }, this.options.firstHitMessage(kind));
  }

  /** Hits since this process started, by kind (for the self-audit and metrics). */
  counts(): Readonly<Record<K, number>> {
    return Object.fromEntries(this.totals) as Record<K, number>;
  }

  /**
   * Ends the current window now (a timer calls it, so a burst is summed up even when no hit
   * follows), and resolves once every window ended so far is written (shutdown, tests).
   */
  async flush(): Promise<void> {
    await this.turnOver(this.clock.now().getTime());
    await Promise.all([...this.writing]);
  }

  private async turnOver(now: number): Promise<void> {
    const window = [...this.window.values()];
    const overflow = this.overflow;
    const from = new Date(this.windowStart);
    this.window = new Map();
    this.overflow = new Map();
    this.windowStart = now;
    if (window.length === 0) return;
    const repeated = window.filter((entry) => entry.hits > 1);
    const unlistedHits = [...overflow.values()].reduce((sum, hits) => sum + hits, 0);
    if (repeated.length > 0 || unlistedHits > 0) {
      const top = [...repeated]
        .sort((a, b) => b.hits - a.hits)
        .slice(0, 10)
        .map((entry) => ({ subject: `${entry.kind} ${entry.subject}`, count: entry.hits }));
      this.logger.warn(
        {
          windowSeconds: this.windowMs / 1000,
          subjects: repeated.length,
          hits: repeated.reduce((sum, entry) => sum + entry.hits, 0),
          unlistedHits,
          top,
        },
        `${this.options.source}: repeated hits in the last window`,
      );
    }
    // In the order the kinds were declared, so the rows of one window always come out alike.
    for (const kind of this.options.kinds) {
      const entries = window.filter((entry) => entry.kind === kind).map(({ subject, hits }) => ({ subject, hits }));
      const unlisted = overflow.get(kind) ?? 0;
      if (entries.length === 0 && unlisted === 0) continue;
      try {
        await this.options.onWindow?.({
          kind,
          from,
          to: new Date(now),
          hits: entries.reduce((sum, entry) => sum + entry.hits, 0) + unlisted,
          subjects: entries.length,
          top: entries.sort((a, b) => b.hits - a.hits).slice(0, 10),
        });
      } catch (error) {
        this.logger.error({ err: error, kind }, `${this.options.source}: could not record the window's hits in the audit log`);
      }
    }
  }
}

/** A window as audit metadata: the same fields for every aggregated row. */
export function windowMetadata(window: HitWindow): AuditMetadata {
  return {
    from: window.from.toISOString(),
    to: window.to.toISOString(),
    hits: window.hits,
    subjects: window.subjects,
    top: window.top.map((entry) => ({ subject: entry.subject, hits: entry.hits })),
  };
}
