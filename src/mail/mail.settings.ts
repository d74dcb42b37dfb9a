import type { SettingValues, SettingsTable } from '../config';
import { SettingProblem, nonEmpty, spec } from '../config/settings';

function smtpUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new SettingProblem('must be a URL such as smtps://user:password@mail.example.com:465');
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw new SettingProblem('must start with smtp:// or smtps://');
  return raw.trim();
}

const specs = {
  smtpUrl: spec<string | undefined>({
    env: 'SMTP_URL',
    description:
      'SMTP server for emails, e.g. smtps://user:password@mail.example.com:465. Unset: emails are written to the log (development only; refused in production).',
    fallback: () => undefined,
    defaultText: 'unset (log transport)',
    parse: smtpUrl,
    secret: true,
    inProduction: { mustBeSet: 'the log transport would write reset links to the log' },
  }),
  mailFrom: spec<string>({
    env: 'BASTION_MAIL_FROM',
    description: 'Sender address of emails.',
    fallback: () => 'Bastion <no-reply@localhost>',
    defaultText: 'Bastion <no-reply@localhost>',
    parse: nonEmpty,
  }),
};

declare module '../config/config' {
  interface Config extends SettingValues<typeof specs> {}
}

/** Where emails go, and their sender. */
export const MAIL_SETTINGS: SettingsTable = { specs };
