import type { DataSource } from 'typeorm';
import { DEFAULT_PAGE_SIZE, decodeCursor, encodeCursor, invalidCursor } from '../graphql/pagination';
import { isUuid } from '../db/uuid';
import { AuditEvent } from './audit-event.entity';
import { AuditChainKeys, AuditChainPosition, AuditChainReport, auditChainHead, verifyAuditChain } from './audit-log';

export interface AuditQuery {
  readonly action?: string | null;
  readonly actorId?: string | null;
  readonly targetId?: string | null;
  readonly outcome?: string | null;
  readonly from?: Date | null;
  readonly to?: Date | null;
  readonly first?: number;
  readonly after?: string | null;
}

/** Reading the audit log: pages for admins, verification, and export for the CLI. Never writes. */
export class AuditReader {
  constructor(
    private readonly dataSource: DataSource,
    private readonly keys: AuditChainKeys,
  ) {}

  /** Newest first, by chain position. */
  async list(query: AuditQuery): Promise<{ events: AuditEvent[]; cursors: string[]; hasNextPage: boolean }> {
    const first = query.first ?? DEFAULT_PAGE_SIZE;
    const select = this.dataSource.getRepository(AuditEvent).createQueryBuilder('e');
    if (query.action != null) select.andWhere('e.action = :action', { action: query.action });
    if (query.outcome != null) select.andWhere('e.outcome = :outcome', { outcome: query.outcome });
    if (query.targetId != null) select.andWhere('e.target_id = :targetId', { targetId: query.targetId });
    if (query.actorId != null) {
      // actor_id is a uuid column: anything else matches no row (rather than failing the cast).
      if (isUuid(query.actorId)) select.andWhere('e.actor_id = :actorId', { actorId: query.actorId });
      else select.andWhere('FALSE');
    }
    if (query.from != null) select.andWhere('e.at >= :from', { from: query.from });
    if (query.to != null) select.andWhere('e.at < :to', { to: query.to });
    if (query.after != null) {
      const [id] = decodeCursor(query.after, ['string']) as [string];
      if (!/^\d{1,19}$/.test(id) || BigInt(id) > 2n ** 63n - 1n) throw invalidCursor();
      select.andWhere('e.id < :afterId', { afterId: id });
    }
    const rows = await select
      .orderBy('e.id', 'DESC')
      .limit(first + 1)
      .getMany();
    const events = rows.slice(0, first);
    return { events, cursors: events.map((event) => encodeCursor([event.id])), hasNextPage: rows.length > first };
  }

  /**
   * The whole chain, in one snapshot (a pruning that commits meanwhile cannot look like a break);
   * with `head`, also whether the log still holds that anchored event unchanged.
   */
  verify(head?: AuditChainPosition): Promise<AuditChainReport> {
    return this.dataSource.transaction('REPEATABLE READ', (manager) => verifyAuditChain(manager, this.keys, { head }));
  }

  /** The newest event's id, hash and time, to anchor outside this database. */
  head(): Promise<(AuditChainPosition & { at: Date }) | null> {
    return auditChainHead(this.dataSource.manager);
  }

  /** Every event at or after `since`, oldest first, in batches (memory stays flat however long the log is). */
  async *export(since: Date | null, batchSize = 1000): AsyncGenerator<AuditEvent> {
    let afterId = '0';
    for (;;) {
      const select = this.dataSource.getRepository(AuditEvent).createQueryBuilder('e').where('e.id > :afterId', { afterId });
      if (since) select.andWhere('e.at >= :since', { since });
      const batch = await select.orderBy('e.id', 'ASC').limit(batchSize).getMany();
      yield* batch;
      if (batch.length < batchSize) return;
      afterId = batch[batch.length - 1].id;
    }
  }
}
