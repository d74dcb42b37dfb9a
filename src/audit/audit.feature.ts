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
  // The keyring derives the chain's HMAC keys; it needs no service of its own, so no circle with crypto's.
  needs: ['keyring'],
  provides: { audit: ({ clock, keyring }) => new AuditLog(clock, keyring) },
  // Rows from before the chain was keyed are re-chained once, under the chain lock (any instance, first start).
  start: async ({ audit, dataSource }) => {
    await audit.rechainLegacy(dataSource.manager);
  },
  maintenance: ({ audit, config, clock }) => ({
    auditRetention: async (manager) =>
      config.auditRetentionDays > 0 ? audit.prune(manager, new Date(clock.now().getTime() - config.auditRetentionDays * DAY_MS)) : 0,
  }),
});
