import type { ClientBase } from 'pg';
import type { DataSource } from 'typeorm';
import type { Config } from '../config';
import type { Logger } from '../logging';
import { Tables, createDataSource } from './data-source';
import { EmbeddedPostgres } from './embedded-postgres';

/** The database name Bastion uses on its embedded server. */
export const EMBEDDED_DATABASE = 'bastion';

/** The same server and credentials, another database. */
export function databaseUrlFor(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** The database a connection URL names. */
export function databaseNameOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname.slice(1));
}

/** Whether the table exists in `public` (a database not yet migrated, or restored from an older archive, may lack it). */
export async function tableExists(
  database: { query(sql: string, parameters?: unknown[]): Promise<unknown> },
  table: string,
): Promise<boolean> {
  const [{ present }] = (await database.query('SELECT to_regclass($1) IS NOT NULL AS present', [`public.${table}`])) as {
    present: boolean;
  }[];
  return present;
}

/** Drops a database, ending the sessions still connected to it. */
export async function dropDatabase(client: ClientBase, database: string): Promise<void> {
  await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(database)} WITH (FORCE)`);
}

/** The database could not be reached: one line a person can act on, no password, no stack. */
export class DatabaseUnavailableError extends Error {
  constructor(url: string, cause: unknown) {
    super(`Cannot connect to PostgreSQL at ${describeUrl(url)}: ${describeCause(cause)}`, { cause });
    this.name = 'DatabaseUnavailableError';
  }
}

/** host:port/database of a connection URL, without the credentials. */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || 5432}${parsed.pathname}`;
  } catch {
    return '(unparsable DATABASE_URL)';
  }
}

function describeCause(cause: unknown): string {
  const { code, message } = cause as { code?: string; message?: string };
  const known: Record<string, string> = {
    ECONNREFUSED: 'connection refused (is the server running?)',
    ENOTFOUND: 'host not found',
    ETIMEDOUT: 'connection timed out',
    '28P01': 'password authentication failed',
    '28000': 'this user may not connect',
    '3D000': 'the database does not exist',
  };
  return (code && known[code]) || message?.split('\n')[0] || 'unknown error';
}

/** The schema is behind the code: the server must not run on it. */
export class MigrationsPendingError extends Error {
  constructor() {
    super('Migrations are pending: run `bastion migrate` (or start with BASTION_MIGRATE_ON_START=true)');
    this.name = 'MigrationsPendingError';
  }
}

export interface Database {
  readonly dataSource: DataSource;
  /** The connection URL (with credentials): for connections outside the pool, never for logs. */
  readonly url: string;
  /** The embedded server, when DATABASE_URL is unset. */
  readonly embedded?: EmbeddedPostgres;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** Apply pending migrations first (as the migration role, see `migrateDatabase`). */
  readonly migrate: boolean;
  readonly tables: Tables;
  /** The server's: BASTION_DB_STATEMENT_TIMEOUT_MS on every pooled connection. CLI commands (operator work) run without. */
  readonly statementTimeoutMs?: number;
}

/**
 * Connects to DATABASE_URL, or starts the embedded PostgreSQL in the data folder when it is unset,
 * and optionally applies pending migrations.
 */
export async function openDatabase(config: Config, logger: Logger, options: OpenDatabaseOptions): Promise<Database> {
  let embedded: EmbeddedPostgres | undefined;
  let url = config.databaseUrl;
  if (url === undefined) {
    embedded = await EmbeddedPostgres.start({ dataDir: config.dataDir, logger });
    await embedded.ensureDatabase(EMBEDDED_DATABASE);
    url = embedded.urlFor(EMBEDDED_DATABASE);
  }
  try {
    if (options.migrate) await migrateDatabase(config, url, logger);
  } catch (error) {
    await embedded?.stop().catch(() => undefined);
    throw error;
  }
  const dataSource = createDataSource({
    url,
    poolSize: config.databasePoolSize,
    statementTimeoutMs: options.statementTimeoutMs,
    ...options.tables,
  });
  try {
    await dataSource.initialize();
  } catch (error) {
    await embedded?.stop().catch(() => undefined);
    throw new DatabaseUnavailableError(url, error);
  }
  const close = async () => {
    if (dataSource.isInitialized) await dataSource.destroy();
    await embedded?.stop();
  };
  return { dataSource, url, embedded, close };
}

/**
 * Applies pending migrations on a connection of their own, without the server's statement timeout
 * (a migration may rewrite a large table): as BASTION_MIGRATION_DATABASE_URL's role when it is set,
 * which then grants DATABASE_URL's role what the server needs (`grantRuntimePrivileges`); else as
 * `url` (DATABASE_URL's, or the embedded server's). Returns the migrations applied.
 */
export async function migrateDatabase(config: Config, url: string, logger: Logger): Promise<number> {
  const migrationUrl = config.migrationDatabaseUrl ?? url;
  const dataSource = createDataSource({ url: migrationUrl, poolSize: 1, entities: [] });
  try {
    await dataSource.initialize();
  } catch (error) {
    throw new DatabaseUnavailableError(migrationUrl, error);
  }
  try {
    const applied = await runMigrations(dataSource, logger);
    if (config.migrationDatabaseUrl !== undefined) await grantRuntimePrivileges(dataSource, runtimeRoleOf(url), logger);
    return applied;
  } finally {
    await dataSource.destroy();
  }
}

/** The role a connection URL signs in as (its user@). */
export function runtimeRoleOf(url: string): string {
  return decodeURIComponent(new URL(url).username);
}

/**
 * Grants the server's role exactly what it needs, as the schema's owner: the latest migration's
 * `bastion_grant_runtime_privileges` holds the list (DML on the tables, audit events append-only),
 * so tables a later migration adds are granted at the same `bastion migrate`.
 */
export async function grantRuntimePrivileges(dataSource: DataSource, role: string, logger: Logger): Promise<void> {
  await dataSource.query('SELECT bastion_grant_runtime_privileges($1)', [role]);
  logger.info({ role }, 'runtime role granted its privileges');
}

export async function runMigrations(dataSource: DataSource, logger: Logger): Promise<number> {
  const applied = await dataSource.runMigrations({ transaction: 'each' });
  for (const migration of applied) logger.info({ migration: migration.name }, 'migration applied');
  return applied.length;
}
