import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FrozenClock } from '../../src/clock';
import { Config } from '../../src/config';
import { configWith } from '../../src/settings';
import type { Feature } from '../../src/feature';
import type { ExecutorComparison } from '../../src/graphql/executor';
import { Logger, createLogger } from '../../src/logging';
import { RunningBastion, startBastion } from '../../src/main';
import { LogCollector } from './log-collector';
import { TestDatabase, createTestDatabase, withAdminClient } from './test-database';
import { TEST_KEY_SETTINGS } from './test-keys';

export interface TestServer {
  /** The GraphQL endpoint, e.g. http://localhost:54321/graphql */
  readonly url: string;
  /** The server root, for /healthz and friends. */
  readonly origin: string;
  readonly clock: FrozenClock;
  readonly logs: LogCollector;
  /** The server's logger (writes into `logs`). */
  readonly logger: Logger;
  readonly config: Config;
  readonly database: TestDatabase;
  readonly bastion: RunningBastion;
  /** With `compareExecutors`: every compiled query, answered by graphql-js as well (`same` tells). */
  readonly executorComparisons: ExecutorComparison[];
  /** Runs `work` without the second (graphql-js) execution, e.g. to count one request's SQL statements. */
  withoutComparing<T>(work: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface TestServerOptions {
  readonly config?: Partial<Config>;
  readonly extraFeatures?: readonly Feature[];
  /** Use an empty (unmigrated) database. */
  readonly migrated?: boolean;
  /** Statements run on the fresh database before the server starts (tables of test-only models). */
  readonly setupSql?: readonly string[];
  /** Run every compiled query on graphql-js too and collect the comparisons (`executorComparisons`). */
  readonly compareExecutors?: boolean;
}

/**
 * Boots the real server in-process on a random port, on a fresh database of its own, with a
 * frozen clock and a log collector. Call `close()` in afterAll.
 */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const database = await createTestDatabase({ migrated: options.migrated });
  if (options.setupSql?.length)
    await withAdminClient(database.url, async (client) => {
      for (const statement of options.setupSql!) await client.query(statement);
    });
  const clock = new FrozenClock('2026-03-01T12:00:00.000Z');
  const logs = new LogCollector();
  const logger = createLogger({ level: 'debug', pretty: false, destination: logs });
  // Rate limits off unless a test turns them on: the suite signs up hundreds of accounts from one address.
  // Archives go to a folder of this server's own; schedules are off (tests call the jobs directly).
  const backupDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-backups-'));
  const config = configWith({
    databaseUrl: database.url,
    port: 0,
    host: '127.0.0.1',
    migrateOnStart: false,
    databasePoolSize: 4,
    rateLimitsEnabled: false,
    backupDir,
    backupSchedule: undefined,
    backupVerifySchedule: undefined,
    ...TEST_KEY_SETTINGS,
    ...options.config,
  });
  let bastion: RunningBastion;
  const executorComparisons: ExecutorComparison[] = [];
  let comparing = true;
  try {
    const executorComparison = options.compareExecutors
      ? { active: () => comparing, report: (comparison: ExecutorComparison) => executorComparisons.push(comparison) }
      : undefined;
    bastion = await startBastion(config, { logger, clock, extraFeatures: options.extraFeatures, executorComparison });
  } catch (error) {
    await database.drop();
    fs.rmSync(backupDir, { recursive: true, force: true });
    throw error;
  }
  const origin = new URL(bastion.url).origin;
  return {
    url: bastion.url,
    origin,
    clock,
    logs,
    logger,
    config,
    database,
    bastion,
    executorComparisons,
    withoutComparing: async (work) => {
      comparing = false;
      try {
        return await work();
      } finally {
        comparing = true;
      }
    },
    close: async () => {
      await bastion.stop();
      await database.drop();
      fs.rmSync(backupDir, { recursive: true, force: true });
    },
  };
}

/**
 * The configuration of a second instance on a test server's database (scale-out tests): the
 * server's own test settings, no migrations (the first ran them), rate limits off unless given.
 */
export function secondInstanceConfig(server: Pick<TestServer, 'database'>, overrides: Partial<Config> = {}): Config {
  return configWith({
    databaseUrl: server.database.url,
    port: 0,
    host: '127.0.0.1',
    migrateOnStart: false,
    databasePoolSize: 4,
    rateLimitsEnabled: false,
    ...TEST_KEY_SETTINGS,
    ...overrides,
  });
}
