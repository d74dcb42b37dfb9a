import 'reflect-metadata';
import { Client, ClientConfig } from 'pg';
import { DataSource } from 'typeorm';
import { MIGRATIONS } from '../../migrations';
import { AfterCommitSubscriber } from './after-commit';
import { SnakeNamingStrategy } from './naming-strategy';

/** The tables a data source maps: the features' entities and subscribers (see `tablesOf`). */
export interface Tables {
  readonly entities: readonly Function[];
  readonly subscribers?: readonly Function[];
}

export interface DataSourceOptions extends Tables {
  readonly url: string;
  readonly poolSize: number;
  /** PostgreSQL's statement_timeout on every pooled connection (the server's); unset: none (migrations, tools). */
  readonly statementTimeoutMs?: number;
}

/**
 * A pooled connection that always hears its 'error' event. pg-pool takes its own listener off a
 * client as it hands it out, and the caller adds one only after its callback returns; when the
 * server ends the connection in that moment (a shutdown's FATAL read in the same packet as the
 * ReadyForQuery), the event would find no listener and crash the process. The error still reaches
 * the query that meets it, the pool's idle handler and TypeORM's.
 */
class ListeningClient extends Client {
  constructor(config?: string | ClientConfig) {
    super(config);
    this.on('error', () => undefined);
  }
}

/**
 * The one TypeORM DataSource shape, shared by the server, the CLI, tests and ormconfig.ts.
 * `synchronize` is never on: the schema changes only through committed migrations.
 */
export function createDataSource(options: DataSourceOptions): DataSource {
  return new DataSource({
    type: 'postgres',
    url: options.url,
    applicationName: 'bastion',
    entities: [...options.entities],
    migrations: MIGRATIONS,
    subscribers: [...(options.subscribers ?? []), AfterCommitSubscriber],
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'each',
    namingStrategy: new SnakeNamingStrategy(),
    synchronize: false,
    migrationsRun: false,
    uuidExtension: 'pgcrypto',
    // statement_timeout goes in the startup packet: it holds from a connection's first statement, on every connection of the pool.
    extra: {
      max: options.poolSize,
      connectionTimeoutMillis: 5_000,
      statement_timeout: options.statementTimeoutMs,
      Client: ListeningClient,
    },
    // Idle pooled connections die with the server; the pool replaces them, so this is not fatal.
    poolErrorHandler: () => undefined,
  });
}
