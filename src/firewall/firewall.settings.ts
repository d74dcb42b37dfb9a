import type { Config, SettingValues, SettingsTable } from '../config';
import { SettingProblem, SettingSpec, boolean, integer, oneOf, quote, readableFile, spec } from '../config/settings';

export const FIREWALL_ACTIONS = ['allow', 'deny'] as const;
export type FirewallDefault = (typeof FIREWALL_ACTIONS)[number];

/** A rate limit: so many points per window of so many seconds. */
export interface RateLimit {
  readonly points: number;
  readonly seconds: number;
}

function rateLimit(raw: string): RateLimit {
  const match = /^\s*(\d{1,7})\s*\/\s*(\d{1,6})\s*$/.exec(raw);
  if (!match || Number(match[1]) < 1 || Number(match[2]) < 1)
    throw new SettingProblem(`must be points/seconds such as 600/60 (got ${quote(raw)})`);
  return Object.freeze({ points: Number(match[1]), seconds: Number(match[2]) });
}

function redisUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new SettingProblem('must be a URL such as redis://127.0.0.1:6379');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
    throw new SettingProblem(`must start with redis:// or rediss:// (got ${url.protocol}//)`);
  return raw.trim();
}

const specs = {
  firewallDefault: spec<FirewallDefault>({
    env: 'FIREWALL_DEFAULT',
    description:
      'What happens to a client address no IP rule matches: allow, or deny (then only ' +
      'ALLOW rules let anyone in; keep one for your own network before switching).',
    fallback: () => 'allow',
    defaultText: 'allow',
    parse: oneOf(FIREWALL_ACTIONS),
  }),
  graphqlMaxDepth: spec<number>({
    env: 'BASTION_GRAPHQL_MAX_DEPTH',
    description: 'Deepest field nesting a query may have (fragments flattened).',
    fallback: () => 8,
    defaultText: '8',
    parse: integer(2, 50),
  }),
  graphqlMaxCost: spec<number>({
    env: 'BASTION_GRAPHQL_MAX_COST',
    description: "Most a query may cost: each field 1, a list's fields multiplied by its first (10 for a list without first).",
    fallback: () => 5000,
    defaultText: '5000',
    parse: integer(10, 10_000_000),
  }),
  graphqlMaxAliases: spec<number>({
    env: 'BASTION_GRAPHQL_MAX_ALIASES',
    description: 'Most aliases in one query (none is exempt, not even __typename).',
    fallback: () => 15,
    defaultText: '15',
    parse: integer(0, 1000),
  }),
  graphqlMaxDirectives: spec<number>({
    env: 'BASTION_GRAPHQL_MAX_DIRECTIVES',
    description: 'Most directives in one query.',
    fallback: () => 5,
    defaultText: '5',
    parse: integer(0, 1000),
  }),
  graphqlMaxTokens: spec<number>({
    env: 'BASTION_GRAPHQL_MAX_TOKENS',
    description: 'Most lexical tokens in one query document (refused before it is parsed further).',
    fallback: () => 1000,
    defaultText: '1000',
    parse: integer(50, 1_000_000),
  }),
  operationAllowlistFile: spec<string | undefined>({
    env: 'OPERATION_ALLOWLIST_FILE',
    description:
      'An Apollo persisted-query manifest (JSON). When set, every non-admin request must be one of its operations; admins (Sandbox) are exempt.',
    fallback: () => undefined,
    defaultText: 'unset (any operation)',
    parse: readableFile,
  }),
  redisUrl: spec<string | undefined>({
    env: 'REDIS_URL',
    description:
      'Redis for the rate-limit counters and the realtime change events (redis://host:6379). Unset: counters live in PostgreSQL ' +
      'and changes travel by PostgreSQL NOTIFY, shared by every instance all the same.',
    fallback: () => undefined,
    defaultText: 'unset (PostgreSQL)',
    parse: redisUrl,
    secret: true,
  }),
  rateLimitsEnabled: spec<boolean>({
    env: 'BASTION_RATE_LIMITS',
    description: 'Enforce the rate limits below. Turn off only behind an equivalent limiter.',
    fallback: () => true,
    defaultText: 'true',
    parse: boolean,
  }),
  rateLimitPerIp: spec<RateLimit>({
    env: 'BASTION_RATE_LIMIT_IP',
    description: 'GraphQL requests per client address, as points/seconds.',
    fallback: () => ({ points: 600, seconds: 60 }),
    defaultText: '600/60',
    parse: rateLimit,
  }),
  rateLimitStoreWaitMs: spec<number>({
    env: 'BASTION_RATE_LIMIT_STORE_WAIT_MS',
    description:
      "How long a request waits for the shared rate-limit store (PostgreSQL or Redis) before it is decided on this instance's own counts.",
    fallback: () => 1_000,
    defaultText: '1000',
    parse: integer(50, 60_000),
  }),
  rateLimitPerUser: spec<RateLimit>({
    env: 'BASTION_RATE_LIMIT_USER',
    description: 'GraphQL requests per signed-in account, as points/seconds.',
    fallback: () => ({ points: 1200, seconds: 60 }),
    defaultText: '1200/60',
    parse: rateLimit,
  }),
  rateLimitSignIn: spec<RateLimit>({
    env: 'BASTION_RATE_LIMIT_SIGN_IN',
    description: 'signIn attempts per client address (each aliased call counts), as points/seconds. Per-account throttling comes on top.',
    fallback: () => ({ points: 20, seconds: 60 }),
    defaultText: '20/60',
    parse: rateLimit,
  }),
  rateLimitSignUp: spec<RateLimit>({
    env: 'BASTION_RATE_LIMIT_SIGN_UP',
    description: 'signUp calls per client address, as points/seconds.',
    fallback: () => ({ points: 20, seconds: 3600 }),
    defaultText: '20/3600',
    parse: rateLimit,
  }),
  rateLimitVerifyMfa: spec<RateLimit>({
    env: 'BASTION_RATE_LIMIT_VERIFY_MFA',
    description: 'verifyMfa attempts per client address, as points/seconds.',
    fallback: () => ({ points: 20, seconds: 60 }),
    defaultText: '20/60',
    parse: rateLimit,
  }),
  rateLimitPasswordReset: spec<RateLimit>({
    env: 'BASTION_RATE_LIMIT_PASSWORD_RESET',
    description: 'requestPasswordReset calls per client address, as points/seconds.',
    fallback: () => ({ points: 5, seconds: 3600 }),
    defaultText: '5/3600',
    parse: rateLimit,
  }),
};

