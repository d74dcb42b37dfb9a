import fs from 'node:fs';
import path from 'node:path';
import { Cron } from 'croner';
import { parseCidr } from '../firewall/cidr';

/** The three environments Bastion knows; `production` switches every default to the safe one. */
export type NodeEnv = 'development' | 'production' | 'test';
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const INTROSPECTION_MODES = ['everyone', 'admins'] as const;
export type IntrospectionMode = (typeof INTROSPECTION_MODES)[number];
export const MFA_REQUIREMENTS = ['none', 'admin', 'all'] as const;
export const FIREWALL_ACTIONS = ['allow', 'deny'] as const;
export type FirewallDefault = (typeof FIREWALL_ACTIONS)[number];
/** A rate limit: so many points per window of so many seconds. */
export interface RateLimit {
  readonly points: number;
  readonly seconds: number;
}
export type MfaRequirement = (typeof MFA_REQUIREMENTS)[number];

/** Thrown by a parser; the message completes "NAME: …" and never repeats a secret value. */
export class SettingProblem extends Error {}

export interface SettingSpec<T> {
  /** Environment variable that holds it. */
  readonly env: string;
  /** One line for the README table and `bastion --help`. */
  readonly description: string;
  /** Default per environment (an optional setting's type includes `undefined`). */
  readonly fallback: (nodeEnv: NodeEnv) => T;
  /** Human-readable default for the README table. */
  readonly defaultText: string;
  readonly parse: (raw: string) => T;
  /** A secret's value is never echoed in an error message. */
  readonly secret?: boolean;
}

function spec<T>(definition: SettingSpec<T>): SettingSpec<T> {
  return definition;
}

const quote = (raw: string) => JSON.stringify(raw.length > 40 ? `${raw.slice(0, 40)}…` : raw);

function integer(min: number, max: number) {
  return (raw: string): number => {
    if (!/^\d+$/.test(raw.trim())) throw new SettingProblem(`must be a whole number (got ${quote(raw)})`);
    const value = Number(raw.trim());
    if (value < min || value > max) {
      throw new SettingProblem(`must be between ${min} and ${max} (got ${value})`);
    }
    return value;
  };
}

function boolean(raw: string): boolean {
  const value = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(value)) return true;
  if (['false', '0', 'no', 'off'].includes(value)) return false;
  throw new SettingProblem(`must be true or false (got ${quote(raw)})`);
}

function oneOf<T extends string>(choices: readonly T[]) {
  return (raw: string): T => {
    const value = raw.trim().toLowerCase() as T;
    if (!choices.includes(value)) {
      throw new SettingProblem(`must be one of ${choices.join(', ')} (got ${quote(raw)})`);
    }
    return value;
  };
}

function nonEmpty(raw: string): string {
  if (raw.trim() === '') throw new SettingProblem('must not be empty');
  return raw.trim();
}

function postgresUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new SettingProblem('must be a URL such as postgres://user:password@host:5432/database');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new SettingProblem(`must start with postgres:// or postgresql:// (got ${url.protocol}//)`);
  }
  if (url.pathname.length <= 1) throw new SettingProblem('must name a database (…/database)');
  return raw.trim();
}

const BYTE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 * 1024 };
function byteSize(min: number, max: number) {
  return (raw: string): number => {
    const match = /^(\d+)\s*(b|kb|mb)?$/i.exec(raw.trim());
    if (!match) throw new SettingProblem(`must be a size such as 100kb or 1mb (got ${quote(raw)})`);
    const value = Number(match[1]) * BYTE_UNITS[(match[2] ?? 'b').toLowerCase()];
    if (value < min || value > max) {
      throw new SettingProblem(`must be between ${min} and ${max} bytes (got ${value})`);
    }
    return value;
  };
}

function originList(raw: string): readonly string[] {
  const origins = raw
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean);
  for (const origin of origins) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (!parsed || parsed.origin !== origin) {
      throw new SettingProblem(`must be a comma-separated list of origins such as https://admin.example.com (got ${quote(origin)})`);
    }
  }
  return Object.freeze(origins);
}

/** One data key of the keyring. */
export interface EncryptionKeySetting {
  readonly kid: string;
  readonly key: Buffer;
}

const KID = /^[A-Za-z0-9_-]{1,32}$/;

