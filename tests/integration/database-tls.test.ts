import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generate } from 'selfsigned';
import { Client } from 'pg';
import { DatabaseUnavailableError, openDatabase } from '../../src/db/database';
import { createLogger } from '../../src/logging';
import { CHECKS, CheckContext } from '../../src/self-audit/checks';
import { configWith } from '../../src/settings';
import { TestDatabase, createTestDatabase } from '../support/test-database';
import { TEST_KEY_SETTINGS } from '../support/test-keys';

/**
 * The test PostgreSQL speaks no TLS, so this proves the refusing half against a real server: with
 * a CA file, Bastion asks for TLS and stops when it is not offered, never falling back to
 * plaintext. (The accepting half is pg's and Node's verify-full, configured as the unit test shows.)
 */
describe('TLS to PostgreSQL against a real server', () => {
  let database: TestDatabase;
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-db-tls-'));
  const caFile = path.join(folder, 'ca.pem');

  beforeAll(async () => {
    database = await createTestDatabase();
    const { cert } = await generate([{ name: 'commonName', value: 'bastion test CA' }], { keySize: 2048 });
    fs.writeFileSync(caFile, cert);
  });
  afterAll(async () => {
    await database.drop();
    fs.rmSync(folder, { recursive: true, force: true });
  });

  it('with BASTION_DATABASE_CA_FILE, a server without TLS is refused, for the pool and for connections of their own', async () => {
    const loaded = configWith({ ...TEST_KEY_SETTINGS }, { NODE_ENV: 'test', DATABASE_URL: database.url, BASTION_DATABASE_CA_FILE: caFile });
    const logger = createLogger({ level: 'silent', pretty: false });
    const attempt = openDatabase(loaded, logger, { migrate: false, tables: { entities: [] } });
    await expect(attempt).rejects.toThrow(DatabaseUnavailableError);
    await expect(attempt).rejects.toThrow(/does not support SSL/);
    // LISTEN, backups and verification connect from the same URL with pg's Client.
    const client = new Client({ connectionString: loaded.databaseUrl });
    await expect(client.connect()).rejects.toThrow(/does not support SSL/);
    // Without the CA file the same server is served (loopback is exempt from the production rule).
    const plain = await openDatabase(configWith({ ...TEST_KEY_SETTINGS, databaseUrl: database.url }), logger, {
      migrate: false,
      tables: { entities: [] },
    });
    await plain.close();
  });

  it('self-audit: encryption.database_transport passes loopback and verify-full, fails remote plaintext in production', async () => {
    const check = CHECKS.find((candidate) => candidate.id === 'encryption.database_transport')!;
    const run = (databaseUrl: string | undefined, nodeEnv: 'test' | 'production' = 'test') =>
      check.run({ config: configWith({ ...TEST_KEY_SETTINGS, databaseUrl, nodeEnv }) } as CheckContext);
    expect(await run(undefined)).toMatchObject({ status: 'PASS' });
    expect(await run(database.url)).toMatchObject({ status: 'PASS' });
    expect(await run('postgres://app@db.internal/bastion?sslmode=verify-full')).toMatchObject({ status: 'PASS' });
    expect(await run('postgres://app@db.internal/bastion?sslmode=require')).toMatchObject({ status: 'WARN' });
    const finding = await run('postgres://app:pw@db.internal/bastion', 'production');
    expect(finding).toMatchObject({ status: 'FAIL', detail: expect.stringContaining('reaches db.internal without TLS') });
    expect(finding.remedy).toContain('BASTION_DATABASE_CA_FILE');
    expect(JSON.stringify(finding)).not.toContain('pw');
  });
});
