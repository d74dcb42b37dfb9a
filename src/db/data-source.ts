import 'reflect-metadata';
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
    extra: { max: options.poolSize, connectionTimeoutMillis: 5_000, statement_timeout: options.statementTimeoutMs },
    // Idle pooled connections die with the server; the pool replaces them, so this is not fatal.
    poolErrorHandler: () => undefined,
  });
}
