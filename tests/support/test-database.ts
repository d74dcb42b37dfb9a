import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { databaseUrlFor, dropDatabase } from '../../src/db/database';

/**
 * Test databases. Global setup migrates one template database; every test file clones it
 * (CREATE DATABASE … TEMPLATE), so files run in parallel and never see each other's rows.
 */
export interface TestDatabaseServer {
  /** A superuser connection URL to the server's maintenance database. */
  readonly adminUrl: string;
  /** The migrated template every test database is cloned from. */
  readonly template: string;
}

export function testDatabaseServer(): TestDatabaseServer {
  const adminUrl = process.env.BASTION_TEST_ADMIN_URL;
  const template = process.env.BASTION_TEST_TEMPLATE;
  if (!adminUrl || !template) throw new Error('Test database server not prepared: run the tests through jest (global setup)');
  return { adminUrl, template };
}

/** A database on the test server (the same helper the backup code uses). */
export const databaseUrl = databaseUrlFor;

export async function withAdminClient<T>(adminUrl: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: adminUrl });
  // A server-side end (shutdown, a forced DROP DATABASE) is an 'error' event: unheard, it would crash the test process.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

/** A fresh database: a clone of the migrated template, or an empty one (`migrated: false`). */
export async function createTestDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const { adminUrl, template } = testDatabaseServer();
  const name = `bastion_test_${randomBytes(6).toString('hex')}`;
  await withAdminClient(adminUrl, async (client) => {
    const source = options.migrated === false ? 'template0' : template;
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)} TEMPLATE ${client.escapeIdentifier(source)}`);
  });
  return {
    name,
    url: databaseUrl(adminUrl, name),
    drop: () => withAdminClient(adminUrl, (client) => dropDatabase(client, name)),
  };
}
