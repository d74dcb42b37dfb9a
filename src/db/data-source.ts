import 'reflect-metadata';
import { DataSource, MixedList } from 'typeorm';
import { MIGRATIONS } from '../../migrations';
import { BlindIndexSubscriber } from '../crypto/blind-index.subscriber';
import { AfterCommitSubscriber } from './after-commit';
import { ENTITIES } from './entities';
import { SnakeNamingStrategy } from './naming-strategy';

export interface DataSourceOptions {
  readonly url: string;
  readonly poolSize: number;
  /** Extra entities (tests register throwaway models this way). */
  readonly extraEntities?: MixedList<Function>;
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
    entities: [...ENTITIES, ...((options.extraEntities as Function[] | undefined) ?? [])],
    migrations: MIGRATIONS,
    subscribers: [BlindIndexSubscriber, AfterCommitSubscriber],
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'each',
    namingStrategy: new SnakeNamingStrategy(),
    synchronize: false,
    migrationsRun: false,
    uuidExtension: 'pgcrypto',
    extra: { max: options.poolSize, connectionTimeoutMillis: 5_000 },
    // Idle pooled connections die with the server; the pool replaces them, so this is not fatal.
    poolErrorHandler: () => undefined,
  });
}