function base64Key(raw: string, what: string): Buffer {
  const key = Buffer.from(raw.trim(), 'base64');
  if (key.length !== 32 || !/^[A-Za-z0-9+/]+={0,2}$/.test(raw.trim())) {
    throw new SettingProblem(`${what} must be exactly 32 bytes, base64-encoded (generate one with \`npx bastion keys generate\`)`);
  }
  return key;
}

function encryptionKeyList(raw: string): readonly EncryptionKeySetting[] {
  const keys: EncryptionKeySetting[] = [];
  for (const entry of raw
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)) {
    const separator = entry.indexOf(':');
    const kid = separator > 0 ? entry.slice(0, separator) : '';
    if (!KID.test(kid))
      throw new SettingProblem('must be a comma-separated list of kid:base64key, with key ids of letters, digits, _ and - (at most 32)');
    if (keys.some((known) => known.kid === kid)) throw new SettingProblem(`names key id "${kid}" twice`);
    keys.push({ kid, key: base64Key(entry.slice(separator + 1), `key "${kid}"`) });
  }
  if (keys.length === 0) throw new SettingProblem('must name at least one kid:base64key');
  return Object.freeze(keys);
}

function keyId(raw: string): string {
  if (!KID.test(raw.trim())) throw new SettingProblem(`must be a key id of letters, digits, _ and - (got ${quote(raw)})`);
  return raw.trim();
}

function readableFile(raw: string): string {
  const file = path.resolve(raw.trim());
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch {
    throw new SettingProblem(`cannot read ${quote(file)}`);
  }
  return file;
}

/** CIDRs such as 10.0.0.0/8 or fd00::/8; a bare address means that one host. */
function cidrList(raw: string): readonly string[] {
  const cidrs = networkList(raw);
  for (const cidr of cidrs) {
    if (cidr.split('/')[1] === '0')
      throw new SettingProblem(`${quote(cidr)} would trust every address, so anyone could forge X-Forwarded-For`);
  }
  return cidrs;
}

function networkList(raw: string): readonly string[] {
  const cidrs = raw
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  for (const cidr of cidrs) {
    // The firewall's own parser: what is accepted here is exactly what the firewall can match.
    if (!parseCidr(cidr))
      throw new SettingProblem(`must be a comma-separated list of IP addresses or CIDRs such as 10.0.0.0/8 (got ${quote(cidr)})`);
  }
  return Object.freeze(cidrs);
}

