import type { SettingValues, SettingsTable } from '../config';
import { absoluteUrl, boolean, integer, nonEmpty, spec } from '../config/settings';

const specs = {
  publicUrl: spec<string>({
    env: 'BASTION_PUBLIC_URL',
    description:
      "Base of the links in emails (password reset, email verification); may be an app deep link such as myapp://auth. Also the access tokens' issuer (iss).",
    fallback: () => 'http://localhost:4000',
    defaultText: 'http://localhost:4000',
    parse: absoluteUrl,
  }),
  tokenAudience: spec<string>({
    env: 'BASTION_TOKEN_AUDIENCE',
    description: 'The aud claim of access tokens; tokens for another audience are refused.',
    fallback: () => 'bastion-api',
    defaultText: 'bastion-api',
    parse: nonEmpty,
  }),
  accessTokenTtlSeconds: spec<number>({
    env: 'BASTION_ACCESS_TOKEN_TTL',
    description: 'Access token lifetime in seconds (60 to 900).',
    fallback: () => 900,
    defaultText: '900 (15 min)',
    parse: integer(60, 900),
  }),
  refreshIdleDays: spec<number>({
    env: 'BASTION_REFRESH_IDLE_DAYS',
    description: 'A session unused this many days ends.',
    fallback: () => 30,
    defaultText: '30',
    parse: integer(1, 365),
  }),
  refreshAbsoluteDays: spec<number>({
    env: 'BASTION_REFRESH_ABSOLUTE_DAYS',
    description: 'A session ends this many days after sign-in, however active (refreshing never extends it).',
    fallback: () => 90,
    defaultText: '90',
    parse: integer(1, 730),
  }),
  refreshGraceSeconds: spec<number>({
    env: 'BASTION_REFRESH_GRACE_SECONDS',
    description:
      'Window in which the just-rotated refresh token may be presented again (parallel requests of a mobile app) without ending the session. 0 turns it off.',
    fallback: () => 10,
    defaultText: '10',
    parse: integer(0, 10),
  }),
  maxSessionsPerUser: spec<number>({
    env: 'BASTION_MAX_SESSIONS_PER_USER',
    description: 'Live sessions per user; signing in beyond it ends the least recently used one.',
    fallback: () => 20,
    defaultText: '20',
    parse: integer(1, 1000),
  }),
  sessionRetentionDays: spec<number>({
    env: 'BASTION_SESSION_RETENTION_DAYS',
    description:
      'Ended sessions (with their device and address) and spent refresh tokens are kept this many days, then the hourly ' +
      'maintenance job prunes them. A spent refresh token presented again within it still ends its session as reuse.',
    fallback: () => 30,
    defaultText: '30',
    parse: integer(1, 3650),
  }),
  passwordMinLength: spec<number>({
    env: 'BASTION_PASSWORD_MIN_LENGTH',
    description: 'Minimum password length in characters (NIST SP 800-63B-4: 15 where the password is the only factor; 8 is the floor).',
    fallback: () => 15,
    defaultText: '15',
    parse: integer(8, 64),
  }),
  requireVerifiedEmail: spec<boolean>({
    env: 'BASTION_REQUIRE_VERIFIED_EMAIL',
    description: 'Refuse sign-in until the email address is verified.',
    fallback: () => false,
    defaultText: 'false',
    parse: boolean,
  }),
  hashConcurrency: spec<number>({
    env: 'BASTION_HASH_CONCURRENCY',
    description:
      'Password hashes computed at once per process (each takes ~19 MiB and a core ' +
      'for ~50 ms); more wait in a short queue, beyond it sign-ins get RATE_LIMITED.',
    fallback: () => 2,
    defaultText: '2',
    parse: integer(1, 64),
  }),
};

declare module '../config/config' {
  interface Config extends SettingValues<typeof specs> {}
}

/** Links, tokens, sessions, passwords and email verification. */
export const ACCOUNTS_SETTINGS: SettingsTable = { specs };
