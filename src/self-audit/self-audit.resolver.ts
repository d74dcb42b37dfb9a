import { Ctx, Query, Resolver } from 'type-graphql';
import { actorOf } from '../audit/actor';
import type { Context } from '../context';
import type { SelfAudit } from './self-audit.service';
import { SecurityAuditReport } from './self-audit.types';

/** The self-audit, for admins. */
@Resolver()
export class SelfAuditResolver {
  constructor(private readonly selfAudit: SelfAudit) {}

  @Query(() => SecurityAuditReport, {
    description: 'Runs every check of the five security measures now, and records the run in the audit log.',
  })
  securityAudit(@Ctx() context: Context): Promise<SecurityAuditReport> {
    return this.selfAudit.run(actorOf(context)) as Promise<SecurityAuditReport>;
  }
}
