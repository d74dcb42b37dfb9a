import type { SettingValues, SettingsTable } from '../config';
import { SettingProblem, networkList, nonEmpty, oneOf, spec } from '../config/settings';

export const INTROSPECTION_MODES = ['everyone', 'admins'] as const;
export type IntrospectionMode = (typeof INTROSPECTION_MODES)[number];
export const MFA_REQUIREMENTS = ['none', 'admin', 'all'] as const;
export type MfaRequirement = (typeof MFA_REQUIREMENTS)[number];

const isProduction = (nodeEnv: string) => nodeEnv === 'production';

/** One line of prose for a report: not empty, not a control character (it is printed in tables and logs). */
function reasonText(raw: string): string {
  const text = nonEmpty(raw);
  if (text.length > 200) throw new SettingProblem(`must be at most 200 characters (got ${text.length})`);
  if (/\p{Cc}/u.test(text)) throw new SettingProblem('must be one line without control characters');
  return text;
}

const specs = {
  introspection: spec<IntrospectionMode>({
    env: 'BASTION_INTROSPECTION',
    description: 'Who may run introspection queries: everyone, or only signed-in admins.',
    fallback: (nodeEnv) => (nodeEnv === 'development' ? 'everyone' : 'admins'),
    defaultText: 'everyone in development, else admins',
    parse: oneOf(INTROSPECTION_MODES),
    inProduction: { refuse: (mode) => (mode === 'everyone' ? "must be admins in production (the schema is an attacker's map)" : null) },
  }),
  mfaRequiredFor: spec<MfaRequirement>({
    env: 'BASTION_MFA_REQUIRED_FOR',
    description:
      'Whose roles need a session confirmed with the second factor (aal2): none (only custom roles marked requireMfa), admin ' +
      '(also the admin role), or all (every role of a signed-in account; account basics such as enrolling a factor stay open).',
    // Every account in production (ASVS 6.3.3): a password alone is what credential stuffing takes over.
    fallback: (nodeEnv) => (isProduction(nodeEnv) ? 'all' : 'none'),
    defaultText: 'all in production, else none',
    parse: oneOf(MFA_REQUIREMENTS),
  }),
  mfaRelaxedReason: spec<string | undefined>({
    env: 'BASTION_MFA_RELAXED_REASON',
    description:
      'Why BASTION_MFA_REQUIRED_FOR is less than all (e.g. "kiosk accounts, tracked in SEC-142"). ' +
      'The self-audit quotes it in its warning, so the exception stays visible and owned.',
    fallback: () => undefined,
    defaultText: 'unset',
    parse: reasonText,
  }),
  adminAllowedCidrs: spec<readonly string[]>({
    env: 'ADMIN_ALLOWED_CIDRS',
    description:
      'Networks from which the admin role may be used (IPs or CIDRs). An admin token from anywhere else acts as a plain user. Empty: anywhere.',
    fallback: () => [],
    defaultText: 'anywhere',
    parse: networkList,
  }),
};

declare module '../config/config' {
  interface Config extends SettingValues<typeof specs> {}
}

/** Who may see the schema, which roles need a second factor, and where the admin role may be used from. */
export const ACCESS_SETTINGS: SettingsTable = { specs };
