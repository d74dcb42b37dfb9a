import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Client } from 'pg';
import { Config } from '../../src/config';
import { configWith } from '../../src/settings';
import { dropDatabase } from '../../src/db/database';
import { EmbeddedPostgres } from '../../src/db/embedded-postgres';
import type { Logger } from '../../src/logging';
import type { RunningBastion } from '../../src/main';
import { PROJECT_ROOT } from '../../src/project';

const BENCH_DATABASE = 'bastion_bench';
/** Sign-ins run beside the load in the main bench; their connections are counted in the pool too. */
export const SIGN_IN_CONCURRENCY = 4;

/** Cleanup steps, undone last-in first-out, so a failure halfway still stops what did start. */
export class Teardown {
  private readonly steps: (() => Promise<void>)[] = [];

  add(step: () => Promise<void>): void {
    this.steps.push(step);
  }

  /** Runs every step even when one fails; resolves to false if any did. */
  async run(): Promise<boolean> {
    let clean = true;
    for (const step of this.steps.reverse()) {
      try {
        await step();
      } catch (error) {
        clean = false;
        process.stderr.write(`bench: cleanup failed: ${error instanceof Error ? error.message : String(error)}\n`);
      }
    }
    return clean;
  }
}

export function positiveInteger(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a whole number above 0 (got ${JSON.stringify(raw)})`);
  return value;
}

/** DATABASE_URL when set; else the embedded server, with a fresh bench database (numbers from a table grown by earlier runs would not compare). */
export async function benchDatabaseUrl(logger: Logger, teardown: Teardown): Promise<string> {
  const external = process.env.DATABASE_URL;
  if (external) return external;
  const embedded = await EmbeddedPostgres.start({ dataDir: path.join(PROJECT_ROOT, '.bastion', 'bench'), logger, disposable: true });
  teardown.add(() => embedded.stop());
  const admin = new Client({ connectionString: embedded.urlFor('postgres') });
  await admin.connect();
  try {
    await dropDatabase(admin, BENCH_DATABASE);
  } finally {
    await admin.end();
  }
  await embedded.ensureDatabase(BENCH_DATABASE);
  return embedded.urlFor(BENCH_DATABASE);
}

/**
 * PostgreSQL connections for Bastion and for the floor alike: one per load connection (plus the
 * sign-in loop's), so neither side's numbers are queueing for the pool. Both pools together stay
 * well under the embedded server's max_connections (200).
 */
export function benchPoolSize(connections: number): number {
  return Math.min(Math.max(10, connections + SIGN_IN_CONCURRENCY), 90);
}

/** The settings every bench Bastion shares; `overrides` add the section's own. */
export function benchConfigFor(databaseUrl: string, poolSize: number): (overrides: Partial<Config>) => Config {
  return (overrides) =>
    configWith({
      databaseUrl,
      databasePoolSize: poolSize,
      // The bench's own data folder: development keys are generated there, not in the project's.
      dataDir: path.join(PROJECT_ROOT, '.bastion', 'bench'),
      port: 0,
      host: '127.0.0.1',
      logLevel: 'silent',
      migrateOnStart: true,
      sandbox: false,
      ...overrides,
    });
}

/** bastion.url says "localhost", which may resolve to ::1 while the server listens on 127.0.0.1 only. */
export function loopbackOrigin(bastion: RunningBastion): string {
  return `http://127.0.0.1:${(bastion.server.httpServer.address() as AddressInfo).port}`;
}

/**
 * Runs `work` on a connection of its own to `url`, closed afterwards: without the server pool's
 * statement timeout (bulk loads, large deletes, CREATE/DROP DATABASE), named in pg_stat_activity.
 */
export async function withClient<T>(url: string, applicationName: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, application_name: applicationName });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
