import type { DataSource } from 'typeorm';
import { AggregatedHits, windowMetadata } from '../audit/aggregated-hits';
import type { AuditLog } from '../audit/audit-log';
import type { Clock } from '../clock';
import type { Logger } from '../logging';

/** What an upload or a file URL can be refused for. */
export const REFUSAL_REASONS = ['type', 'size', 'quota', 'image', 'upload_url', 'download_url'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** Refusals are summed up, logged and audited per window of this length. */
export const REFUSAL_WINDOW_MS = 60_000;

/**
 * Refused uploads (type, size, quota, an image that cannot be processed) and refused file URLs
 * (a forged, altered or expired signature): counted per client address, each minute one
 * aggregated `file_refused` audit row per reason, so probing shows and cannot flood the chain.
 */
export class FileRefusals {
  private readonly hits: AggregatedHits<RefusalReason>;

  constructor(logger: Logger, clock: Clock, audit: AuditLog, dataSource: DataSource) {
    this.hits = new AggregatedHits(logger, clock, {
      kinds: REFUSAL_REASONS,
      source: 'files',
      firstHitMessage: (reason) => `files: refused (${reason})`,
      windowMs: REFUSAL_WINDOW_MS,
      onWindow: async (window) => {
        await audit.append(dataSource.manager, {
          action: 'file_refused',
          outcome: 'denied',
          targetType: 'file',
          metadata: { reason: window.kind, ...windowMetadata(window) },
        });
      },
    });
  }

  refused(reason: RefusalReason, ipAddress: string | null): void {
    this.hits.record(reason, ipAddress ?? 'unknown', { reason });
  }

  flush(): Promise<void> {
    return this.hits.flush();
  }
}
