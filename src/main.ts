import type { Clock } from './clock';
import type { Config } from './config';
import { openDatabase } from './db/database';
import type { Feature } from './features';
import type { Logger } from './logging';
import { BastionServer, createServer } from './server';

export interface RunningBastion {
  readonly url: string;
  readonly server: BastionServer;
  /** Graceful: stop accepting, finish in-flight requests, close the pool, stop the embedded server. */
  stop(): Promise<void>;
}

/** config → database (embedded when DATABASE_URL is unset) → migrations → listen. */
export async function startBastion(
  config: Config,
  deps: { logger: Logger; clock: Clock; extraFeatures?: readonly Feature[] },
): Promise<RunningBastion> {
  const { logger, clock } = deps;
  const database = await openDatabase(config, logger, { migrate: config.migrateOnStart });
  let server: BastionServer;
  let url: string;
  try {
    server = await createServer({ config, dataSource: database.dataSource, logger, clock, extraFeatures: deps.extraFeatures });
    url = await server.listen();
  } catch (error) {
    await database.close().catch(() => undefined);
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return {
    url,
    server,
    stop: () => {
      stopping ??= (async () => {
        try {
          await server.close();
          logger.debug('http server closed');
        } finally {
          await database.close();
          logger.debug('database closed');
        }
      })();
      return stopping;
    },
  };
}
