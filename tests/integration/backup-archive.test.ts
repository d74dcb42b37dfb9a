import { appTables } from '../support/test-tables';
import { MIGRATIONS } from '../../migrations';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { BackupError } from '../../src/backup/backup-errors';
import { Backup, BackupStatus } from '../../src/backup/backup.entity';
import { restoreArchive } from '../../src/backup/restore';
import { createDataSource } from '../../src/db/data-source';
import { BackupService } from '../../src/backup/backup.service';
import { Keyring } from '../../src/crypto/keyring';
import { ARCHIVE_MAGIC, DEFAULT_CHUNK_BYTES } from '../../src/backup/archive-crypto';
import { TAG_BYTES } from '../../src/crypto/aes-gcm';
import { TestAccount, confirmTotp, makeUser } from '../support/factories';
import { TestDatabase, createTestDatabase, withAdminClient } from '../support/test-database';
import { TEST_KEYS, testKeyring } from '../support/test-keys';
import { TestServer, startTestServer } from '../support/test-server';

const ACTOR = { actorId: null, ipAddress: null, userAgent: 'test', requestId: null };

/** Every row of every table, as text, in a stable order: what "every row equal" compares. */
async function contentsOf(url: string, options: { auditBelow?: string } = {}): Promise<Record<string, string[]>> {
  return withAdminClient(url, async (client) => {
    const { rows: tables } = await client.query<{ name: string }>(
      "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' AND tablename NOT IN ('backups', 'rate_limits') ORDER BY 1",
    );
    const contents: Record<string, string[]> = {};
    for (const { name } of tables) {
      const filter = name === 'audit_events' && options.auditBelow ? `WHERE id < ${Number(options.auditBelow)}` : '';
      const { rows } = await client.query<{ row: string }>(
        `SELECT t::text AS row FROM ${client.escapeIdentifier(name)} t ${filter} ORDER BY 1`,
      );
      contents[name] = rows.map((row) => row.row);
    }
    return contents;
  });
}

/** This release's migrations' names, newest first (an archive's schema version is a migration name). */
const NEWEST_FIRST = MIGRATIONS.map((migration) => new (migration as new () => { name: string })().name).reverse();
/** The migrations from the backups catalogue's on, newest first: undone, they leave a schema without it. */
const SINCE_BACKUPS = NEWEST_FIRST.slice(0, NEWEST_FIRST.findIndex((name) => name.startsWith('Backups')) + 1);

