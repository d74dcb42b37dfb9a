import type { SettingValues, SettingsTable } from '../config';
import { boolean, spec } from '../config/settings';

const specs = {
  console: spec<boolean>({
    env: 'BASTION_CONSOLE',
    description:
      'Serve the admin console at /console and the account pages (/verify-email, /reset-password) from files built into the package. ' +
      'The console works offline and calls only the public GraphQL API; ADMIN_ALLOWED_CIDRS limits who may load it.',
    fallback: (nodeEnv) => nodeEnv !== 'production',
    defaultText: 'true; false in production',
    parse: boolean,
  }),
};

declare module '../config/config' {
  interface Config extends SettingValues<typeof specs> {}
}

/** Whether the console and the account pages are served. */
export const CONSOLE_SETTINGS: SettingsTable = { specs };