/** The settings that hold a rate limit (points/seconds). */
type RateLimitKey = { [K in keyof typeof specs]: (typeof specs)[K] extends SettingSpec<RateLimit> ? K : never }[keyof typeof specs];

/**
 * Every rate limit, by a stable snake_case name, in the order a request meets them: per address,
 * per account, then the stricter per-operation buckets. A new BASTION_RATE_LIMIT_* bucket is
 * listed here too (tests/unit/firewall/rate-limit-settings.test.ts checks it).
 */
const RATE_LIMIT_BUCKETS: readonly { readonly name: string; readonly key: RateLimitKey }[] = [
  { name: 'per_ip', key: 'rateLimitPerIp' },
  { name: 'per_user', key: 'rateLimitPerUser' },
  { name: 'sign_in', key: 'rateLimitSignIn' },
  { name: 'sign_up', key: 'rateLimitSignUp' },
  { name: 'verify_mfa', key: 'rateLimitVerifyMfa' },
  { name: 'password_reset', key: 'rateLimitPasswordReset' },
];

/** One rate limit as a configuration reads it: the `rateLimits` query's entries. */
export interface RateLimitInForce {
  /** Stable snake_case name, e.g. per_ip, sign_in. */
  readonly name: string;
  /** What it counts, per what (its setting's description, without how the value is written). */
  readonly description: string;
  readonly limit: number;
  readonly windowSeconds: number;
  /** The environment variable that sets it. */
  readonly setting: string;
}

/** The rate limits of a configuration (enforced or not: BASTION_RATE_LIMITS says). */
export function rateLimitsInForce(config: Config): RateLimitInForce[] {
  return RATE_LIMIT_BUCKETS.map(({ name, key }) => ({
    name,
    description: specs[key].description.replace(', as points/seconds.', '.'),
    limit: config[key].points,
    windowSeconds: config[key].seconds,
    setting: specs[key].env,
  }));
}

declare module '../config/config' {
  interface Config extends SettingValues<typeof specs> {}
}

/** IP rules, GraphQL document limits, the operation allowlist and the rate limits. */
export const FIREWALL_SETTINGS: SettingsTable = { specs };
