import type { DataSource } from 'typeorm';
import { AggregatedHits, windowMetadata } from '../audit/aggregated-hits';
import type { AuditLog } from '../audit/audit-log';
import type { Clock } from '../clock';
import type { Logger } from '../logging';

/** Why each kind of presented credential can be refused. */
const REJECTION_REASONS = {
  access_token: ['malformed', 'algorithm_not_allowed', 'unknown_key', 'invalid_signature', 'invalid_claims', 'expired', 'revoked_session'],
  refresh_token: ['unknown_refresh_token', 'revoked_session', 'expired_session'],
  reset_link: ['bad_reset_token'],
  verification_link: ['bad_verification_token'],
} as const;

export type PresentedCredential = keyof typeof REJECTION_REASONS;
export type RejectionReason<C extends PresentedCredential = PresentedCredential> = (typeof REJECTION_REASONS)[C][number];
type RejectionKind = { [C in PresentedCredential]: `${C}:${RejectionReason<C>}` }[PresentedCredential];

const REJECTION_KINDS = (Object.entries(REJECTION_REASONS) as [PresentedCredential, readonly string[]][]).flatMap(([credential, reasons]) =>
  reasons.map((reason) => `${credential}:${reason}` as RejectionKind),
);

/** Rejected credentials are summed up, logged and audited per window of this length (as the firewall's blocks). */
export const TOKEN_FAILURE_WINDOW_MS = 60_000;

/**
 * Refused tokens (ASVS 16.3.1): forged, malformed or expired access tokens, tokens of ended
 * sessions, unknown refresh tokens, bad emailed links. One probe is one counted hit; each minute
 * becomes one aggregated `token_rejected` audit row per (credential, reason), with the hits, the
 * distinct client addresses and the busiest ten, so probing is visible and cannot flood the chain.
 * The token itself is never recorded, not even hashed: the address is what an operator acts on.
 */
export class TokenFailures {
  private readonly hits: AggregatedHits<RejectionKind>;

  constructor(logger: Logger, clock: Clock, audit: AuditLog, dataSource: DataSource) {
    this.hits = new AggregatedHits(logger, clock, {
      kinds: REJECTION_KINDS,
      source: 'tokens',
      firstHitMessage: () => 'token rejected',
      windowMs: TOKEN_FAILURE_WINDOW_MS,
      onWindow: async (window) => {
        const [credential, reason] = window.kind.split(':');
        await audit.append(dataSource.manager, {
          action: 'token_rejected',
          outcome: 'denied',
          targetType: 'credential',
          metadata: { credential, reason, ...windowMetadata(window) },
        });
      },
    });
  }

  /** Counts one refused credential from this client address (null: unknown, such as a test without a socket). */
  rejected<C extends PresentedCredential>(credential: C, reason: RejectionReason<C>, ipAddress: string | null): void {
    this.hits.record(`${credential}:${reason}` as RejectionKind, ipAddress ?? 'unknown', { credential, reason });
  }

  /** Writes the current window's rows now (a timer calls it every window, and shutdown once more). */
  flush(): Promise<void> {
    return this.hits.flush();
  }
}
