import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Client } from 'pg';
import { ArchiveWriter, readArchive } from '../../src/backup/archive-file';
import { BackupError } from '../../src/backup/backup-errors';
import { Backup, BackupStatus } from '../../src/backup/backup.entity';
import { storingSink } from '../../src/backup/file-chunks';
import { restoreArchive } from '../../src/backup/restore';
import { verifyArchive } from '../../src/backup/verify';
import { S3ChunkStore, s3ClientConfig } from '../../src/files/s3-chunk-store';
import { S3StorageTarget, parseStorageUrl } from '../../src/files/storage-url';
import { RunningBastion, startBastion } from '../../src/main';
import { TestAccount, makeUser } from '../support/factories';
import { pdfOf, photoWithGps, pngImage, servedDigests, uploadFile } from '../support/files';
import { TestS3Server, keysUnder, startS3Server } from '../support/s3-server';
import { TestDatabase, createTestDatabase } from '../support/test-database';
import { testKeyring } from '../support/test-keys';
import { TestServer, secondInstanceConfig, startTestServer } from '../support/test-server';

/**
 * Backups of stored files, both stores: the PostgreSQL store's chunks travel in the file_chunks
 * table, an S3 store's are read from the bucket into the archive (still sealed); a restore puts them
 * back into the restoring configuration's store, and a verification decrypts every content against
 * its recorded SHA-256. What a restored database serves is downloaded by signed URL and compared.
 */

const ACTOR = { actorId: null, ipAddress: null, userAgent: 'test', requestId: null };

/** Every file and variant a database holds, with the content behind it. */
interface Served {
  readonly fileId: string;
  readonly variant: string;
  readonly contentId: string;
  readonly sha256: string;
}

async function servedOf(bastion: RunningBastion): Promise<Served[]> {
  return bastion.database.dataSource.query<Served[]>(
    `SELECT f.id AS "fileId", 'ORIGINAL' AS variant, f.content_id AS "contentId", f.sha256 FROM files f
     UNION ALL SELECT v.file_id, v.variant, v.content_id, v.sha256 FROM file_variants v ORDER BY 1, 2`,
  );
}

/** A profile with an avatar (and its thumbnail), a post with two PDFs of several chunks and a PNG (and its two variants). */
async function uploadSampleFiles(account: TestAccount): Promise<void> {
  const profile = await account.client.request<{ createProfile: { id: string } }>(
    'mutation { createProfile(input: { displayName: "Ada" }) { id } }',
  );
  const post = await account.client.request<{ createPost: { id: string } }>(
    'mutation { createPost(input: { title: "Files", body: "b" }) { id } }',
  );
  const uploads = [
    await uploadFile(
      account.client,
      'startProfileAvatarUpload',
      profile.body.data!.createProfile.id,
      await photoWithGps(400, 300),
      'image/jpeg',
    ),
    await uploadFile(account.client, 'startPostAttachmentsUpload', post.body.data!.createPost.id, pdfOf(1_200_000), 'application/pdf'),
    await uploadFile(account.client, 'startPostAttachmentsUpload', post.body.data!.createPost.id, pdfOf(600_000), 'application/pdf'),
    await uploadFile(account.client, 'startPostAttachmentsUpload', post.body.data!.createPost.id, await pngImage(1200, 900), 'image/png'),
  ];
  for (const upload of uploads) expect(upload.status).toBe(204);
}

/** Contents and chunks a database holds: what the sample files come to. */
async function layoutOf(bastion: RunningBastion): Promise<{ contents: number; chunks: number }> {
  const [layout] = await bastion.database.dataSource.query<{ contents: number; chunks: number }[]>(
    'SELECT count(*)::int AS contents, sum(greatest(1, ceil(byte_size::numeric / chunk_bytes)))::int AS chunks FROM file_contents',
  );
  return layout;
}

/** A server on an existing database (a restored one), with the test settings; stopped by the caller. */
function serveDatabase(server: TestServer, database: TestDatabase, storage = parseStorageUrl(undefined)): Promise<RunningBastion> {
  return startBastion(secondInstanceConfig({ database }, { storage }), { logger: server.logger, clock: server.clock });
}

/**
 * A content whose recorded SHA-256 no longer matches (a variant's, put back after): a new backup's
 * verification decrypts it, and fails naming it.
 */
