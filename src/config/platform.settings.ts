import path from 'node:path';
import { databaseCaProblem, databaseTlsProblem, withDatabaseCa } from '../db/database-tls';
import { LOG_LEVELS, LogLevel } from '../logging';
import { Config, NODE_ENV, SettingValues, SettingsTable } from './config';
import { NodeEnv, SettingProblem, boolean, byteSize, cidrList, integer, nonEmpty, oneOf, quote, readableFile, spec } from './settings';

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

const APOLLO_SANDBOX_ORIGINS = ['https://sandbox.embed.apollographql.com', 'https://studio.apollographql.com'];

const isProduction = (nodeEnv: NodeEnv) => nodeEnv === 'production';

const specs = {
  nodeEnv: NODE_ENV,
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
    inProduction: { mustBeSet: 'the embedded PostgreSQL is for development and tests' },
  }),
  databaseCaFile: spec<string | undefined>({
    env: 'BASTION_DATABASE_CA_FILE',
    description:
      "PEM file of the CA that signed PostgreSQL's certificate. Set: every connection uses TLS and checks the certificate " +
      'against it and the host name against the certificate (sslmode=verify-full).',
    fallback: () => undefined,
    defaultText: 'unset (sslmode from DATABASE_URL)',
    parse: readableFile,
  }),
  migrationDatabaseUrl: spec<string | undefined>({
    env: 'BASTION_MIGRATION_DATABASE_URL',
    description:
      "The same database as another role, the schema's owner: migrations run as it, then grant DATABASE_URL's role " +
      'what the server needs (audit events: SELECT and INSERT only). Unset: migrations run as DATABASE_URL.',
    fallback: () => undefined,
    defaultText: 'unset (one role)',
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
    inProduction: { refuse: (pretty) => (pretty ? 'must be false in production (logs are shipped as JSON lines)' : null) },
  }),
  sandbox: spec<boolean>({
    env: 'BASTION_SANDBOX',
    description:
      "Serve the Apollo Sandbox landing page on GET /graphql from a browser. It loads from Apollo's CDN, so it needs internet; " +
      'the console at /console does not.',
    fallback: (nodeEnv) => !isProduction(nodeEnv),
    defaultText: 'true; false in production',
    parse: boolean,
  }),
  sandboxTelemetry: spec<boolean>({
    env: 'BASTION_SANDBOX_TELEMETRY',
    description: "Let the Apollo Sandbox landing page send Apollo its usage telemetry (Apollo's own default is on).",
    fallback: () => false,
    defaultText: 'false',
    parse: boolean,
  }),
  corsOrigins: spec<readonly string[]>({
    env: 'CORS_ORIGINS',
    description: 'Browser origins allowed to call the API (native mobile apps send none and need none).',
    fallback: (nodeEnv) => (isProduction(nodeEnv) ? [] : APOLLO_SANDBOX_ORIGINS),
    defaultText: 'Apollo Sandbox origins; none in production',
    parse: originList,
  }),
  migrateOnStart: spec<boolean>({
    env: 'BASTION_MIGRATE_ON_START',
    description:
      'Apply pending migrations when the server starts. Off, a release step runs `bastion migrate` (as the migration role) and a server ' +
      'finding migrations pending refuses to start.',
    fallback: (nodeEnv) => !isProduction(nodeEnv),
    defaultText: 'true; false in production',
    parse: boolean,
  }),
  databasePoolSize: spec<number>({
    env: 'BASTION_DB_POOL_SIZE',
    description: 'Maximum PostgreSQL connections held by one process.',
    fallback: () => 10,
    defaultText: '10',
    parse: integer(1, 500),
  }),
  databaseStatementTimeoutMs: spec<number>({
    env: 'BASTION_DB_STATEMENT_TIMEOUT_MS',
    description:
      "PostgreSQL's statement_timeout on the server's pool: a statement running longer is cancelled and the request gets TIMEOUT. " +
      'Migrations, maintenance and backups run without it.',
    fallback: () => 10_000,
    defaultText: '10000',
    parse: integer(100, 3_600_000),
  }),
  requestTimeoutMs: spec<number>({
    env: 'BASTION_REQUEST_TIMEOUT_MS',
    description:
      'Deadline of one GraphQL request: past it the client gets HTTP 504 with TIMEOUT (work already started may still finish, ' +
      'each statement within BASTION_DB_STATEMENT_TIMEOUT_MS).',
    fallback: () => 15_000,
    defaultText: '15000',
    parse: integer(100, 600_000),
  }),
  bodyLimitBytes: spec<number>({
    env: 'BASTION_BODY_LIMIT',
    description: 'Largest accepted request body (b, kb or mb).',
    fallback: () => 100 * 1024,
    defaultText: '100kb',
    parse: byteSize(1024, 10 * 1024 * 1024),
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
  appName: spec<string>({
    env: 'BASTION_APP_NAME',
    description: "The app's name: shown in emails and TOTP apps, and refused inside passwords.",
    fallback: () => 'Bastion',
    defaultText: 'Bastion',
    parse: nonEmpty,
  }),
  shutdownTimeoutMs: spec<number>({
    env: 'BASTION_SHUTDOWN_TIMEOUT_MS',
    description: 'How long a graceful shutdown waits for in-flight requests before closing them.',
    fallback: () => 10_000,
    defaultText: '10000',
    parse: integer(0, 600_000),
  }),
};

declare module './config' {
  interface Config extends SettingValues<typeof specs> {}
}

/** The settings of the platform itself: the process, the database, HTTP, TLS and logs. Features add theirs. */
export const PLATFORM_SETTINGS: SettingsTable = {
  specs,
  resolve: (config, cwd) => ({
    dataDir: path.resolve(cwd, config.dataDir),
    databaseUrl: config.databaseUrl && withDatabaseCa(config.databaseUrl, config.databaseCaFile),
    migrationDatabaseUrl: config.migrationDatabaseUrl && withDatabaseCa(config.migrationDatabaseUrl, config.databaseCaFile),
  }),
  consistency: (config) => [
    ...((config.tlsCertFile === undefined) !== (config.tlsKeyFile === undefined)
      ? ['TLS_CERT_FILE and TLS_KEY_FILE: set both or neither']
      : []),
    ...databaseUrlProblems(config),
  ],
  production: (config) =>
    (
      [
        ['DATABASE_URL', config.databaseUrl],
        ['BASTION_MIGRATION_DATABASE_URL', config.migrationDatabaseUrl],
      ] as const
    ).flatMap(([env, url]) => {
      const problem = url === undefined ? null : databaseTlsProblem(url);
      return problem ? [`${env}: ${problem}`] : [];
    }),
};

/** The CA file against the URLs' own TLS parameters, and a migration role that can do what it is for. */
function databaseUrlProblems(config: Config): string[] {
  const problems: string[] = [];
  for (const [env, url] of [
    ['DATABASE_URL', config.databaseUrl],
    ['BASTION_MIGRATION_DATABASE_URL', config.migrationDatabaseUrl],
  ] as const) {
    const problem = url === undefined ? null : databaseCaProblem(url, config.databaseCaFile);
    if (problem) problems.push(`${env}: ${problem}`);
  }
  if (config.migrationDatabaseUrl === undefined) return problems;
  if (config.databaseUrl === undefined)
    return [...problems, 'BASTION_MIGRATION_DATABASE_URL: needs DATABASE_URL (the embedded PostgreSQL has one role)'];
  const runtime = new URL(config.databaseUrl);
  const migration = new URL(config.migrationDatabaseUrl);
  if (runtime.host !== migration.host || runtime.pathname !== migration.pathname)
    problems.push('BASTION_MIGRATION_DATABASE_URL: must name the same server and database as DATABASE_URL, as another role');
  if (runtime.username === '')
    problems.push('DATABASE_URL: must name its role (user@) when BASTION_MIGRATION_DATABASE_URL is set, to grant it');
  else if (decodeURIComponent(runtime.username) === decodeURIComponent(migration.username))
    problems.push('BASTION_MIGRATION_DATABASE_URL: must name another role than DATABASE_URL (the role the server runs as)');
  return problems;
}
