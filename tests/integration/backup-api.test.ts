import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { scratchPrefix } from '../../src/backup/verify';
import { BackupSchedule } from '../../src/backup/backup-schedule';
import { BackupStatus } from '../../src/backup/backup.entity';
import { BackupOptions, BackupService } from '../../src/backup/backup.service';
import { restoreArchive } from '../../src/backup/restore';
import { Config } from '../../src/config';
import { configWith } from '../../src/settings';
import { KeyService } from '../../src/crypto/key.service';
import { createLogger } from '../../src/logging';
import { RunningBastion, startBastion } from '../../src/main';
import { CHECKS, CheckContext, CheckStatus } from '../../src/self-audit/checks';
import { TestAccount, codesOf, makeClient, makeUser } from '../support/factories';
import { TEST_KEY_SETTINGS, testKeyring } from '../support/test-keys';
import { TestServer, startTestServer } from '../support/test-server';

const ACTOR = { actorId: null, ipAddress: null, userAgent: 'test', requestId: null };
const FIELDS = 'id createdAt sizeBytes tables rows schemaVersion status verifiedAt verification error keyId';
type ApiBackup = {
  id: string;
  status: string;
  sizeBytes: number;
  tables: number;
  rows: number;
  verifiedAt: string | null;
  verification: string | null;
  error: string | null;
  keyId: string;
};

