import type { SettingValues, SettingsTable } from '../config';
import { networkList, oneOf, spec } from '../config/settings';

export const INTROSPECTION_MODES = ['everyone', 'admins'] as const;
export type IntrospectionMode = (typeof INTROSPECTION_MODES)[number];
export const MFA_REQUIREMENTS = ['none', 'admin', 'all'] as const;
export type MfaRequirement = (typeof MFA_REQUIREMENTS)[number];

const isProduction = (nodeEnv: string) => nodeEnv === 'production';

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
    fallback: (nodeEnv) => (isProduction(nodeEnv) ? 'admin' : 'none'),
    defaultText: 'admin in production, else none',
    parse: oneOf(MFA_REQUIREMENTS),
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
