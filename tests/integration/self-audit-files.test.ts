import net, { type AddressInfo } from 'node:net';
import { S3Client } from '@aws-sdk/client-s3';
import { activeKeyring } from '../../src/crypto/active-keyring';
import { KeyService } from '../../src/crypto/key.service';
import { ChunkMissingError } from '../../src/files/chunk-store';
import { FILE_CHUNK_BYTES } from '../../src/files/content-cipher';
import { Contents, Stores } from '../../src/files/content-io';
import { pruneStoreDeletions } from '../../src/files/files-upkeep';
import { PostgresChunkStore } from '../../src/files/postgres-chunk-store';
import { S3ChunkStore, s3ClientConfig } from '../../src/files/s3-chunk-store';
import { parseStorageUrl, S3StorageTarget } from '../../src/files/storage-url';
import { configWith } from '../../src/settings';
import type { CheckStatus } from '../../src/self-audit/checks';
import { FILE_CHECKS, FileCheckContext } from '../../src/self-audit/files-checks';
import { MEASURES } from '../../src/self-audit/checks';
import { TestAccount, makeUser } from '../support/factories';
import { photoWithGps, startUpload, tusUpload } from '../support/files';
import { startS3Server, TestS3Server } from '../support/s3-server';
import { TEST_KEY_SETTINGS, testKeyring } from '../support/test-keys';
import { TestServer, startTestServer } from '../support/test-server';

const FILE_CHECK_IDS = [
  'encryption.file_contents',
  'firewall.file_limits',
  'backups.file_contents_consistent',
  'backups.file_store_reachable',
];
const REPORT = '{ securityAudit { checks { id measure status detail remedy } } }';
type Finding = { status: CheckStatus; detail: string; remedy: string | null };

let server: TestServer;
let admin: TestAccount;
let alice: TestAccount;
let profileId: string;

beforeAll(async () => {
  server = await startTestServer();
  [admin, alice] = await Promise.all([makeUser(server, { roles: ['admin'] }), makeUser(server)]);
  const { body } = await alice.client.request<{ createProfile: { id: string } }>(
    'mutation { createProfile(input: { displayName: "Alice" }) { id } }',
  );
  profileId = body.data!.createProfile.id;
});
afterAll(() => server?.close());

const dataSource = () => server.bastion.database.dataSource;

/** Runs one files check against this server's database, with its own contents (PostgreSQL) unless the test brings others. */
async function check(id: string, context: Partial<FileCheckContext> = {}): Promise<Finding> {
  const definition = FILE_CHECKS.find((candidate) => candidate.id === id)!;
  return definition.run({
    config: configWith({ ...TEST_KEY_SETTINGS }),
    dataSource: dataSource(),
    clock: server.clock,
    keys: new KeyService(dataSource(), testKeyring(), server.clock),
    keyring: testKeyring(),
    backups: server.bastion.services.backups.options,
    fileContents: server.bastion.services.fileContents,
    developmentKeys: false,
    unruledFields: async () => [],
    ...context,
  });
}

/** Alice's avatar, uploaded over tus: a file and its THUMB_256 variant, two contents. Returns their content ids. */
async function uploadAvatar(): Promise<{ file: string; thumb: string }> {
  const photo = await photoWithGps();
  const started = await startUpload(alice.client, 'startProfileAvatarUpload', profileId, photo, 'image/jpeg');
  expect((await tusUpload(started.url!, photo)).status).toBe(204);
  const [row] = await dataSource().query<{ file: string; thumb: string }[]>(
    `SELECT f.content_id AS file, v.content_id AS thumb FROM files f JOIN file_variants v ON v.file_id = f.id
      WHERE f.row_id = $1 ORDER BY f.created_at DESC LIMIT 1`,
    [profileId],
  );
  return row;
}

/** A time `hours` before the server's (frozen) clock: the checks measure ages against it, as the maintenance job does. */
const hoursAgo = (hours: number) => new Date(server.clock.now().getTime() - hours * 60 * 60 * 1000);

