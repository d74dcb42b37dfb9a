import { Args, Query, Resolver } from 'type-graphql';
import { AuditChainHead, AuditEventConnection, AuditEventType, AuditEventsArgs, AuditLogVerification } from './audit-log.types';
import type { AuditReader } from '../audit/audit-reader';

/** The audit log, for admins (every field is ruled isAdmin). */
@Resolver()
export class AuditResolver {
  constructor(private readonly reader: AuditReader) {}

  @Query(() => AuditEventConnection, { description: 'Security events, newest first, filtered and paginated (first ≤ 100).' })
  async auditEvents(@Args() args: AuditEventsArgs): Promise<AuditEventConnection> {
    const page = await this.reader.list({ ...args.filter, first: args.first, after: args.after });
    return {
      edges: page.events.map((event, index) => ({ cursor: page.cursors[index], node: AuditEventType.of(event) })),
      pageInfo: { hasNextPage: page.hasNextPage, endCursor: page.cursors.at(-1) ?? null },
    };
  }

  @Query(() => AuditLogVerification, {
    description: 'Re-checks the whole hash chain now: ok, or the first row that was edited, inserted, or follows a deleted one.',
  })
  verifyAuditLog(): Promise<AuditLogVerification> {
    return this.reader.verify();
  }

  @Query(() => AuditChainHead, {
    nullable: true,
    description:
      "The newest event's id, hash and time, to anchor elsewhere (as `bastion audit log head` prints it); null while the log is empty.",
  })
  auditLogHead(): Promise<AuditChainHead | null> {
    return this.reader.head();
  }
}
