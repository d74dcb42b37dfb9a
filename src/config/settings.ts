import path from 'node:path';

/** The three environments Bastion knows; `production` switches every default to the safe one. */
export type NodeEnv = 'development' | 'production' | 'test';
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const INTROSPECTION_MODES = ['everyone', 'admins'] as const;
export type IntrospectionMode = (typeof INTROSPECTION_MODES)[number];

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
  const origins = raw.split(',').map((origin) => origin.trim()).filter(Boolean);
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
    description: 'PostgreSQL connection URL. Unset: an embedded PostgreSQL is started with its data in BASTION_DATA_DIR (not allowed in production).',
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
    env: 'BASTION_CORS_ORIGINS',
    description: 'Browser origins allowed to call the API (native mobile apps send none and need none).',
    fallback: (nodeEnv) => (isProduction(nodeEnv) ? [] : APOLLO_SANDBOX_ORIGINS),
    defaultText: 'Apollo Sandbox origins; none in production',
    parse: originList,
  }),
  introspection: spec<IntrospectionMode>({
    env: 'BASTION_INTROSPECTION',
    description: 'Who may run introspection queries: everyone, or admins (until roles exist, nobody).',
    fallback: (nodeEnv) => (nodeEnv === 'development' ? 'everyone' : 'admins'),
    defaultText: 'everyone in development, else admins',
    parse: oneOf(INTROSPECTION_MODES),
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