describe('the self-audit of files', () => {
  it('reports the four files checks within their measures, passing on a fresh server without files', async () => {
    const { body } = await admin.client.request<{ securityAudit: { checks: (Finding & { id: string; measure: string })[] } }>(REPORT);
    const checks = body.data!.securityAudit.checks;
    const order = checks.map((item) => MEASURES.indexOf(item.measure as (typeof MEASURES)[number]));
    expect(order).toEqual([...order].sort((a, b) => a - b)); // grouped by measure, files checks among their measure's
    const byId = Object.fromEntries(checks.map((item) => [item.id, item]));
    expect(FILE_CHECK_IDS.map((id) => ({ id, measure: byId[id]?.measure, status: byId[id]?.status, remedy: byId[id]?.remedy }))).toEqual(
      FILE_CHECK_IDS.map((id) => ({ id, measure: id.split('.')[0], status: 'PASS', remedy: null })),
    );
    expect(byId['encryption.file_contents'].detail).toBe('No file contents are stored yet.');
    expect(byId['backups.file_store_reachable'].detail).toContain('PostgreSQL (file_chunks), so the backups carry them');
    expect(byId['firewall.file_limits'].detail).toContain('1gb of files per account, 4 uploads in flight per account and 8 per address');
  });

  it('encryption.file_contents: PASS once files are stored; FAIL on a chunk that does not authenticate or a key the keyring lacks', async () => {
    const { file, thumb } = await uploadAvatar();
    const passing = await check('encryption.file_contents');
    expect(passing).toMatchObject({ status: 'PASS', remedy: null });
    expect(passing.detail).toContain('2 stored contents (k1: 2), all under keys the keyring holds');
    expect(passing.detail).toContain('2 contents read back just now');

    // One bit of the file's sealed chunk flipped: the tag no longer matches.
    const flip = () =>
      dataSource().query(
        'UPDATE file_chunks SET data = set_byte(data, 40, get_byte(data, 40) # 1) WHERE content_id = $1 AND chunk_index = 0',
        [file],
      );
    await flip();
    const damaged = await check('encryption.file_contents');
    expect(damaged.status).toBe('FAIL');
    expect(damaged.detail).toContain(
      `1 of the 2 read back does not authenticate (changed, moved, cut short or sealed under another key): ${file}`,
    );
    expect(damaged.remedy).toContain('SELECT table_name, row_id, field FROM files WHERE content_id IN');
    await flip();
    expect((await check('encryption.file_contents')).status).toBe('PASS');

    // A content pointed at a key the keyring does not hold (a key forgotten too early).
    await dataSource().query("UPDATE file_contents SET kid = 'k9' WHERE id = $1", [thumb]);
    const lost = await check('encryption.file_contents');
    expect(lost.status).toBe('FAIL');
    expect(lost.detail).toContain('1 of the 2 stored contents is under "k9", which the keyring does not hold: those files cannot be read.');
    expect(lost.remedy).toContain('BASTION_ENCRYPTION_KEYS');
    // The same with the key the contents are really under missing from the keyring (k2 current, k1 gone).
    await dataSource().query("UPDATE file_contents SET kid = 'k1' WHERE id = $1", [thumb]);
    const without = await check('encryption.file_contents', { keyring: testKeyring('k2', ['k2']) });
    expect(without).toMatchObject({ status: 'FAIL', detail: expect.stringContaining('2 of the 2 stored contents are under "k1"') });
    expect((await check('encryption.file_contents')).status).toBe('PASS');
  });

  it('encryption.retired_keys_unused counts file contents on an older key, in the report the admin gets', async () => {
    const report = async () => {
      const { body } = await admin.client.request<{ securityAudit: { checks: (Finding & { id: string })[] } }>(REPORT);
      return Object.fromEntries(body.data!.securityAudit.checks.map((item) => [item.id, item]));
    };
    expect((await report())['encryption.retired_keys_unused'].status).toBe('PASS');
    // A content written while k2 was the current key.
    const underK2 = new Contents(dataSource(), server.bastion.services.fileContents.stores, () => testKeyring('k2'));
    const old = await underK2.writeAll(Buffer.from('written under k2'));
    try {
      const byId = await report();
      expect(byId['encryption.retired_keys_unused']).toMatchObject({
        status: 'WARN',
        detail: expect.stringContaining('file contents: 1 on k2'),
        remedy: expect.stringContaining('bastion keys reencrypt'),
      });
      expect(byId['encryption.file_contents']).toMatchObject({ status: 'PASS', detail: expect.stringContaining('(k1: 2, k2: 1)') });
    } finally {
      await dataSource().query('DELETE FROM file_contents WHERE id = $1', [old.id]);
    }
  });

  it('encryption.file_contents and backups.file_contents_consistent: FAIL on a content missing a chunk in PostgreSQL', async () => {
    const [{ thumb }] = await dataSource().query<{ thumb: string }[]>(
      'SELECT content_id AS thumb FROM file_variants ORDER BY file_id LIMIT 1',
    );
    const [removed] = await dataSource().query<{ data: Buffer }[]>(
      'SELECT data FROM file_chunks WHERE content_id = $1 AND chunk_index = 0',
      [thumb],
    );
    await dataSource().query('DELETE FROM file_chunks WHERE content_id = $1 AND chunk_index = 0', [thumb]);
    try {
      const encryption = await check('encryption.file_contents');
      expect(encryption.status).toBe('FAIL');
      expect(encryption.detail).toContain(`1 of the 2 read back misses a chunk in the store: ${thumb}`);
      const consistency = await check('backups.file_contents_consistent');
      expect(consistency.status).toBe('FAIL');
      expect(consistency.detail).toContain('1 content in PostgreSQL holds more or fewer chunks than its size needs');
      expect(consistency.remedy).toContain('bastion backup restore <id> --to');
    } finally {
      await dataSource().query('INSERT INTO file_chunks (content_id, chunk_index, data) VALUES ($1, 0, $2)', [thumb, removed.data]);
    }
    expect((await check('encryption.file_contents')).status).toBe('PASS');
    expect((await check('backups.file_contents_consistent')).status).toBe('PASS');
  });

  it('backups.file_contents_consistent: WARN on old orphaned contents until the maintenance job removes them', async () => {
    expect(await check('backups.file_contents_consistent')).toMatchObject({ status: 'PASS', remedy: null });
    // A content nothing names: a process that stopped between storing a re-encoded image and attaching it.
    const orphan = await server.bastion.services.fileContents.writeAll(Buffer.from('never attached'));
    await dataSource().query('UPDATE file_contents SET created_at = $2 WHERE id = $1', [orphan.id, hoursAgo(0.5)]);
    expect((await check('backups.file_contents_consistent')).status).toBe('PASS'); // may still be on its way to a file
    await dataSource().query('UPDATE file_contents SET created_at = $2 WHERE id = $1', [orphan.id, hoursAgo(4)]);
    const stale = await check('backups.file_contents_consistent');
    expect(stale.status).toBe('WARN');
    expect(stale.detail).toContain('1 content older than 3 hours that no file, variant or upload names');
    expect(stale.remedy).toContain('maintenance job');

    await server.bastion.maintenanceTasks.orphanFileContents(dataSource().manager);
    expect(await dataSource().query('SELECT id FROM file_contents WHERE id = $1', [orphan.id])).toEqual([]);
    expect((await check('backups.file_contents_consistent')).status).toBe('PASS');
  });

  it('backups.file_contents_consistent: FAIL on a file whose content row is gone, and on contents or deletions of a store not configured', async () => {
    const [{ thumb }] = await dataSource().query<{ thumb: string }[]>(
      'SELECT content_id AS thumb FROM file_variants ORDER BY file_id LIMIT 1',
    );
    // A content row deleted behind the foreign keys' back (as a partial restore could leave it).
    await dataSource().query('CREATE TABLE saved_contents AS SELECT * FROM file_contents WHERE id = $1', [thumb]);
    const replica = (sql: string, parameters: unknown[] = []) =>
      dataSource().transaction(async (manager) => {
        await manager.query('SET LOCAL session_replication_role = replica');
        await manager.query(sql, parameters);
      });
    await replica('DELETE FROM file_contents WHERE id = $1', [thumb]);
    try {
      const headless = await check('backups.file_contents_consistent');
      expect(headless.status).toBe('FAIL');
      expect(headless.detail).toContain('1 file or variant names a content row that does not exist: it cannot be downloaded');
      expect(headless.remedy).toContain('Restore file_contents');
    } finally {
      await replica('INSERT INTO file_contents SELECT * FROM saved_contents');
      await dataSource().query('DROP TABLE saved_contents');
    }
    expect((await check('backups.file_contents_consistent')).status).toBe('PASS');

    // Contents in S3 while STORAGE_URL says postgres (a move back): unreadable, and their deletion is stuck.
    const moved = await server.bastion.services.fileContents.writeAll(Buffer.from('moved away'));
    await dataSource().query("UPDATE file_contents SET store = 's3' WHERE id = $1", [moved.id]);
    const elsewhere = await check('backups.file_contents_consistent');
    expect(elsewhere.status).toBe('FAIL');
    expect(elsewhere.detail).toContain('1 content in the "s3" store, which STORAGE_URL does not configure');
    await dataSource().query('DELETE FROM file_contents WHERE id = $1', [moved.id]); // queues its chunks for the s3 store
    const queued = await check('backups.file_contents_consistent');
    expect(queued.status).toBe('FAIL');
    expect(queued.detail).toContain('1 deleted content queued for the "s3" store, which STORAGE_URL does not configure');
    expect(queued.remedy).toContain('file_deletions');
    await dataSource().query('DELETE FROM file_deletions WHERE content_id = $1', [moved.id]);
    expect((await check('backups.file_contents_consistent')).status).toBe('PASS');
  });
});

