import { AggregatedHits, type HitWindow as AnyHitWindow } from '../audit/aggregated-hits';
import type { Clock } from '../clock';
import type { Logger } from '../logging';

export type HitKind = 'ip_blocked' | 'rate_limited';

/** One kind's hits in one window, for the audit log. */
export type HitWindow = AnyHitWindow<HitKind>;

/**
 * Firewall blocks and rate-limit hits, counted, logged and audited per window without letting an
 * attack flood the log (the aggregation is the audit feature's, shared with rejected tokens).
 */
export class HitLog extends AggregatedHits<HitKind> {
  constructor(
    logger: Logger,
    clock: Clock,
    windowMs = 60_000,
    maxSubjects = 1_000,
    onWindow: (window: HitWindow) => Promise<void> = async () => undefined,
  ) {
    super(logger, clock, {
      kinds: ['ip_blocked', 'rate_limited'],
      source: 'firewall',
      firstHitMessage: (kind) => (kind === 'ip_blocked' ? 'firewall: request blocked' : 'firewall: rate limit hit'),
      windowMs,
      maxSubjects,
      onWindow,
    });
  }
}
