import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createDataSource } from '../../src/db/data-source';
import { dropDatabase, runMigrations } from '../../src/db/database';
import { EmbeddedPostgres } from '../../src/db/embedded-postgres';
import { createLogger } from '../../src/logging';
import { PROJECT_ROOT } from '../../src/project';
import { databaseUrl, withAdminClient } from './test-database';

declare global {
  // Shared between global setup and teardown, which run in the same jest process.
  var bastionTestServer: { embedded?: EmbeddedPostgres; adminUrl: string; template: string; scratchDir?: string } | undefined;
}

/**
 * Prepares the PostgreSQL server for the whole run: TEST_DATABASE_URL or DATABASE_URL when set,
 * else a throwaway embedded cluster in .bastion/test. Migrates one template database there.
 */
export default async function globalSetup(): Promise<void> {
  const logger = createLogger({ level: 'warn', pretty: false });
  const externalUrl = process.env.TEST_DATABASE_URL || process.env.DATABASE_URL;
  let embedded: EmbeddedPostgres | undefined;
  let scratchDir: string | undefined;
  let adminUrl: string;
  if (externalUrl) {
    adminUrl = externalUrl;
  } else {
    embedded = await EmbeddedPostgres.start({ dataDir: path.join(PROJECT_ROOT, '.bastion', 'test'), logger, disposable: true });
    if (!embedded.ownedByUs) {
      // Another jest run owns that cluster and stops it when it ends: detach, use a throwaway one.
      await embedded.stop();
      scratchDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-test-'));
      fs.chmodSync(scratchDir, 0o711); // as root, the postgres account must reach the cluster inside
      embedded = await EmbeddedPostgres.start({ dataDir: scratchDir, logger, disposable: true });
    }
    adminUrl = embedded.urlFor('postgres');
  }

  const template = `bastion_template_${process.pid}`;
  await withAdminClient(adminUrl, async (client) => {
    if (embedded) {
      // Databases a crashed earlier run left behind on our own throwaway cluster.
      const { rows } = await client.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'bastion\\_t%'");
      for (const { datname } of rows) await dropDatabase(client, datname);
    }
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(template)}`);
  });
  // Migrations only: no entities needed.
  const dataSource = createDataSource({ url: databaseUrl(adminUrl, template), poolSize: 1, entities: [] });
  await dataSource.initialize();
  try {
    await runMigrations(dataSource, logger);
  } finally {
    await dataSource.destroy();
  }

  process.env.BASTION_TEST_ADMIN_URL = adminUrl;
  process.env.BASTION_TEST_TEMPLATE = template;
  globalThis.bastionTestServer = { embedded, adminUrl, template, scratchDir };
}
