import type { Clock } from './clock';
import type { Config } from './config';
import { Database, MigrationsPendingError, openDatabase } from './db/database';
import { Feature, Stop, tablesOf } from './feature';
import { featuresFor } from './features';
import type { ExecutorComparisonHook } from './graphql/executor';
import { transportWarning } from './http/tls';
import type { Logger } from './logging';
import type { PruneTask } from './maintenance';
import { BastionServer, createServer } from './server';
import { RunningServices, startServices } from './services';
import { Services } from './feature';

export interface RunningBastion {
  readonly url: string;
  readonly server: BastionServer;
  readonly database: Database;
  readonly services: Services;
  /** The housekeeping the maintenance job runs, by name. */
  readonly maintenanceTasks: Readonly<Record<string, PruneTask>>;
  /** The services as one feature's hooks see them. */
  readonly servicesFor: (feature: Feature) => Services;
  /** Graceful: stop accepting, finish in-flight requests, close the pool, stop the embedded server. */
  stop(): Promise<void>;
}

/**
 * config → each feature's boot (the keyring) → database (embedded when DATABASE_URL is unset) →
 * migrations → services and each feature's start (key checks, seeding) → listen → schedules.
 */
export async function startBastion(
  config: Config,
  deps: { logger: Logger; clock: Clock; extraFeatures?: readonly Feature[]; executorComparison?: ExecutorComparisonHook },
): Promise<RunningBastion> {
  const { logger, clock } = deps;
  const features = [...featuresFor(config), ...(deps.extraFeatures ?? [])];
  for (const feature of features) feature.boot?.(config, logger);
  const warning = transportWarning(config);
  if (warning) logger.warn(warning);

  const database = await openDatabase(config, logger, {
    migrate: config.migrateOnStart,
    tables: tablesOf(features),
    statementTimeoutMs: config.databaseStatementTimeoutMs,
  });
  let running: RunningServices | undefined;
  let server: BastionServer;
  let url: string;
  try {
    if (await database.dataSource.showMigrations()) throw new MigrationsPendingError();
    running = await startServices(
      { config, dataSource: database.dataSource, databaseUrl: database.url, logger, clock, features },
      features,
    );
    server = await createServer({ running, features, executorComparison: deps.executorComparison });
    url = await server.listen();
  } catch (error) {
    await running?.stop().catch(() => undefined);
    await database.close().catch(() => undefined);
    throw error;
  }
  const services = running;
  // Schedules belong to servers, not to CLI commands that build the same services.
  const schedules = features.flatMap((feature): Stop[] => (feature.schedule ? [feature.schedule(services.servicesFor(feature))] : []));
  let stopping: Promise<void> | undefined;
  return {
    url,
    server,
    database,
    services: services.services,
    maintenanceTasks: services.maintenanceTasks,
    servicesFor: services.servicesFor,
    stop: () => {
      stopping ??= (async () => {
        try {
          await server.close();
          logger.debug('http server closed');
        } finally {
          for (const stop of schedules) await stop();
          await services.stop();
          await database.close();
          logger.debug('database closed');
        }
      })();
      return stopping;
    },
  };
}