describe('backup archives', () => {
  let server: TestServer;
  let admin: TestAccount;
  let scratch: string;

  beforeAll(async () => {
    server = await startTestServer();
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-archive-test-'));
    // Every system table and the sample models get rows: accounts, MFA, roles, grants, firewall, audit, encrypted columns.
    admin = await makeUser(server, { roles: ['admin'] });
    await confirmTotp(server, admin);
    const writer = await makeUser(server);
    await writer.client.request(
      'mutation { createProfile(input: { displayName: "Ada", phone: "+447700900123", birthDate: "1815-12-10" }) { id } }',
    );
    const post = await writer.client.request<{ createPost: { id: string } }>(
      'mutation { createPost(input: { title: "Hello", body: "world", published: true }) { id } }',
    );
    await writer.client.request('mutation($postId: ID!) { createComment(input: { postId: $postId, body: "first" }) { id } }', {
      postId: post.body.data!.createPost.id,
    });
    await admin.client.request('mutation { createRole(input: { name: "editor", description: "Edits posts" }) { name } }');
    await admin.client.request('mutation { grantPermission(input: { role: "editor", model: "Post", action: UPDATE, scope: ALL }) { id } }');
    await admin.client.request('mutation { addFirewallRule(input: { cidr: "203.0.113.0/24", action: DENY, note: "test" }) { id } }');
    // Enough incompressible rows for an archive of several chunks.
    await server.bastion.database.dataSource.query(
      "INSERT INTO posts (author_id, title, body, published) SELECT $1, 'bulk ' || n, encode(gen_random_bytes(96), 'hex'), n % 2 = 0 " +
        'FROM generate_series(1, 4000) AS n',
      [writer.id],
    );
  });
  afterAll(async () => {
    await server?.close();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  const backups = () => server.bastion.services.backups;

  async function freshBackup(): Promise<{ backup: Backup; file: string }> {
    const backup = await backups().create(ACTOR, 'api');
    return { backup, file: backups().fileOf(backup) };
  }

  describe('round trip', () => {
    let restored: TestDatabase;
    afterAll(() => restored?.drop());

    it('restores every row of every table into a new database, encrypted columns still encrypted', async () => {
      const { backup, file } = await freshBackup();
      expect(backup).toMatchObject({ status: BackupStatus.COMPLETE, keyId: 'k1', schemaVersion: NEWEST_FIRST[0] });
      expect(backup.tables).toBeGreaterThanOrEqual(18);
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      expect(fs.readFileSync(file).subarray(0, 8)).toEqual(ARCHIVE_MAGIC);
      // The archive holds no plaintext: neither a phone number nor a post title.
      const bytes = fs.readFileSync(file);
      expect(bytes.includes(Buffer.from('+447700900123'))).toBe(false);
      expect(bytes.includes(Buffer.from('bulk 1'))).toBe(false);

      const [{ id: createdEvent }] = await server.bastion.database.dataSource.query(
        "SELECT id FROM audit_events WHERE action = 'backup_created' AND target_id = $1",
        [backup.id],
      );
      restored = await createTestDatabase({ migrated: false });
      const result = await restoreArchive({ file, keyring: testKeyring(), targetUrl: restored.url, replace: false });
      expect(result).toMatchObject({ tables: backup.tables, rows: backup.rows, schemaVersion: backup.schemaVersion });

      const original = await contentsOf(server.database.url, { auditBelow: createdEvent });
      const copy = await contentsOf(restored.url);
      expect(Object.keys(copy)).toEqual(Object.keys(original));
      for (const table of Object.keys(original)) expect({ table, rows: copy[table] }).toEqual({ table, rows: original[table] });
      const [profile] = await withAdminClient(restored.url, (client) =>
        client.query("SELECT phone FROM profiles WHERE display_name = 'Ada'"),
      ).then((result) => result.rows);
      expect(profile.phone).toMatch(/^v1\.k1\./);
      // Sequences continue after the restored rows: the next audit event gets the next id.
      const next = await withAdminClient(restored.url, (client) =>
        client.query("SELECT nextval(pg_get_serial_sequence('audit_events', 'id')) AS id, (SELECT max(id) FROM audit_events) AS max"),
      );
      expect(Number(next.rows[0].id)).toBe(Number(next.rows[0].max) + 1);
    });
  });

  describe('a damaged, wrong-key or newer archive is refused, and the target is untouched', () => {
    let target: TestDatabase;
    let archive: Buffer;
    let before: Record<string, string[]>;

    beforeAll(async () => {
      const { file } = await freshBackup();
      archive = fs.readFileSync(file);
      target = await createTestDatabase();
      await withAdminClient(target.url, (client) =>
        client.query("INSERT INTO firewall_rules (cidr, action, note) VALUES ('198.51.100.0/24', 'deny', 'must survive')"),
      );
      before = await contentsOf(target.url);
    });
    afterAll(() => target?.drop());

    async function refused(bytes: Buffer, keyring: Keyring = testKeyring()): Promise<BackupError> {
      const file = path.join(scratch, `tampered-${Math.random().toString(36).slice(2)}.bbak`);
      fs.writeFileSync(file, bytes);
      const error = await restoreArchive({ file, keyring, targetUrl: target.url, replace: true }).then(
        () => undefined,
        (failure: unknown) => failure,
      );
      expect(error).toBeInstanceOf(BackupError);
      expect(await contentsOf(target.url)).toEqual(before);
      return error as BackupError;
    }

    const headerLength = () => 8 + 2 + 2 + 32 + 7 + 4 + 16; // kid "k1"
    const sealedChunk = DEFAULT_CHUNK_BYTES + TAG_BYTES;

    it('holds several chunks (so reordering can be tried)', () => {
      expect(archive.length).toBeGreaterThan(headerLength() + 3 * sealedChunk);
    });

    it('refuses one flipped byte anywhere: header, first, middle and last chunk, last byte', async () => {
      const positions = [
        0,
        9,
        12,
        50,
        headerLength() - 1,
        headerLength(),
        headerLength() + 1000,
        headerLength() + sealedChunk + 7,
        Math.floor(archive.length / 2),
        archive.length - TAG_BYTES - 1,
        archive.length - 1,
      ];
      for (const position of positions) {
        const bytes = Buffer.from(archive);
        bytes[position] ^= 0x01;
        const error = await refused(bytes);
        expect({ position, failure: error.failure }).toEqual({
          position,
          failure: expect.stringMatching(/^(ARCHIVE_DAMAGED|NOT_AN_ARCHIVE|UNSUPPORTED_FORMAT|WRONG_KEY|UNKNOWN_KEY)$/),
        });
      }
    });

    it('refuses a truncated archive: mid-chunk, at a chunk boundary, or only its header', async () => {
      for (const length of [
        archive.length - 1,
        archive.length - 100,
        headerLength() + 2 * sealedChunk,
        headerLength() + 10,
        headerLength(),
      ]) {
        expect((await refused(archive.subarray(0, length))).failure).toBe('ARCHIVE_DAMAGED');
      }
    });

    it('refuses two swapped chunks, a dropped chunk and an appended one', async () => {
      const start = headerLength();
      const chunk = (index: number) => archive.subarray(start + index * sealedChunk, start + (index + 1) * sealedChunk);
      const swapped = Buffer.concat([archive.subarray(0, start), chunk(1), chunk(0), archive.subarray(start + 2 * sealedChunk)]);
      expect((await refused(swapped)).message).toMatch(/chunk 0 does not authenticate/);
      const dropped = Buffer.concat([archive.subarray(0, start), chunk(1), archive.subarray(start + 2 * sealedChunk)]);
      expect((await refused(dropped)).failure).toBe('ARCHIVE_DAMAGED');
      expect((await refused(Buffer.concat([archive, chunk(0)]))).failure).toBe('ARCHIVE_DAMAGED');
    });

    it('refuses a wrong key of the same name, and a key the keyring lacks, saying which', async () => {
      const impostor = new Keyring({ keys: new Map([['k1', Buffer.alloc(32, 7)]]), currentKid: 'k1', blindIndexKey: TEST_KEYS.blindIndex });
      const wrong = await refused(archive, impostor);
      expect(wrong).toMatchObject({ failure: 'WRONG_KEY', message: expect.stringContaining('"k1"') });
      const missing = await refused(archive, testKeyring('k2', ['k2']));
      expect(missing).toMatchObject({ failure: 'UNKNOWN_KEY', message: expect.stringContaining('"k1"') });
    });

    it("refuses, by id, a file that is another backup's archive renamed (catalogue SHA-256 and the archive's own id)", async () => {
      const { backup: older, file } = await freshBackup();
      const { backup: newer } = await freshBackup();
      const swapped = await restoreArchive({
        file,
        keyring: testKeyring(),
        targetUrl: target.url,
        replace: true,
        expect: { backupId: newer.id, sha256: newer.sha256 },
      }).catch((error: unknown) => error);
      expect(swapped).toMatchObject({ failure: 'ARCHIVE_DAMAGED', message: expect.stringContaining('SHA-256 differs') });
      const renamed = await restoreArchive({
        file,
        keyring: testKeyring(),
        targetUrl: target.url,
        replace: true,
        expect: { backupId: newer.id, sha256: null },
      }).catch((error: unknown) => error);
      expect(renamed).toMatchObject({ failure: 'ARCHIVE_DAMAGED', message: expect.stringContaining(`holds backup ${older.id}`) });
      expect(await contentsOf(target.url)).toEqual(before);
    });

    it('refuses an archive whose rows need a column key this keyring lacks, before commit', async () => {
      const dataSource = server.bastion.database.dataSource;
      await dataSource.query("INSERT INTO encryption_keys (kid, first_used_at) VALUES ('k9', now())");
      try {
        const { file } = await freshBackup();
        expect(await refused(fs.readFileSync(file))).toMatchObject({ failure: 'UNKNOWN_KEY', message: expect.stringContaining('k9') });
      } finally {
        await dataSource.query("DELETE FROM encryption_keys WHERE kid = 'k9'");
      }
    });

    it('refuses an archive from a newer schema, naming it', async () => {
      const source = await createTestDatabase();
      try {
        await withAdminClient(source.url, (client) =>
          client.query("INSERT INTO migrations (timestamp, name) VALUES (9999999999999, 'FromTheFuture9999999999999')"),
        );
        const future = await startTestServer({ config: {} });
        // A backup of that database, taken by a service pointed at it.
        const service = new BackupService(
          future.bastion.database.dataSource,
          source.url,
          testKeyring(),
          future.clock,
          future.bastion.services.audit,
          future.logger,
          { ...future.bastion.services.backups.options, dir: scratch },
        );
        try {
          const backup = await service.create(ACTOR, 'cli');
          const error = await refused(fs.readFileSync(service.fileOf(backup)));
          expect(error).toMatchObject({ failure: 'NEWER_SCHEMA', message: expect.stringContaining('FromTheFuture9999999999999') });
        } finally {
          await future.close();
        }
      } finally {
        await source.drop();
      }
    });
  });

  describe('an archive of an older schema', () => {
    it('restores at its own version: migrations up into an empty database, down over a newer one', async () => {
      const old = await createTestDatabase();
      const fresh = await createTestDatabase({ migrated: false });
      const current = await createTestDatabase();
      try {
        // A database from before the backups catalogue.
        const source = createDataSource({ url: old.url, poolSize: 1, ...appTables() });
        await source.initialize();
        for (const _name of SINCE_BACKUPS) await source.undoLastMigration();
        const [{ name: version }] = await source.query('SELECT name FROM migrations ORDER BY id DESC LIMIT 1');
        await source.query("INSERT INTO firewall_rules (cidr, action, note) VALUES ('192.0.2.0/24', 'deny', 'from the old schema')");
        await source.destroy();
        const service = new BackupService(
          server.bastion.database.dataSource,
          old.url,
          testKeyring(),
          server.clock,
          server.bastion.services.audit,
          server.logger,
          { ...backups().options, dir: scratch },
        );
        const backup = await service.create(ACTOR, 'cli');
        expect(backup.schemaVersion).toBe(version);

        const up = await restoreArchive({ file: service.fileOf(backup), keyring: testKeyring(), targetUrl: fresh.url, replace: false });
        expect(up.migrated).toHaveLength(up.migrated.filter((step) => step.startsWith('up ')).length);
        expect(up.migrated[up.migrated.length - 1]).toBe(`up ${version}`);
        const down = await restoreArchive({ file: service.fileOf(backup), keyring: testKeyring(), targetUrl: current.url, replace: true });
        expect(down.migrated).toEqual(SINCE_BACKUPS.map((name) => `down ${name}`));
        for (const url of [fresh.url, current.url]) {
          const state = await withAdminClient(url, (client) =>
            client.query(
              'SELECT (SELECT name FROM migrations ORDER BY id DESC LIMIT 1) AS version, ' +
                "(SELECT note FROM firewall_rules WHERE cidr = '192.0.2.0/24') AS note, " +
                "to_regclass('public.backups') IS NULL AS catalogue_gone",
            ),
          );
          expect(state.rows[0]).toEqual({ version, note: 'from the old schema', catalogue_gone: true });
        }
      } finally {
        await Promise.all([old.drop(), fresh.drop(), current.drop()]);
      }
    });
  });

  describe('consistency', () => {
    it('takes every table from one snapshot: rows committed during the backup are in none of the tables', async () => {
      const dataSource = server.bastion.database.dataSource;
      const [{ comments: commentsBefore }] = await dataSource.query('SELECT count(*)::int AS comments FROM comments');
      const writes = new Client({ connectionString: server.database.url });
      await writes.connect();
      let wrote = 0;
      try {
        const backup = await backups().create(ACTOR, 'api', {
          // Posts are already archived when comments start: a post and its comment, committed now, would break a non-snapshot copy.
          beforeTable: async (table) => {
            if (table !== 'comments') return;
            for (let index = 0; index < 5; index += 1) {
              await writes.query('BEGIN');
              const { rows } = await writes.query(
                "INSERT INTO posts (author_id, title) SELECT author_id, 'during backup' FROM posts LIMIT 1 RETURNING id, author_id",
              );
              await writes.query("INSERT INTO comments (post_id, author_id, body) VALUES ($1, $2, 'during backup')", [
                rows[0].id,
                rows[0].author_id,
              ]);
              await writes.query('COMMIT');
              wrote += 1;
            }
          },
        });
        expect(wrote).toBe(5);
        const inArchive = (table: string) => backup.manifest!.tables.find((entry) => entry.name === table)!.rows;
        expect(inArchive('comments')).toBe(commentsBefore);
        const restored = await createTestDatabase({ migrated: false });
        try {
          await restoreArchive({ file: backups().fileOf(backup), keyring: testKeyring(), targetUrl: restored.url, replace: false });
          const during = await withAdminClient(restored.url, (client) =>
            client.query(
              "SELECT (SELECT count(*) FROM posts WHERE title = 'during backup')::int AS posts, " +
                "(SELECT count(*) FROM comments WHERE body = 'during backup')::int AS comments",
            ),
          );
          expect(during.rows[0]).toEqual({ posts: 0, comments: 0 });
        } finally {
          await restored.drop();
        }
        const verified = await backups().verify(backup.id, ACTOR);
        expect(verified).toMatchObject({ status: BackupStatus.VERIFIED, verification: expect.stringContaining('match the manifest') });
      } finally {
        await writes.end();
      }
    });
  });
});