/** A promise and the function that settles it: a test holds a backup at a table until it lets go. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

describe('backups through the admin API', () => {
  let server: TestServer;
  let admin: TestAccount;

  beforeAll(async () => {
    server = await startTestServer();
    admin = await makeUser(server, { roles: ['admin'], mfa: true });
    const author = await makeUser(server);
    await server.bastion.database.dataSource.query(
      "INSERT INTO posts (author_id, title) SELECT $1, 'post ' || n FROM generate_series(1, 200) AS n",
      [author.id],
    );
  });
  afterAll(() => server?.close());

  const service = () => server.bastion.services.backups;
  const auditActions = async (targetId: string) =>
    (
      await server.bastion.database.dataSource.query<{ action: string }[]>(
        'SELECT action FROM audit_events WHERE target_id = $1 ORDER BY id',
        [targetId],
      )
    ).map((row) => row.action);

  it('creates, lists and verifies a backup for an admin on an aal2 session, and audits each step', async () => {
    const created = await admin.client.request<{ createBackup: ApiBackup }>(`mutation { createBackup { ${FIELDS} } }`);
    expect(created.body.errors).toBeUndefined();
    const backup = created.body.data!.createBackup;
    expect(backup).toMatchObject({ status: 'COMPLETE', keyId: 'k1', verifiedAt: null, error: null });
    expect(backup.rows).toBeGreaterThan(200);
    expect(backup.sizeBytes).toBe(
      fs.statSync(
        path.join(
          service().options.dir,
          fs.readdirSync(service().options.dir).find((name) => name.includes(backup.id))!,
        ),
      ).size,
    );

    const listed = await admin.client.request<{ backups: ApiBackup[] }>(`{ backups { ${FIELDS} } }`);
    expect(listed.body.data!.backups.map((entry) => entry.id)).toContain(backup.id);

    const verified = await admin.client.request<{ verifyBackup: ApiBackup }>(`mutation($id: ID!) { verifyBackup(id: $id) { ${FIELDS} } }`, {
      id: backup.id,
    });
    expect(verified.body.data!.verifyBackup).toMatchObject({
      status: 'VERIFIED',
      verifiedAt: server.clock.now().toISOString(),
      verification: expect.stringMatching(/^restored \d+ tables and \d+ rows .* match the manifest$/),
    });
    expect(await auditActions(backup.id)).toEqual(['backup_created', 'backup_verified']);
    // This database's scratch database is gone (other suites' verifications may run meanwhile, with names of their own).
    const [{ scratch }] = await server.bastion.database.dataSource.query(
      'SELECT count(*)::int AS scratch FROM pg_database WHERE starts_with(datname, $1)',
      [scratchPrefix(server.database.url)],
    );
    expect(scratch).toBe(0);
  });

  it('refuses everyone else: MFA_REQUIRED for an admin on aal1, FORBIDDEN for a user, UNAUTHENTICATED anonymously', async () => {
    const aal1 = await makeUser(server, { roles: ['admin'] });
    const user = await makeUser(server);
    for (const operation of [
      '{ backups { id } }',
      'mutation { createBackup { id } }',
      `mutation { verifyBackup(id: "${admin.id}") { id } }`,
    ]) {
      expect(codesOf(await aal1.client.request(operation))).toEqual(['MFA_REQUIRED']);
      expect(codesOf(await user.client.request(operation))).toEqual(['FORBIDDEN']);
      expect(codesOf(await makeClient(server).request(operation))).toEqual(['UNAUTHENTICATED']);
    }
  });

  it('answers NOT_FOUND for an unknown id, and CONFLICT while another backup is being written', async () => {
    expect(codesOf(await admin.client.request('mutation { verifyBackup(id: "00000000-0000-4000-8000-000000000000") { id } }'))).toEqual([
      'NOT_FOUND',
    ]);
    expect(codesOf(await admin.client.request('mutation { verifyBackup(id: "not-an-id") { id } }'))).toEqual(['NOT_FOUND']);
    const held = gate();
    const running = await service().startCreate(ACTOR, 'cli', {
      beforeTable: (table) => (table === 'posts' ? held.wait : Promise.resolve()),
    });
    try {
      const second = await admin.client.request<{ createBackup: ApiBackup }>('mutation { createBackup { id } }');
      expect(codesOf(second)).toEqual(['CONFLICT']);
      expect(second.body.errors![0].message).toMatch(/another backup is being created/i);
    } finally {
      held.open();
    }
    expect((await running.done).status).toBe(BackupStatus.COMPLETE);
  });

  it('records VERIFY_FAILED naming what differed: a replaced file, a damaged archive, a missing file', async () => {
    const backup = await service().create(ACTOR, 'cli');
    const file = service().fileOf(backup);
    const original = fs.readFileSync(file);
    const damaged = Buffer.from(original);
    damaged[Math.floor(damaged.length / 2)] ^= 0xff;
    fs.writeFileSync(file, damaged);
    const replaced = await service().verify(backup.id, ACTOR);
    expect(replaced).toMatchObject({
      status: BackupStatus.VERIFY_FAILED,
      verifiedAt: null,
      verification: expect.stringContaining('SHA-256 differs'),
    });

    // Damaged before its fingerprint was taken: the restore itself refuses it.
    const { createHash } = await import('node:crypto');
    await server.bastion.database.dataSource.query('UPDATE backups SET sha256 = $1 WHERE id = $2', [
      createHash('sha256').update(damaged).digest('hex'),
      backup.id,
    ]);
    const broken = await service().verify(backup.id, ACTOR);
    expect(broken.verification).toMatch(/^restoring failed: the archive is damaged or was modified: .*chunk .*does not authenticate/);

    fs.rmSync(file);
    expect((await service().verify(backup.id, ACTOR)).verification).toMatch(/^the archive file is missing/);
    expect(await auditActions(backup.id)).toEqual([
      'backup_created',
      'backup_verify_failed',
      'backup_verify_failed',
      'backup_verify_failed',
    ]);
  });

  it('records a verification that fails for any reason as VERIFY_FAILED: an archive whose rows break a foreign key', async () => {
    const dataSource = server.bastion.database.dataSource;
    // A dangling reference that only a superuser bypassing triggers could write: the archive holds it, no restore can load it.
    await dataSource.transaction(async (manager) => {
      await manager.query('SET LOCAL session_replication_role = replica');
      await manager.query("INSERT INTO user_roles (user_id, role_name) VALUES (gen_random_uuid(), 'user')");
    });
    try {
      const backup = await service().create(ACTOR, 'cli');
      const verified = await service().verify(backup.id, ACTOR);
      expect(verified).toMatchObject({
        status: BackupStatus.VERIFY_FAILED,
        verification: expect.stringMatching(
          /^verification could not finish: database error 23503: insert or update on table "user_roles" violates foreign key constraint/,
        ),
      });
      expect(await auditActions(backup.id)).toEqual(['backup_created', 'backup_verify_failed']);
    } finally {
      await dataSource.query('DELETE FROM user_roles WHERE user_id NOT IN (SELECT id FROM users)');
    }
  });

  it('stops an archive being written when the server shuts down, even mid-COPY of a large table: FAILED, no file, lock released', async () => {
    const dataSource = server.bastion.database.dataSource;
    const [{ id: author }] = await dataSource.query('SELECT author_id AS id FROM posts LIMIT 1');
    await dataSource.query(
      "INSERT INTO posts (author_id, title, body) SELECT $1, 'bulk ' || n, repeat('x', 300) FROM generate_series(1, 100000) AS n",
      [author],
    );
    const standalone = new BackupService(
      server.bastion.database.dataSource,
      server.database.url,
      testKeyring(),
      server.clock,
      server.bastion.services.audit,
      server.logger,
      service().options,
    );
    const copying = gate();
    let chunks = 0;
    const started = await standalone.startCreate(ACTOR, 'cli', {
      onProgress: ({ table }) => {
        if (table === 'posts' && (chunks += 1) === 3) copying.open();
      },
    });
    const outcome = started.done.then(
      () => 'completed',
      (error: Error) => error.message,
    );
    await copying.wait; // mid-COPY: the table is far from read
    await standalone.stop();
    expect(await outcome).toMatch(/interrupted/);
    expect((await standalone.get(started.backup.id))!).toMatchObject({
      status: BackupStatus.FAILED,
      error: expect.stringContaining('shutting down'),
    });
    expect(fs.readdirSync(service().options.dir).filter((name) => name.includes(started.backup.id))).toEqual([]);
    // The lock went with the connection: the next backup starts at once.
    expect((await service().create(ACTOR, 'cli')).status).toBe(BackupStatus.COMPLETE);
    await dataSource.query("DELETE FROM posts WHERE title LIKE 'bulk %'");
  });

  it('keeps a restore over this database from running while a backup of it is being written', async () => {
    const archive = await service().create(ACTOR, 'cli');
    const held = gate();
    const running = await service().startCreate(ACTOR, 'cli', {
      beforeTable: (table) => (table === 'posts' ? held.wait : Promise.resolve()),
    });
    try {
      await expect(
        restoreArchive({ file: service().fileOf(archive), keyring: testKeyring(), targetUrl: server.database.url, replace: true }),
      ).rejects.toMatchObject({ failure: 'IN_PROGRESS' });
    } finally {
      held.open();
    }
    expect((await running.done).status).toBe(BackupStatus.COMPLETE);
  });

  it('stops an archive being written when the server shuts down: FAILED, and no file left', async () => {
    const standalone = new BackupService(
      server.bastion.database.dataSource,
      server.database.url,
      testKeyring(),
      server.clock,
      server.bastion.services.audit,
      server.logger,
      service().options,
    );
    const held = gate();
    const started = await standalone.startCreate(ACTOR, 'cli', {
      beforeTable: (table) => (table === 'posts' ? held.wait : Promise.resolve()),
    });
    const outcome = started.done.then(
      () => 'completed',
      (error: Error) => error.message,
    );
    const stopping = standalone.stop();
    held.open();
    await stopping;
    expect(await outcome).toMatch(/interrupted/);
    expect((await standalone.get(started.backup.id))!).toMatchObject({
      status: BackupStatus.FAILED,
      error: expect.stringContaining('shutting down'),
    });
    expect(fs.readdirSync(service().options.dir).filter((name) => name.includes(started.backup.id))).toEqual([]);
  });
});

describe('scheduled backups, retention and the second copy', () => {
  let server: TestServer;
  let second: RunningBastion;
  let folders: string;

  beforeAll(async () => {
    server = await startTestServer();
    folders = fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-backup-api-'));
    // A second instance on the same database, with the same archive folder (shared storage).
    const config = configWith({
      databaseUrl: server.database.url,
      port: 0,
      host: '127.0.0.1',
      migrateOnStart: false,
      databasePoolSize: 4,
      backupDir: server.config.backupDir,
      backupSchedule: undefined,
      backupVerifySchedule: undefined,
      ...TEST_KEY_SETTINGS,
    });
    second = await startBastion(config, { logger: createLogger({ level: 'silent', pretty: false }), clock: server.clock });
  });
  afterAll(async () => {
    await second?.stop();
    await server?.close();
    fs.rmSync(folders, { recursive: true, force: true });
  });

  const scheduled = async () =>
    (await server.bastion.database.dataSource.query("SELECT count(*)::int AS n FROM backups WHERE trigger = 'schedule'"))[0].n as number;

  it("takes one backup when two instances' timers fire together, then none until the next slot", async () => {
    const one = new BackupSchedule(server.bastion.services.backups, server.clock, server.logger);
    const two = new BackupSchedule(second.services.backups, server.clock, server.logger);
    const ran = await Promise.all([one.backupNow(), two.backupNow()]);
    expect(ran.filter(Boolean)).toHaveLength(1);
    expect(await scheduled()).toBe(1);
    expect(await two.backupNow()).toBe(false); // moments later, on the other instance
    server.clock.advance(11 * 60 * 1000);
    expect(await two.backupNow()).toBe(true);
    expect(await scheduled()).toBe(2);

    const verifications = await Promise.all([one.verifyNow(), two.verifyNow()]);
    expect(verifications.filter(Boolean)).toHaveLength(1);
    const [newest] = await server.bastion.services.backups.list();
    expect(newest).toMatchObject({ status: BackupStatus.VERIFIED, trigger: 'schedule' });
    expect(await one.verifyNow()).toBe(false);
  });

  it('prunes beyond BACKUP_KEEP and BACKUP_MAX_AGE_DAYS, files and copies too, keeping the newest verified archive', async () => {
    const dir = path.join(folders, 'retention');
    const copyDir = path.join(folders, 'retention-copy');
    const options: BackupOptions = { dir, copyDir, keyId: 'k2', keep: 2, maxAgeDays: undefined };
    const backups = new BackupService(
      server.bastion.database.dataSource,
      server.database.url,
      testKeyring(),
      server.clock,
      server.bastion.services.audit,
      server.logger,
      options,
    );
    await server.bastion.database.dataSource.query('DELETE FROM backups');
    const ids: string[] = [];
    for (let index = 0; index < 4; index += 1) {
      server.clock.advance(60 * 60 * 1000);
      const backup = await backups.create(ACTOR, 'cli');
      expect(backup).toMatchObject({ keyId: 'k2', copyError: null, copyPath: path.join(copyDir, backup.fileName) });
      expect(fs.readFileSync(backup.copyPath!)).toEqual(fs.readFileSync(backups.fileOf(backup)));
      ids.push(backup.id);
      if (index === 0) await backups.verify(backup.id, ACTOR);
    }
    const removed = await backups.prune(ACTOR);
    // Kept: the two newest, and the oldest because it is the only verified one.
    expect(removed.map((backup) => backup.id)).toEqual([ids[1]]);
    expect(fs.readdirSync(dir).sort()).toEqual((await backups.list()).map((backup) => backup.fileName).sort());
    expect(fs.readdirSync(copyDir)).toHaveLength(3);
    const [event] = await server.bastion.database.dataSource.query(
      "SELECT metadata FROM audit_events WHERE action = 'backups_pruned' ORDER BY id DESC LIMIT 1",
    );
    expect(event.metadata).toMatchObject({ removed: 1, ids: [ids[1]], keep: 2 });

    const aged = new BackupService(
      server.bastion.database.dataSource,
      server.database.url,
      testKeyring(),
      server.clock,
      server.bastion.services.audit,
      server.logger,
      { ...options, keep: 0, maxAgeDays: 1 },
    );
    server.clock.advance(3 * 24 * 60 * 60 * 1000);
    // Everything is older than a day; the newest archive and the newest verified one stay all the same.
    expect((await aged.prune(ACTOR)).map((backup) => backup.id)).toEqual([ids[2]]);
    expect((await aged.list()).map((backup) => backup.id).sort()).toEqual([ids[0], ids[3]].sort());
  });

  it('keeps the archive when the second copy fails, and says so: copyError, an audit event', async () => {
    const notAFolder = path.join(folders, 'a-file');
    fs.writeFileSync(notAFolder, 'not a folder');
    const backups = new BackupService(
      server.bastion.database.dataSource,
      server.database.url,
      testKeyring(),
      server.clock,
      server.bastion.services.audit,
      server.logger,
      { ...server.bastion.services.backups.options, copyDir: notAFolder },
    );
    const backup = await backups.create(ACTOR, 'cli');
    expect(backup).toMatchObject({ status: BackupStatus.COMPLETE, copyPath: null, copyError: expect.stringMatching(/^E[A-Z]+/) });
    expect(fs.existsSync(backups.fileOf(backup))).toBe(true);
    const [event] = await server.bastion.database.dataSource.query(
      "SELECT metadata FROM audit_events WHERE action = 'backup_copy_failed' AND target_id = $1",
      [backup.id],
    );
    expect(event.metadata.error).toBe(backup.copyError);
  });
});

describe('the backup checks of the self-audit', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.close());

  async function check(
    id: string,
    config: Partial<Config> = {},
    context: Partial<CheckContext> = {},
  ): Promise<{ status: CheckStatus; detail: string }> {
    const dataSource = server.bastion.database.dataSource;
    return CHECKS.find((candidate) => candidate.id === id)!.run({
      config: configWith({ ...TEST_KEY_SETTINGS, backupSchedule: '7 2 * * *', backupVerifySchedule: '47 2 * * *', ...config }),
      dataSource,
      clock: server.clock,
      keys: new KeyService(dataSource, testKeyring(), server.clock),
      keyring: testKeyring(),
      backups: { ...server.bastion.services.backups.options, keyId: 'k2' },
      developmentKeys: false,
      unruledFields: async () => [],
      ...context,
    });
  }
  const backups = () => server.bastion.services.backups;

  it('backups.schedule_configured: PASS with both schedules, WARN without verification, FAIL without backups', async () => {
    expect((await check('backups.schedule_configured')).status).toBe('PASS');
    expect((await check('backups.schedule_configured', { backupVerifySchedule: undefined })).status).toBe('WARN');
    expect((await check('backups.schedule_configured', { backupSchedule: undefined })).status).toBe('FAIL');
  });

  it('backups.last_backup and last_verified_restore: FAIL until they exist, PASS while recent, FAIL or WARN as they age or fail', async () => {
    expect(await check('backups.last_backup')).toMatchObject({ status: 'FAIL', detail: 'No backup has been made.' });
    expect((await check('backups.last_verified_restore')).status).toBe('FAIL');
    const backup = await backups().create(ACTOR, 'cli');
    expect((await check('backups.last_backup')).status).toBe('PASS');
    await backups().verify(backup.id, ACTOR);
    expect((await check('backups.last_verified_restore')).status).toBe('PASS');

    // A later attempt that failed: the good one is still recent, so WARN, naming the failure.
    await server.bastion.database.dataSource.query(
      'INSERT INTO backups (id, created_at, schema_version, status, key_id, file_name, host, trigger, error) ' +
        "VALUES (gen_random_uuid(), $1, '', 'failed', 'k1', 'x', 'h', 'schedule', 'ENOSPC on write')",
      [new Date(server.clock.now().getTime() + 1000)],
    );
    expect(await check('backups.last_backup')).toMatchObject({ status: 'WARN', detail: expect.stringContaining('ENOSPC on write') });

    server.clock.advance(26 * 60 * 60 * 1000);
    expect(await check('backups.last_backup')).toMatchObject({ status: 'FAIL', detail: expect.stringMatching(/26 hours old/) });
    server.clock.advance(7 * 24 * 60 * 60 * 1000);
    expect(await check('backups.last_verified_restore')).toMatchObject({ status: 'FAIL', detail: expect.stringMatching(/8 days ago/) });

    // A newer archive that failed verification fails the check at once.
    const fresh = await backups().create(ACTOR, 'cli');
    await backups().verify(fresh.id, ACTOR);
    expect((await check('backups.last_verified_restore')).status).toBe('PASS');
    server.clock.advance(60_000);
    const later = await backups().create(ACTOR, 'cli');
    fs.rmSync(backups().fileOf(later));
    await backups().verify(later.id, ACTOR);
    expect(await check('backups.last_verified_restore')).toMatchObject({ status: 'FAIL', detail: expect.stringContaining(later.id) });
  });

  it("backups.key: PASS with a key of its own, WARN on the column key, FAIL on development keys or when a kept archive's key is gone", async () => {
    expect((await check('backups.key')).status).toBe('PASS');
    expect((await check('backups.key', {}, { backups: { ...backups().options, keyId: 'k1' } })).status).toBe('WARN');
    expect((await check('backups.key', { nodeEnv: 'production' }, { developmentKeys: true })).status).toBe('FAIL');
    // The archives above are on k1; a keyring without it cannot restore them.
    expect(
      await check('backups.key', {}, { keyring: testKeyring('k2', ['k2']), backups: { ...backups().options, keyId: 'k2' } }),
    ).toMatchObject({ status: 'FAIL', detail: expect.stringContaining('k1') });
  });

  it('backups.copy_location: WARN with one location, PASS with a working copy, FAIL when the copy failed', async () => {
    expect((await check('backups.copy_location', {}, { backups: { ...backups().options, copyDir: undefined } })).status).toBe('WARN');
    const copyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-copy-check-'));
    try {
      const copying = new BackupService(
        server.bastion.database.dataSource,
        server.database.url,
        testKeyring(),
        server.clock,
        server.bastion.services.audit,
        server.logger,
        { ...backups().options, copyDir },
      );
      await copying.create(ACTOR, 'cli');
      expect((await check('backups.copy_location', {}, { backups: copying.options })).status).toBe('PASS');
      fs.rmSync(copyDir, { recursive: true });
      fs.writeFileSync(copyDir, 'now a file');
      server.clock.advance(60_000);
      await copying.create(ACTOR, 'cli');
      expect((await check('backups.copy_location', {}, { backups: copying.options })).status).toBe('FAIL');
    } finally {
      fs.rmSync(copyDir, { recursive: true, force: true });
    }
  });
});
