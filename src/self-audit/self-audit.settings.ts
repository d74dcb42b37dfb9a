import type { SettingValues, SettingsTable } from '../config';
import { cronOrOff, spec } from '../config/settings';

const specs = {
  auditSchedule: spec<string | undefined>({
    env: 'AUDIT_SCHEDULE',
    description:
      'When the self-audit runs by itself (cron, e.g. "17 3 * * *" daily at 03:17 UTC), on one instance; "off" to only run it on demand.',
    fallback: () => '17 3 * * *',
    defaultText: '17 3 * * * (daily)',
    parse: cronOrOff,
  }),
};

declare module '../config/config' {
  interface Config extends SettingValues<typeof specs> {}
}

/** When the self-audit runs by itself. */
export const SELF_AUDIT_SETTINGS: SettingsTable = { specs };