function cronOrOff(raw: string): string | undefined {
  const value = raw.trim();
  if (value.toLowerCase() === 'off') return undefined;
  try {
    new Cron(value, { paused: true }).stop();
  } catch (error) {
    throw new SettingProblem(`must be a cron expression such as "17 3 * * *", or off (${(error as Error).message})`);
  }
  return value;
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

function absoluteUrl(raw: string): string {
  try {
    const url = new URL(raw.trim());
    return url.toString().replace(/\/$/, '');
  } catch {
    throw new SettingProblem(`must be an absolute URL such as https://api.example.com or myapp://auth (got ${quote(raw)})`);
  }
}

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

const APOLLO_SANDBOX_ORIGINS = ['https://sandbox.embed.apollographql.com', 'https://studio.apollographql.com'];

const isProduction = (nodeEnv: NodeEnv) => nodeEnv === 'production';

/**
 * Every setting Bastion reads. The README's configuration table is checked against this list,
 * so a setting added here without documentation fails the test suite.
 */
export const SETTINGS = {
  nodeEnv: spec<NodeEnv>({
    env: 'NODE_ENV',
    description: 'development, test or production. production switches every default below to its safe value and refuses unsafe settings.',
    fallback: () => 'development',
    defaultText: 'development',
    parse: oneOf(['development', 'production', 'test'] as const),
  }),
  port: spec<number>({
    env: 'PORT',
    description: 'TCP port of the HTTP server (0 picks a free one).',
    fallback: () => 4000,
    defaultText: '4000',
    parse: integer(0, 65535),
  }),
  host: spec<string>({
    env: 'HOST',
    description: 'Interface to listen on.',
    fallback: (nodeEnv) => (isProduction(nodeEnv) ? '0.0.0.0' : '127.0.0.1'),
    defaultText: '127.0.0.1; 0.0.0.0 in production (containers)',
    parse: nonEmpty,
  }),
  databaseUrl: spec<string | undefined>({
    env: 'DATABASE_URL',
    description:
      'PostgreSQL connection URL. Unset: an embedded PostgreSQL is started with its data in BASTION_DATA_DIR (not allowed in production).',
    fallback: () => undefined,
    defaultText: 'unset (embedded PostgreSQL)',
    parse: postgresUrl,
    secret: true,
  }),
  dataDir: spec<string>({
    env: 'BASTION_DATA_DIR',
    description: 'Folder for local state, such as the embedded PostgreSQL cluster (see "Where the data lives").',
    fallback: () => './.bastion',
    defaultText: './.bastion',
    parse: nonEmpty,
  }),
  logLevel: spec<LogLevel>({
    env: 'LOG_LEVEL',
    description: `Log level: ${LOG_LEVELS.join(', ')}.`,
    fallback: (nodeEnv) => (nodeEnv === 'test' ? 'silent' : 'info'),
    defaultText: 'info; silent under NODE_ENV=test',
    parse: oneOf(LOG_LEVELS),
  }),
  logPretty: spec<boolean>({
    env: 'BASTION_LOG_PRETTY',
    description: 'Human-readable colour logs instead of JSON lines. Refused in production.',
    fallback: (nodeEnv) => nodeEnv === 'development',
    defaultText: 'true in development, else false',
    parse: boolean,
  }),
  sandbox: spec<boolean>({
    env: 'BASTION_SANDBOX',
    description: 'Serve the Apollo Sandbox landing page on GET /graphql from a browser.',
    fallback: (nodeEnv) => !isProduction(nodeEnv),
    defaultText: 'true; false in production',
    parse: boolean,
  }),
  corsOrigins: spec<readonly string[]>({
    env: 'CORS_ORIGINS',
    description: 'Browser origins allowed to call the API (native mobile apps send none and need none).',
    fallback: (nodeEnv) => (isProduction(nodeEnv) ? [] : APOLLO_SANDBOX_ORIGINS),
    defaultText: 'Apollo Sandbox origins; none in production',
    parse: originList,
  }),
  introspection: spec<IntrospectionMode>({
    env: 'BASTION_INTROSPECTION',
    description: 'Who may run introspection queries: everyone, or only signed-in admins.',
    fallback: (nodeEnv) => (nodeEnv === 'development' ? 'everyone' : 'admins'),
    defaultText: 'everyone in development, else admins',
    parse: oneOf(INTROSPECTION_MODES),
  }),
  mfaRequiredFor: spec<MfaRequirement>({
    env: 'BASTION_MFA_REQUIRED_FOR',
    description:
      'Whose roles need a session confirmed with the second factor (aal2): none (only custom roles marked requireMfa), admin (also the admin role), or all (every role of a signed-in account; account basics such as enrolling a factor stay open).',
    fallback: (nodeEnv) => (isProduction(nodeEnv) ? 'admin' : 'none'),
    defaultText: 'admin in production, else none',
    parse: oneOf(MFA_REQUIREMENTS),
  }),
  migrateOnStart: spec<boolean>({
    env: 'BASTION_MIGRATE_ON_START',
    description: 'Apply pending migrations when the server starts. Set false where a separate, DDL-capable role runs `bastion migrate`.',
    fallback: () => true,
    defaultText: 'true',
    parse: boolean,
  }),
  databasePoolSize: spec<number>({
    env: 'BASTION_DB_POOL_SIZE',
    description: 'Maximum PostgreSQL connections held by one process.',
    fallback: () => 10,
    defaultText: '10',
    parse: integer(1, 500),
  }),
  bodyLimitBytes: spec<number>({
    env: 'BASTION_BODY_LIMIT',
    description: 'Largest accepted request body (b, kb or mb).',
    fallback: () => 100 * 1024,
    defaultText: '100kb',
    parse: byteSize(1024, 10 * 1024 * 1024),
  }),
  encryptionKeys: spec<readonly EncryptionKeySetting[] | undefined>({
    env: 'BASTION_ENCRYPTION_KEYS',
    description:
      'Data keys for encrypted columns, as kid:base64key,kid:base64key (each 32 bytes). Unset in development: generated once into BASTION_DATA_DIR/keys.json. Required in production.',
    fallback: () => undefined,
    defaultText: 'development: generated; production: required',
    parse: encryptionKeyList,
    secret: true,
  }),
  encryptionKeyId: spec<string | undefined>({
    env: 'BASTION_ENCRYPTION_KEY_ID',
    description: 'The key id new values are encrypted with. May be omitted when BASTION_ENCRYPTION_KEYS holds one key.',
    fallback: () => undefined,
    defaultText: 'the only key',
    parse: keyId,
  }),
  blindIndexKey: spec<Buffer | undefined>({
    env: 'BASTION_BLIND_INDEX_KEY',
    description:
      'Root key (32 bytes, base64) of the blind indexes that make encrypted columns searchable by equality. Changing it invalidates every index, and there is no rebuild command yet: treat it as fixed.',
    fallback: () => undefined,
    defaultText: 'development: generated; production: required',
    parse: (raw) => base64Key(raw, 'the key'),
    secret: true,
  }),
  tlsCertFile: spec<string | undefined>({
    env: 'TLS_CERT_FILE',
    description: 'PEM certificate (chain) file. With TLS_KEY_FILE, Bastion serves HTTPS only (TLS 1.2 or later) and sends HSTS.',
    fallback: () => undefined,
    defaultText: 'unset (HTTP)',
    parse: readableFile,
  }),
  tlsKeyFile: spec<string | undefined>({
    env: 'TLS_KEY_FILE',
    description: 'PEM private key file for TLS_CERT_FILE.',
    fallback: () => undefined,
    defaultText: 'unset',
    parse: readableFile,
  }),
  trustProxy: spec<readonly string[]>({
    env: 'TRUST_PROXY',
    description:
      "IPs or CIDRs of TLS-terminating proxies (load balancers) whose X-Forwarded-For and X-Forwarded-Proto are believed. Nobody else's are.",
    fallback: () => [],
    defaultText: 'none',
    parse: cidrList,
  }),
  firewallDefault: spec<FirewallDefault>({
    env: 'FIREWALL_DEFAULT',
    description:
      'What happens to a client address no IP rule matches: allow, or deny (then only ALLOW rules let anyone in; keep one for your own network before switching).',
    fallback: () => 'allow',
    defaultText: 'allow',
    parse: oneOf(FIREWALL_ACTIONS),
  }),
  adminAllowedCidrs: spec<readonly string[]>({
    env: 'ADMIN_ALLOWED_CIDRS',
    description:
      'Networks from which the admin role may be used (IPs or CIDRs). An admin token from anywhere else acts as a plain user. Empty: anywhere.',
    fallback: () => [],
    defaultText: 'anywhere',
    parse: networkList,
  }),
  auditSchedule: spec<string | undefined>({
    env: 'AUDIT_SCHEDULE',
    description:
      'When the self-audit runs by itself (cron, e.g. "17 3 * * *" daily at 03:17 UTC), on one instance; "off" to only run it on demand.',
    fallback: () => '17 3 * * *',
    defaultText: '17 3 * * * (daily)',
    parse: cronOrOff,
  }),
  auditRetentionDays: spec<number>({
    env: 'BASTION_AUDIT_RETENTION_DAYS',
    description:
      'Audit events older than this are pruned by the hourly maintenance job, leaving a checkpoint so the rest still verifies; 0 keeps them forever.',
    fallback: () => 365,
    defaultText: '365',
    parse: integer(0, 36_500),
  }),
  backupDir: spec<string | undefined>({
    env: 'BACKUP_DIR',
    description: 'Folder for backup archives (created mode 0700; each archive 0600).',
    fallback: () => undefined,
    defaultText: 'BASTION_DATA_DIR/backups',
    parse: nonEmpty,
  }),
  backupCopyDir: spec<string | undefined>({
    env: 'BACKUP_COPY_DIR',
    description:
      'A second folder every new archive is copied to (another disk, or a mounted remote: the 3-2-1 rule). Retention prunes it too.',
    fallback: () => undefined,
    defaultText: 'unset (one copy; the self-audit warns)',
    parse: nonEmpty,
  }),
  backupSchedule: spec<string | undefined>({
    env: 'BACKUP_SCHEDULE',
    description: 'When a backup is taken by itself (cron, UTC), on one instance, followed by retention; "off" for on-demand only.',
    fallback: () => '7 2 * * *',
    defaultText: '7 2 * * * (daily, 02:07 UTC)',
    parse: cronOrOff,
  }),
  backupVerifySchedule: spec<string | undefined>({
    env: 'BACKUP_VERIFY_SCHEDULE',
    description:
      'When the newest archive is restored into a scratch database and compared with its manifest (cron, UTC), on one instance; "off" to verify on demand only.',
    fallback: () => '47 2 * * *',
    defaultText: '47 2 * * * (daily, after the backup)',
    parse: cronOrOff,
  }),
  backupKeep: spec<number>({
    env: 'BACKUP_KEEP',
    description:
      'Restorable archives retention keeps (newest first); 0 for no count limit. The newest restorable and the newest verified archive are always kept.',
    fallback: () => 14,
    defaultText: '14',
    parse: integer(0, 100_000),
  }),
  backupMaxAgeDays: spec<number | undefined>({
    env: 'BACKUP_MAX_AGE_DAYS',
    description: 'Archives older than this many days are pruned as well (with the same two exceptions).',
    fallback: () => undefined,
    defaultText: 'unset (no age limit)',
    parse: integer(1, 36_500),
  }),
  backupKeyId: spec<string | undefined>({
    env: 'BACKUP_KEY_ID',
    description:
      'The key id in BASTION_ENCRYPTION_KEYS that archives are encrypted with (a key of their own is best). Keep every key that retained archives name: lose the key, lose the backups.',
    fallback: () => undefined,
    defaultText: 'the current column key',
    parse: keyId,
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
      'Redis for the rate-limit counters (redis://host:6379). Unset: they live in PostgreSQL, shared by every instance all the same.',
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
  passwordMinLength: spec<number>({
    env: 'BASTION_PASSWORD_MIN_LENGTH',
    description: 'Minimum password length in characters (NIST SP 800-63B-4: 15 where the password is the only factor; 8 is the floor).',
    fallback: () => 15,
    defaultText: '15',
    parse: integer(8, 64),
  }),
  appName: spec<string>({
    env: 'BASTION_APP_NAME',
    description: "The app's name: shown in emails and TOTP apps, and refused inside passwords.",
    fallback: () => 'Bastion',
    defaultText: 'Bastion',
    parse: nonEmpty,
  }),
  requireVerifiedEmail: spec<boolean>({
    env: 'BASTION_REQUIRE_VERIFIED_EMAIL',
    description: 'Refuse sign-in until the email address is verified.',
    fallback: () => false,
    defaultText: 'false',
    parse: boolean,
  }),
  smtpUrl: spec<string | undefined>({
    env: 'SMTP_URL',
    description:
      'SMTP server for emails, e.g. smtps://user:password@mail.example.com:465. Unset: emails are written to the log (development only; refused in production).',
    fallback: () => undefined,
    defaultText: 'unset (log transport)',
    parse: smtpUrl,
    secret: true,
  }),
  mailFrom: spec<string>({
    env: 'BASTION_MAIL_FROM',
    description: 'Sender address of emails.',
    fallback: () => 'Bastion <no-reply@localhost>',
    defaultText: 'Bastion <no-reply@localhost>',
    parse: nonEmpty,
  }),
  hashConcurrency: spec<number>({
    env: 'BASTION_HASH_CONCURRENCY',
    description:
      'Password hashes computed at once per process (each takes ~19 MiB and a core for ~50 ms); more wait in a short queue, beyond it sign-ins get RATE_LIMITED.',
    fallback: () => 2,
    defaultText: '2',
    parse: integer(1, 64),
  }),
  shutdownTimeoutMs: spec<number>({
    env: 'BASTION_SHUTDOWN_TIMEOUT_MS',
    description: 'How long a graceful shutdown waits for in-flight requests before closing them.',
    fallback: () => 10_000,
    defaultText: '10000',
    parse: integer(0, 600_000),
  }),
} as const;

export type SettingKey = keyof typeof SETTINGS;

/** Resolves a configured folder against the working directory. */
export function absolutePath(folder: string, cwd: string): string {
  return path.resolve(cwd, folder);
}
