import type { SettingValues, SettingsTable } from '../config';
import { integer, spec } from '../config/settings';

const specs = {
  auditRetentionDays: spec<number>({
    env: 'BASTION_AUDIT_RETENTION_DAYS',
    description:
      'Audit events older than this are pruned by the hourly maintenance job, leaving a checkpoint so the rest still verifies; 0 keeps them forever.',
    fallback: () => 365,
    defaultText: '365',
    parse: integer(0, 36_500),
  }),
};

declare module '../config/config' {
  interface Config extends SettingValues<typeof specs> {}
}

/** How long the audit log keeps its events. */
export const AUDIT_SETTINGS: SettingsTable = { specs };