async function expectVerifyToCatchAWrongSha256(server: TestServer): Promise<void> {
  const backups = server.bastion.services.backups;
  const query = <T>(sql: string, parameters?: unknown[]) => server.bastion.database.dataSource.query<T>(sql, parameters);
  const [thumb] = await query<{ id: string; sha256: string }[]>(
    'SELECT c.id, c.sha256 FROM file_contents c JOIN file_variants v ON v.content_id = c.id ORDER BY c.id LIMIT 1',
  );
  await query('UPDATE file_contents SET sha256 = $1 WHERE id = $2', ['0'.repeat(64), thumb.id]);
  try {
    const wrong = await backups.verify((await backups.create(ACTOR, 'api')).id, ACTOR);
    expect(wrong.status).toBe(BackupStatus.VERIFY_FAILED);
    expect(wrong.verification).toMatch(new RegExp(`content ${thumb.id}: its decrypted bytes differ from its recorded SHA-256$`));
  } finally {
    await query('UPDATE file_contents SET sha256 = $1 WHERE id = $2', [thumb.sha256, thumb.id]);
  }
}

describe('backups of files in the PostgreSQL store', () => {
  let server: TestServer;
  let original: Record<string, string>;
  const restoredDatabases: TestDatabase[] = [];
  const backups = () => server.bastion.services.backups;
  const query = <T>(sql: string, parameters?: unknown[]) => server.bastion.database.dataSource.query<T>(sql, parameters);

  beforeAll(async () => {
    server = await startTestServer();
    await uploadSampleFiles(await makeUser(server));
    original = await servedDigests(server.bastion);
  });
  afterAll(async () => {
    await server?.close();
    for (const database of restoredDatabases) await database.drop();
  });

  it('restores into a new database that serves every file and variant byte for byte', async () => {
    // Four files, three image variants; the PDFs of several chunks.
    expect(Object.keys(original)).toHaveLength(7);
    for (const [name, digest] of Object.entries(original))
      expect({ name, digest }).toEqual({ name, digest: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const layout = await layoutOf(server.bastion);
    expect(layout).toEqual({ contents: 7, chunks: 10 });
    const backup = await backups().create(ACTOR, 'api');
    // Every content is in file_chunks: the section is announced, and empty.
    expect(backup.manifest?.fileChunks).toEqual({ contents: 0, chunks: 0, bytes: 0, vanished: 0, sha256: expect.any(String) });
    expect(backup.manifest?.tables.find((table) => table.name === 'file_chunks')?.rows).toBe(layout.chunks);

    const restored = await createTestDatabase({ migrated: false });
    restoredDatabases.push(restored);
    await restoreArchive({ file: backups().fileOf(backup), keyring: testKeyring(), targetUrl: restored.url, replace: false });
    const copy = await serveDatabase(server, restored);
    try {
      expect(await servedDigests(copy)).toEqual(original);
    } finally {
      await copy.stop();
    }
  });

  it('verify decrypts every content against its SHA-256', async () => {
    const verified = await backups().verify((await backups().create(ACTOR, 'api')).id, ACTOR);
    expect(verified.status).toBe(BackupStatus.VERIFIED);
    expect(verified.verification).toMatch(
      /; 7 file content\(s\) decrypted and matched their SHA-256 \(0 from the archive's file chunks\)$/,
    );
  });

  it('verify fails, naming the content and chunk, when a chunk was tampered with or is missing', async () => {
    const [pdf] = await query<{ id: string }[]>(
      "SELECT c.id FROM file_contents c JOIN files f ON f.content_id = c.id WHERE f.content_type = 'application/pdf' AND c.byte_size > 1000000",
    );
    const chunk = async (index: number) =>
      (await query<{ data: Buffer }[]>('SELECT data FROM file_chunks WHERE content_id = $1 AND chunk_index = $2', [pdf.id, index]))[0].data;
    const [second, third] = [await chunk(1), await chunk(2)];
    const flipped = Buffer.from(second);
    flipped[100] ^= 1;
    await query('UPDATE file_chunks SET data = $1 WHERE content_id = $2 AND chunk_index = 1', [flipped, pdf.id]);
    try {
      const tampered = await backups().verify((await backups().create(ACTOR, 'api')).id, ACTOR);
      expect(tampered.status).toBe(BackupStatus.VERIFY_FAILED);
      expect(tampered.verification).toBe(
        `restored ${tampered.tables} tables and ${tampered.rows} rows, ` +
          `but 1 file content(s) damaged or missing: content ${pdf.id}: chunk 1 does not authenticate`,
      );
    } finally {
      await query('UPDATE file_chunks SET data = $1 WHERE content_id = $2 AND chunk_index = 1', [second, pdf.id]);
    }
    await query('DELETE FROM file_chunks WHERE content_id = $1 AND chunk_index = 2', [pdf.id]);
    try {
      const cut = await backups().verify((await backups().create(ACTOR, 'api')).id, ACTOR);
      expect(cut.status).toBe(BackupStatus.VERIFY_FAILED);
      expect(cut.verification).toMatch(
        new RegExp(`, but 1 file content\\(s\\) damaged or missing: content ${pdf.id}: chunk 2 is missing$`),
      );
    } finally {
      await query('INSERT INTO file_chunks (content_id, chunk_index, data) VALUES ($1, 2, $2)', [pdf.id, third]);
    }
    expect((await backups().verify((await backups().create(ACTOR, 'api')).id, ACTOR)).status).toBe(BackupStatus.VERIFIED);
  });

  it('verify fails when a content decrypts, but not to its recorded SHA-256', async () => {
    await expectVerifyToCatchAWrongSha256(server);
  });
});

describe('backups of files in an S3 store', () => {
  let s3: TestS3Server;
  let server: TestServer;
  let bucket: S3Client;
  let live: S3StorageTarget;
  let original: Record<string, string>;
  const restoredDatabases: TestDatabase[] = [];
  const savedEnv: Record<string, string | undefined> = {};
  const backups = () => server.bastion.services.backups;
  const query = <T>(sql: string, parameters?: unknown[]) => server.bastion.database.dataSource.query<T>(sql, parameters);
  const target = (prefix: string) => parseStorageUrl(`s3://${s3.bucket}?endpoint=${s3.endpoint}&prefix=${prefix}`) as S3StorageTarget;

  const keysOf = (prefix: string): Promise<string[]> => keysUnder(bucket, s3.bucket, prefix);

  async function objectOf(key: string): Promise<Buffer> {
    const answer = await bucket.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    return Buffer.from(await answer.Body!.transformToByteArray());
  }

  const putObject = (key: string, body: Buffer) => bucket.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }));

  beforeAll(async () => {
    s3 = await startS3Server();
    // The servers' stores take their credentials from the AWS chain, as in production: here, the environment.
    for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE'])
      savedEnv[name] = process.env[name];
    process.env.AWS_ACCESS_KEY_ID = s3.credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    live = target('live/');
    server = await startTestServer({ config: { storage: live } });
    bucket = new S3Client({ ...s3ClientConfig(live), credentials: s3.credentials });
    await uploadSampleFiles(await makeUser(server));
    // The images' uploaded originals were replaced by their re-encodings: queued for deletion, removed here as the maintenance job would.
    await server.bastion.maintenanceTasks.storeDeletions(server.bastion.database.dataSource.manager);
    original = await servedDigests(server.bastion);
  });
  afterAll(async () => {
    bucket?.destroy();
    await server?.close();
    for (const database of restoredDatabases) await database.drop();
    await s3?.close();
    for (const [name, value] of Object.entries(savedEnv)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  let backup: Backup;

  it('archives the sealed chunks of every content the files name, read from the bucket', async () => {
    expect(Object.keys(original)).toHaveLength(7);
    expect(await layoutOf(server.bastion)).toEqual({ contents: 7, chunks: 10 });
    expect(await query('SELECT count(*)::int AS n FROM file_chunks')).toEqual([{ n: 0 }]);
    const objects = await keysOf('live/contents/');
    expect(objects).toHaveLength(10);
    backup = await backups().create(ACTOR, 'api');
    expect(backup.status).toBe(BackupStatus.COMPLETE);
    const bytes = (await Promise.all(objects.map(objectOf))).reduce((sum, object) => sum + object.length, 0);
    expect(backup.manifest?.fileChunks).toEqual({
      contents: 7,
      chunks: 10,
      bytes,
      vanished: 0,
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });

    // Each content once, in id order, with exactly the bucket's sealed bytes.
    const seen: { id: string; chunks: Buffer[] }[] = [];
    await readArchive(backups().fileOf(backup), testKeyring(), {
      startContent: (content) => void seen.push({ id: content.id, chunks: [] }),
      chunk: (sealed) => void seen[seen.length - 1].chunks.push(Buffer.from(sealed!)),
    });
    const contentIds = [...new Set((await servedOf(server.bastion)).map((served) => served.contentId))].sort();
    expect(seen.map((content) => content.id)).toEqual(contentIds);
    for (const content of seen)
      for (const [index, chunk] of content.chunks.entries())
        expect(chunk.equals(await objectOf(`live/contents/${content.id}/${index}`))).toBe(true);
    // Sealed on the way in, and the archive encrypted again: no plaintext of the PDFs shows.
    expect(fs.readFileSync(backups().fileOf(backup)).includes(Buffer.from('%PDF-1.7'))).toBe(false);
  });

  it('verify decrypts the archived chunks as they stream by, against their SHA-256', async () => {
    const verified = await backups().verify(backup.id, ACTOR);
    expect(verified.status).toBe(BackupStatus.VERIFIED);
    expect(verified.verification).toMatch(
      /; 7 file content\(s\) decrypted and matched their SHA-256 \(7 from the archive's file chunks\)$/,
    );
  });

  it('restores into a new database and another bucket prefix, and that serves every file byte for byte', async () => {
    const restored = await createTestDatabase({ migrated: false });
    restoredDatabases.push(restored);
    const store = new S3ChunkStore(target('restored/'));
    try {
      const result = await restoreArchive({
        file: backups().fileOf(backup),
        keyring: testKeyring(),
        targetUrl: restored.url,
        replace: false,
        fileChunks: (_database, manager) => storingSink(store, manager),
      });
      expect(result.fileChunks).toMatchObject({ contents: 7, chunks: 10, vanished: 0 });
    } finally {
      await store.close();
    }
    expect((await keysOf('restored/contents/')).map((key) => key.slice('restored/'.length))).toEqual(
      (await keysOf('live/contents/')).map((key) => key.slice('live/'.length)),
    );
    const copy = await serveDatabase(server, restored, target('restored/'));
    try {
      expect(await copy.database.dataSource.query('SELECT DISTINCT store FROM file_contents')).toEqual([{ store: 's3' }]);
      expect(await servedDigests(copy)).toEqual(original);
    } finally {
      await copy.stop();
    }
  });

  it('restores into a database whose configuration stores files in PostgreSQL: the chunks go into file_chunks', async () => {
    const restored = await createTestDatabase({ migrated: false });
    restoredDatabases.push(restored);
    const result = await restoreArchive({
      file: backups().fileOf(backup),
      keyring: testKeyring(),
      targetUrl: restored.url,
      replace: false,
    });
    expect(result.fileChunks).toMatchObject({ contents: 7, chunks: 10 });
    const copy = await serveDatabase(server, restored);
    try {
      expect(await copy.database.dataSource.query('SELECT store, count(*)::int AS n FROM file_contents GROUP BY store')).toEqual([
        { store: 'postgres', n: 7 },
      ]);
      expect(await copy.database.dataSource.query('SELECT count(*)::int AS n FROM file_chunks')).toEqual([{ n: 10 }]);
      expect(await servedDigests(copy)).toEqual(original);
    } finally {
      await copy.stop();
    }
  });

  it('verify fails on a chunk tampered with in the bucket, naming it', async () => {
    const [pdf] = await query<{ id: string }[]>(
      "SELECT c.id FROM file_contents c JOIN files f ON f.content_id = c.id WHERE f.content_type = 'application/pdf' AND c.byte_size > 1000000",
    );
    const key = `live/contents/${pdf.id}/0`;
    const sealed = await objectOf(key);
    const flipped = Buffer.from(sealed);
    flipped[sealed.length - 1] ^= 0x80;
    await putObject(key, flipped);
    try {
      const tampered = await backups().verify((await backups().create(ACTOR, 'api')).id, ACTOR);
      expect(tampered.status).toBe(BackupStatus.VERIFY_FAILED);
      expect(tampered.verification).toMatch(
        new RegExp(`but 1 file content\\(s\\) damaged or missing: content ${pdf.id}: chunk 0 does not authenticate$`),
      );
    } finally {
      await putObject(key, sealed);
    }
  });

  it('verify fails when an archived content decrypts, but not to its recorded SHA-256', async () => {
    await expectVerifyToCatchAWrongSha256(server);
  });

  it('reads an archive written before file chunks were archived; verify says which contents it lacks', async () => {
    // That archive format, rewritten from a current one: the same tables, no file chunks section, nothing announced.
    const old = path.join(server.config.backupDir!, 'before-file-chunks.bbak');
    const writer = await ArchiveWriter.create(old, testKeyring(), 'k1');
    await readArchive(backups().fileOf(backup), testKeyring(), {
      preamble: ({ fileChunks: _announced, ...preamble }) => writer.preamble(preamble),
      startTable: (table) => writer.startTable(table),
      data: (chunk) => writer.data(Buffer.from(chunk)),
    });
    const written = await writer.finish();
    expect(written.manifest.fileChunks).toBeUndefined();
    expect((await readArchive(old, testKeyring())).manifest.tables).toEqual(written.manifest.tables);

    const client = new Client({ connectionString: server.database.url });
    await client.connect();
    try {
      const outcome = await verifyArchive({
        client,
        databaseUrl: server.database.url,
        keyring: testKeyring(),
        file: old,
        backup: Object.assign(new Backup(), { id: randomUUID(), sha256: written.sha256, host: os.hostname(), rows: backup.rows }),
        logger: server.logger,
      });
      const contents = [...new Set((await servedOf(server.bastion)).map((served) => served.contentId))].sort();
      expect(outcome).toEqual({
        ok: false,
        text: expect.stringMatching(
          new RegExp(
            `^restored \\d+ tables and \\d+ rows, but 7 file content\\(s\\) damaged or missing: content ${contents[0]}: ` +
              'files use it, but its chunks \\(in the object store\\) are not in the archive; ',
          ),
        ),
      });
    } finally {
      await client.end();
    }
  });

  it('fails the backup, saying which chunk, when the bucket lost a chunk files still use', async () => {
    const [pdf] = await query<{ id: string }[]>(
      "SELECT c.id FROM file_contents c JOIN files f ON f.content_id = c.id WHERE f.content_type = 'application/pdf' AND c.byte_size > 1000000",
    );
    const key = `live/contents/${pdf.id}/2`;
    const sealed = await objectOf(key);
    await bucket.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key }));
    try {
      const failure = await backups()
        .create(ACTOR, 'api')
        .catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(BackupError);
      expect((failure as BackupError).failure).toBe('FILE_STORE');
      expect((failure as BackupError).message).toMatch(
        new RegExp(`^chunk 2 of file content ${pdf.id} is missing from the s3 store, though files still use it: the store lost it`),
      );
      const [entry] = await query<{ status: string; error: string }[]>(
        'SELECT status, error FROM backups ORDER BY created_at DESC LIMIT 1',
      );
      expect(entry).toEqual({ status: 'failed', error: (failure as BackupError).message });
    } finally {
      await putObject(key, sealed);
    }
  });

  it('archives a content deleted after the snapshot as vanished, and verify says so', async () => {
    const [file] = await query<{ id: string }[]>("SELECT f.id FROM files f WHERE f.content_type = 'image/png'");
    const doomed = (await servedOf(server.bastion)).filter((served) => served.fileId === file.id).map((served) => served.contentId);
    expect(doomed).toHaveLength(3);
    let deleted = false;
    const during = await backups().create(ACTOR, 'api', {
      // Inside the snapshot, before the first table: the file goes, and the maintenance job empties the bucket of it.
      beforeTable: async () => {
        if (deleted) return;
        deleted = true;
        await query('DELETE FROM files WHERE id = $1', [file.id]);
        expect(await server.bastion.maintenanceTasks.storeDeletions(server.bastion.database.dataSource.manager)).toBe(3);
      },
    });
    for (const contentId of doomed) expect(await keysOf(`live/contents/${contentId}/`)).toEqual([]);
    expect(during.manifest?.fileChunks).toMatchObject({ contents: 7, vanished: 3 });
    const verified = await backups().verify(during.id, ACTOR);
    expect(verified.status).toBe(BackupStatus.VERIFIED);
    expect(verified.verification).toMatch(
      /; 4 file content\(s\) decrypted and matched their SHA-256 \(4 from the archive's file chunks\); 3 deleted while the backup ran are not in it/,
    );
    const restored = await createTestDatabase({ migrated: false });
    restoredDatabases.push(restored);
    const result = await restoreArchive({
      file: backups().fileOf(during),
      keyring: testKeyring(),
      targetUrl: restored.url,
      replace: false,
    });
    expect(result.fileChunks).toMatchObject({ contents: 7, vanished: 3 });
  });
});
