import { defineFeature } from '../feature';
import { AuditEvent } from './audit-event.entity';
import { AuditLog } from './audit-log';
import { AUDIT_SETTINGS } from './audit.settings';

/** The services this feature provides. */
export interface AuditServices {
  /** The hash-chained audit log every security event is appended to, in the changing transaction. */
  readonly audit: AuditLog;
}

declare module '../feature' {
  interface Services extends AuditServices {}
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The tamper-evident audit log: its table, the chained writer every feature appends to, and its
 * retention. Reading it (API and CLI) belongs to the self-audit feature.
 */
export const auditFeature = defineFeature<keyof AuditServices>()({
  name: 'audit',
  settings: AUDIT_SETTINGS,
  entities: [AuditEvent],
  provides: { audit: ({ clock }) => new AuditLog(clock) },
  maintenance: ({ audit, config, clock }) => ({
    auditRetention: async (manager) =>
      config.auditRetentionDays > 0 ? audit.prune(manager, new Date(clock.now().getTime() - config.auditRetentionDays * DAY_MS)) : 0,
  }),
});
