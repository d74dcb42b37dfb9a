import type { EntityManager } from 'typeorm';
import { SCHEDULE_ACTOR } from '../audit/actor';
import type { AuditLog } from '../audit/audit-log';
import type { Clock } from '../clock';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface SessionRetentionOptions {
  /** Ended sessions and spent refresh tokens are kept this long after they ended or were spent. */
  readonly retentionDays: number;
  /** The idle timeout: an unused session ended this long after its last use. */
  readonly idleDays: number;
  readonly batchSize?: number;
  /**
   * Batches per table per run: one run stays a short transaction (the maintenance job's), and a
   * backlog (the first run after an upgrade) drains over the following hourly runs.
   */
  readonly maxBatches?: number;
}

/**
 * Prunes ended sessions (signed out, revoked, expired) and spent refresh tokens once the
 * retention period has passed, with one `sessions_pruned` audit event per run that removed
 * anything. A rotated token is kept for the retention period so that presenting it again is
 * still recognised as reuse (the whole session ends); once pruned, it is refused as unknown.
 */
export class SessionRetention {
  private readonly batchSize: number;
  private readonly maxBatches: number;

  constructor(
    private readonly clock: Clock,
    private readonly audit: AuditLog,
    private readonly options: SessionRetentionOptions,
  ) {
    this.batchSize = options.batchSize ?? 1_000;
    this.maxBatches = options.maxBatches ?? 50;
  }

  /** Runs in the maintenance job's transaction; returns the rows removed. */
  async prune(manager: EntityManager): Promise<number> {
    const cutoff = new Date(this.clock.now().getTime() - this.options.retentionDays * DAY_MS);
    // Spent tokens first: a live session's family grows by one token per refresh, for up to 90 days.
    const spentRefreshes = await this.inBatches(
      manager,
      `DELETE FROM refresh_tokens WHERE id IN (
         SELECT id FROM refresh_tokens WHERE used_at < $1 OR revoked_at < $1 LIMIT $2)`,
      [cutoff],
    );
    // An idle session ended idleDays after its last use; the rest of its family goes with it (ON DELETE CASCADE).
    const sessions = await this.inBatches(
      manager,
      `DELETE FROM sessions WHERE id IN (
         SELECT id FROM sessions
          WHERE revoked_at < $1 OR absolute_expires_at < $1 OR last_used_at < $1::timestamptz - make_interval(days => $3)
          LIMIT $2)`,
      [cutoff, this.options.idleDays],
    );
    if (sessions + spentRefreshes === 0) return 0;
    await this.audit.append(manager, {
      action: 'sessions_pruned',
      outcome: 'success',
      targetType: 'session',
      metadata: { sessions, spentRefreshes, endedBefore: cutoff.toISOString(), retentionDays: this.options.retentionDays },
      ...SCHEDULE_ACTOR,
    });
    return sessions + spentRefreshes;
  }

  /** `sql` deletes at most $2 rows (its other parameters follow in `parameters`, $1 first). */
  private async inBatches(manager: EntityManager, sql: string, parameters: readonly unknown[]): Promise<number> {
    let removed = 0;
    for (let batch = 0; batch < this.maxBatches; batch += 1) {
      const [first, ...rest] = parameters;
      const [, affected]: [unknown, number] = await manager.query(sql, [first, this.batchSize, ...rest]);
      removed += affected;
      if (affected < this.batchSize) break;
    }
    return removed;
  }
}
