import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { verifyAuditChain } from '../../src/audit/audit-log';
import { FrozenClock } from '../../src/clock';
import { Config } from '../../src/config';
import { createDataSource } from '../../src/db/data-source';
import { createLogger } from '../../src/logging';
import { RunningBastion, startBastion } from '../../src/main';
import { runMaintenance } from '../../src/maintenance';
import { CHECKS, CheckContext } from '../../src/self-audit/checks';
import { configWith } from '../../src/settings';
import { KeyService } from '../../src/crypto/key.service';
import { makeUser } from '../support/factories';
import { LogCollector } from '../support/log-collector';
import { TestDatabase, createTestDatabase, testDatabaseServer, withAdminClient } from '../support/test-database';
import { TEST_KEY_SETTINGS, testKeyring } from '../support/test-keys';

/** The same database as another role. */
function urlAs(url: string, role: string, password: string): string {
  const parsed = new URL(url);
  parsed.username = role;
  parsed.password = password;
  return parsed.toString();
}

const PERMISSION_DENIED = { driverError: { code: '42501' } };

describe('least privilege in the database: migrations as the owner, the server as a plain role', () => {
  const suffix = randomBytes(4).toString('hex');
  const owner = { name: `bastion_owner_${suffix}`, password: randomBytes(12).toString('hex') };
  const runtime = { name: `bastion_app_${suffix}`, password: randomBytes(12).toString('hex') };
  const { adminUrl } = testDatabaseServer();
  let database: TestDatabase;
  let bastion: RunningBastion;
  let config: Config;
  // Events are written a year and a half before the database's clock, so retention has something old to prune.
  const clock = new FrozenClock('2025-01-01T12:00:00.000Z');
  const backupDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-roles-'));

  beforeAll(async () => {
    await withAdminClient(adminUrl, async (client) => {
      for (const role of [owner, runtime])
        await client.query(`CREATE ROLE ${client.escapeIdentifier(role.name)} LOGIN PASSWORD '${role.password}'`);
    });
    // An empty database the migration role owns (as a managed PostgreSQL hands one out).
    database = await createTestDatabase({ migrated: false });
    await withAdminClient(adminUrl, (client) =>
      client.query(`ALTER DATABASE ${client.escapeIdentifier(database.name)} OWNER TO ${client.escapeIdentifier(owner.name)}`),
    );
    config = configWith({
      ...TEST_KEY_SETTINGS,
      databaseUrl: urlAs(database.url, runtime.name, runtime.password),
      migrationDatabaseUrl: urlAs(database.url, owner.name, owner.password),
      migrateOnStart: true,
      port: 0,
      host: '127.0.0.1',
      databasePoolSize: 2,
      rateLimitsEnabled: false,
      backupDir,
      backupSchedule: undefined,
      backupVerifySchedule: undefined,
    });
    bastion = await startBastion(config, {
      logger: createLogger({ level: 'warn', pretty: false, destination: new LogCollector() }),
      clock,
    });
  });

  afterAll(async () => {
    await bastion?.stop();
    await database?.drop();
    await withAdminClient(adminUrl, async (client) => {
      for (const role of [owner, runtime]) await client.query(`DROP ROLE IF EXISTS ${client.escapeIdentifier(role.name)}`);
    });
    fs.rmSync(backupDir, { recursive: true, force: true });
  });

  const server = () => ({ url: bastion.url, bastion, clock });

  it('migrates as the owner: the server role owns no table and is no superuser', async () => {
    const [row] = await bastion.database.dataSource.query<{ user: string; owned: number; tables: number }[]>(
      `SELECT current_user AS user,
              (SELECT count(*)::int FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user) AS owned,
              (SELECT count(*)::int FROM pg_tables WHERE schemaname = 'public' AND tableowner = $1) AS tables`,
      [owner.name],
    );
    expect(row).toEqual({ user: runtime.name, owned: 0, tables: expect.any(Number) });
    expect(row.tables).toBeGreaterThan(10);
  });

  it('lets the server role append to the audit log and read it, but never UPDATE, DELETE or TRUNCATE it', async () => {
    const account = await makeUser(server());
    const db = bastion.database.dataSource;
    const [{ events }] = await db.query<{ events: number }[]>('SELECT count(*)::int AS events FROM audit_events WHERE actor_id = $1', [
      account.id,
    ]);
    expect(events).toBeGreaterThan(0);
    await expect(db.query("UPDATE audit_events SET action = 'sign_in_failed' WHERE actor_id = $1", [account.id])).rejects.toMatchObject(
      PERMISSION_DENIED,
    );
    await expect(db.query('DELETE FROM audit_events WHERE actor_id = $1', [account.id])).rejects.toMatchObject(PERMISSION_DENIED);
    await expect(db.query('TRUNCATE audit_events')).rejects.toMatchObject(PERMISSION_DENIED);
    // Nor may it record a migration, or change the schema.
    await expect(db.query("INSERT INTO migrations (timestamp, name) VALUES (1, 'Forged1')")).rejects.toMatchObject(PERMISSION_DENIED);
    await expect(db.query('ALTER TABLE audit_events DROP COLUMN hash')).rejects.toMatchObject({ driverError: { code: '42501' } });
    // The rest of the app works as the plain role: sessions, refresh, reads.
    expect((await account.client.request<{ me: { id: string } }>('{ me { id } }')).body.data?.me.id).toBe(account.id);
  });

  it('prunes old events through the owner function, keeps the chain verifiable, and refuses to prune recent ones', async () => {
    const db = bastion.database.dataSource;
    await makeUser(server());
    // Two years later by the app's clock: every event so far is past the 365-day retention.
    clock.set('2026-06-01T12:00:00.000Z');
    const result = await runMaintenance(db, bastion.maintenanceTasks, createLogger({ level: 'silent', pretty: false }));
    expect(result?.auditRetention).toBeGreaterThan(0);
    expect(await verifyAuditChain(db.manager, testKeyring())).toMatchObject({ ok: true, firstBrokenId: null });
    // The function is the only way to delete, and it will not touch the last day by the database's clock.
    await expect(db.query("SELECT bastion_prune_audit_events(9223372036854775807, now() - interval '1 hour')")).rejects.toMatchObject(
      PERMISSION_DENIED,
    );
    // An event of today by the database's clock may not go, whatever cutoff the caller claims.
    clock.set(new Date().toISOString());
    await makeUser(server());
    const [{ latest }] = await db.query<{ latest: string }[]>('SELECT max(id)::text AS latest FROM audit_events');
    await expect(db.query(`SELECT bastion_prune_audit_events($1, now() - interval '2 days')`, [latest])).rejects.toMatchObject(
      PERMISSION_DENIED,
    );
    // Only the runtime role was granted it: no other role may call it.
    await withAdminClient(database.url, async (client) => {
      const { rows } = await client.query<{ everyone: boolean; server: boolean }>(
        `SELECT has_function_privilege('public', 'bastion_prune_audit_events(bigint, timestamptz)', 'EXECUTE') AS everyone,
                has_function_privilege($1, 'bastion_prune_audit_events(bigint, timestamptz)', 'EXECUTE') AS server`,
        [runtime.name],
      );
      expect(rows).toEqual([{ everyone: false, server: true }]);
    });
  });

  it('self-audit: PASS for the plain role, WARN for a role that owns the tables', async () => {
    const check = CHECKS.find((candidate) => candidate.id === 'access_control.database_role')!;
    const contextFor = (dataSource: CheckContext['dataSource']): CheckContext => ({
      config,
      dataSource,
      clock,
      keys: new KeyService(dataSource, testKeyring(), clock),
      keyring: testKeyring(),
      backups: bastion.services.backups.options,
      developmentKeys: false,
      unruledFields: async () => [],
    });
    expect(await check.run(contextFor(bastion.database.dataSource))).toMatchObject({ status: 'PASS' });
    const asOwner = createDataSource({ url: config.migrationDatabaseUrl!, poolSize: 1, entities: [] });
    await asOwner.initialize();
    try {
      const finding = await check.run(contextFor(asOwner));
      expect(finding).toMatchObject({ status: 'WARN', remedy: expect.stringContaining('BASTION_MIGRATION_DATABASE_URL') });
      expect(finding.detail).toMatch(/owns \d+ of the tables/);
      expect(finding.detail).toContain('may UPDATE or DELETE audit events');
    } finally {
      await asOwner.destroy();
    }
  });
});
