import type { Clock } from './clock';
import type { Config } from './config';
import { BackupSchedule } from './backup/backup-schedule';
import { installKeyring } from './crypto/active-keyring';
import { KeyService, encryptedColumns } from './crypto/key.service';
import { loadKeyring } from './crypto/load-keyring';
import { Database, MigrationsPendingError, openDatabase } from './db/database';
import { transportWarning } from './http/tls';
import { unruledFields } from './shield/coverage';
import { mergeRuleTrees } from './shield/shield';
import { FEATURES, Feature } from './features';
import type { ExecutorComparisonHook } from './graphql/executor';
import { buildGraphQLSchema } from './schema';
import type { Logger } from './logging';
import { BastionServer, createServer } from './server';
import { Services, createServices } from './services';

/** The coverage walk over these features' schema and rules (the self-audit's access_control.schema_coverage). */
export async function unruledFieldsOf(features: readonly Feature[]): Promise<string[]> {
  return unruledFields(await buildGraphQLSchema(features), mergeRuleTrees(features.map((feature) => feature.rules)));
}

export interface RunningBastion {
  readonly url: string;
  readonly server: BastionServer;
  readonly database: Database;
  readonly services: Services;
  /** Graceful: stop accepting, finish in-flight requests, close the pool, stop the embedded server. */
  stop(): Promise<void>;
}

/** config → keyring → database (embedded when DATABASE_URL is unset) → migrations → key check → listen. */
export async function startBastion(
  config: Config,
  deps: { logger: Logger; clock: Clock; extraFeatures?: readonly Feature[]; executorComparison?: ExecutorComparisonHook },
): Promise<RunningBastion> {
  const { logger, clock } = deps;
  const keyring = loadKeyring(config, logger);
  installKeyring(keyring);
  const warning = transportWarning(config);
  if (warning) logger.warn(warning);

  const features = [...FEATURES, ...(deps.extraFeatures ?? [])];
  const database = await openDatabase(config, logger, {
    migrate: config.migrateOnStart,
    extraEntities: features.flatMap((feature) => feature.entities ?? []),
  });
  let server: BastionServer;
  let services: Services | undefined;
  let url: string;
  try {
    if (await database.dataSource.showMigrations()) throw new MigrationsPendingError();
    encryptedColumns(database.dataSource); // fails fast on an encrypted column whose AAD domain is not its table.column
    await new KeyService(database.dataSource, keyring, clock).assertKeyringCoversData();
    services = await createServices({
      config,
      dataSource: database.dataSource,
      databaseUrl: database.url,
      logger,
      clock,
      keyring,
      models: features.flatMap((feature) => feature.models ?? []),
      unruledFields: () => unruledFieldsOf(features),
    });
    server = await createServer({ services, extraFeatures: deps.extraFeatures, executorComparison: deps.executorComparison });
    url = await server.listen();
  } catch (error) {
    await services?.stop().catch(() => undefined);
    await database.close().catch(() => undefined);
    throw error;
  }
  const running = services;
  // The scheduled self-audit belongs to servers (not to CLI commands that share the services).
  const stopSelfAudit = config.auditSchedule ? running.selfAudit.schedule(config.auditSchedule) : () => undefined;
  const stopBackups = new BackupSchedule(running.backups, clock, logger).start(config.backupSchedule, config.backupVerifySchedule);
  let stopping: Promise<void> | undefined;
  return {
    url,
    server,
    database,
    services: running,
    stop: () => {
      stopping ??= (async () => {
        try {
          await server.close();
          logger.debug('http server closed');
        } finally {
          stopSelfAudit();
          stopBackups();
          await running.stop();
          await database.close();
          logger.debug('database closed');
        }
      })();
      return stopping;
    },
  };
}