describe('the self-audit of files in an S3 store', () => {
  let s3: TestS3Server;
  const opened: Contents[] = [];
  beforeAll(async () => {
    s3 = await startS3Server();
  });
  afterAll(async () => {
    await Promise.all(
      opened.flatMap((contents) => contents.stores.all.filter((store) => store.kind === 's3').map((store) => store.close())),
    );
    await s3?.close();
  });

  /** Contents as the files feature builds them for STORAGE_URL=s3://… (PostgreSQL kept for contents not moved), with the test server's credentials. */
  function s3Contents(overrides: Partial<S3StorageTarget> = {}): Contents {
    const parsed = parseStorageUrl(`s3://${s3.bucket}?endpoint=${s3.endpoint}&prefix=audit/`);
    if (parsed.kind !== 's3') throw new Error('expected an s3 target');
    const target = { ...parsed, ...overrides };
    const store = new S3ChunkStore(target, new S3Client({ ...s3ClientConfig(target), credentials: s3.credentials }));
    const contents = new Contents(dataSource(), new Stores(store, [new PostgresChunkStore(dataSource())]), activeKeyring);
    opened.push(contents);
    return contents;
  }

  it('backups.file_store_reachable: PASS when the bucket answers, FAIL with the reason when nothing listens', async () => {
    const reachable = await check('backups.file_store_reachable', { fileContents: s3Contents() });
    expect(reachable).toMatchObject({ status: 'PASS', remedy: null });
    expect(reachable.detail).toContain('a probe object was written, read back and deleted');

    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    const unreachable = await check('backups.file_store_reachable', { fileContents: s3Contents({ endpoint }) });
    expect(unreachable.status).toBe('FAIL');
    expect(unreachable.detail).toContain(`cannot reach ${endpoint} (ECONNREFUSED)`);
    expect(unreachable.remedy).toContain('STORAGE_URL');
  });

  it('encryption.file_contents reads contents back from the bucket, and FAILs when the bucket cannot be read', async () => {
    const contents = s3Contents();
    const stored = await contents.writeAll(Buffer.alloc(3 * FILE_CHUNK_BYTES + 17, 7)); // four chunks: the first and the last are read
    try {
      const passing = await check('encryption.file_contents', { fileContents: contents });
      expect(passing.status).toBe('PASS');
      const endpoint = `http://127.0.0.1:${await closedPort()}`;
      const unreadable = await check('encryption.file_contents', { fileContents: s3Contents({ endpoint }) });
      expect(unreadable.status).toBe('FAIL');
      expect(unreadable.detail).toContain(`Reading contents back stopped: S3 store (bucket "${s3.bucket}" at ${endpoint})`);
      expect(unreadable.remedy).toContain('backups.file_store_reachable');
    } finally {
      await dataSource().query('DELETE FROM file_contents WHERE id = $1', [stored.id]);
      await pruneStoreDeletions(dataSource().manager, contents.stores, server.logger);
    }
  });

  it('backups.file_contents_consistent: WARN on store deletions queued for more than a day, PASS once the maintenance job removed them', async () => {
    const contents = s3Contents();
    const stored = await contents.writeAll(Buffer.from('deleted soon'));
    await dataSource().query('DELETE FROM file_contents WHERE id = $1', [stored.id]); // the trigger queues its chunk
    const pending = await check('backups.file_contents_consistent', { fileContents: contents });
    expect(pending).toMatchObject({ status: 'PASS', detail: expect.stringContaining('1 store deletion pending, all from the last day') });

    await dataSource().query('UPDATE file_deletions SET queued_at = $2 WHERE content_id = $1', [stored.id, hoursAgo(30)]);
    const stuck = await check('backups.file_contents_consistent', { fileContents: contents });
    expect(stuck.status).toBe('WARN');
    expect(stuck.detail).toContain(
      '1 deleted content in the "s3" store queued for more than a day: the encrypted chunks of deleted files are still there',
    );
    expect(stuck.remedy).toContain('backups.file_store_reachable');

    expect(await pruneStoreDeletions(dataSource().manager, contents.stores, server.logger)).toBe(1);
    expect((await check('backups.file_contents_consistent', { fileContents: contents })).status).toBe('PASS');
    const read = async () => {
      for await (const chunk of contents.stores.current.read(stored.id, 0, 0)) void chunk;
    };
    await expect(read()).rejects.toBeInstanceOf(ChunkMissingError);
  });
});

/** A loopback port nothing listens on (it did a moment ago). */
async function closedPort(): Promise<number> {
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const { port } = listener.address() as AddressInfo;
  await new Promise<void>((resolve, reject) => listener.close((error) => (error ? reject(error) : resolve())));
  return port;
}
