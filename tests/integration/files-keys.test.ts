import { createHash } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { installKeyring } from '../../src/crypto/active-keyring';
import { KeyService } from '../../src/crypto/key.service';
import type { Keyring } from '../../src/crypto/keyring';
import type { ChunkStore } from '../../src/files/chunk-store';
import { ContentKeys, Contents, Stores } from '../../src/files/content-io';
import { PostgresChunkStore } from '../../src/files/postgres-chunk-store';
import { TestAccount, makeUser } from '../support/factories';
import { pdfOf, photoWithGps, pngImage, servedDigests, startUpload, tusCreate, tusPatch, uploadFile } from '../support/files';
import { testKeyring } from '../support/test-keys';
import { TestServer, startTestServer } from '../support/test-server';

/**
 * `keys reencrypt` and file contents: every content not on the current key is written anew
 * (new id, salt and key) and swapped in for its files in one transaction; an interruption leaves
 * each content whole on one key or the other; uploads still arriving are left, said, and keep
 * their key in use. Files download identically throughout.
 */

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** The PostgreSQL store, but the first write of a second chunk fails: a process dying in the middle of a content. */
class DyingStore implements ChunkStore {
  readonly kind = 'postgres' as const;
  died = false;

  constructor(private readonly inner: PostgresChunkStore) {}

  async put(contentId: string, chunkIndex: number, sealed: Buffer, transaction?: EntityManager): Promise<void> {
    if (chunkIndex === 1 && !this.died) {
      this.died = true;
      throw new Error('died in the middle of a content');
    }
    await this.inner.put(contentId, chunkIndex, sealed, transaction);
  }

  read(contentId: string, first: number, last: number): AsyncIterable<Buffer> {
    return this.inner.read(contentId, first, last);
  }

  remove(contents: readonly { readonly contentId: string; readonly chunkCount: number }[]): Promise<void> {
    return this.inner.remove(contents);
  }

  probe(): Promise<void> {
    return this.inner.probe();
  }

  async close(): Promise<void> {}
}

describe('keys reencrypt and file contents', () => {
  let server: TestServer;
  let account: TestAccount;
  let original: Record<string, string>;
  let contentsBefore: string[];
  let uploadUrl: string;
  const pending = pdfOf(700_000);
  const query = <T>(sql: string, parameters?: unknown[]) => server.bastion.database.dataSource.query<T>(sql, parameters);
  const keysWith = (keyring: Keyring, keyedData = [server.bastion.services.fileKeys]) =>
    new KeyService(server.bastion.database.dataSource, keyring, server.clock, undefined, keyedData);
  const contentsByKid = async () =>
    Object.fromEntries(
      (await query<{ kid: string; n: number }[]>('SELECT kid, count(*)::int AS n FROM file_contents GROUP BY kid ORDER BY kid')).map(
        (row) => [row.kid, row.n],
      ),
    );
  /** Contents files and variants name whose chunks are not all there: a content half rewritten. */
  const incomplete = () =>
    query<{ id: string }[]>(
      `SELECT c.id FROM file_contents c WHERE NOT EXISTS (SELECT 1 FROM uploads u WHERE u.content_id = c.id)
          AND (SELECT count(*) FROM file_chunks k WHERE k.content_id = c.id) <> greatest(1, ceil(c.byte_size::numeric / c.chunk_bytes))`,
    );
  const attachedContents = async () =>
    (await query<{ id: string }[]>('SELECT content_id AS id FROM files UNION SELECT content_id FROM file_variants ORDER BY 1')).map(
      (row) => row.id,
    );

  beforeAll(async () => {
    installKeyring(testKeyring('k1'));
    server = await startTestServer();
    account = await makeUser(server);
    const profile = await account.client.request<{ createProfile: { id: string } }>(
      'mutation { createProfile(input: { displayName: "Ada" }) { id } }',
    );
    const post = await account.client.request<{ createPost: { id: string } }>(
      'mutation { createPost(input: { title: "Files", body: "b" }) { id } }',
    );
    const postId = post.body.data!.createPost.id;
    for (const upload of [
      await uploadFile(account.client, 'startProfileAvatarUpload', profile.body.data!.createProfile.id, await photoWithGps(), 'image/jpeg'),
      await uploadFile(account.client, 'startPostAttachmentsUpload', postId, pdfOf(1_300_000), 'application/pdf'),
      await uploadFile(account.client, 'startPostAttachmentsUpload', postId, pdfOf(900_000), 'application/pdf'),
      await uploadFile(account.client, 'startPostAttachmentsUpload', postId, await pngImage(), 'image/png'),
    ])
      expect(upload.status).toBe(204);
    // An upload still arriving, begun under k1.
    uploadUrl = (await startUpload(account.client, 'startPostAttachmentsUpload', postId, pending, 'application/pdf')).url!;
    expect((await tusCreate(uploadUrl, pending.length)).status).toBe(201);
    expect((await tusPatch(uploadUrl, 0, pending.subarray(0, 600_000))).offset).toBe(600_000);
    original = await servedDigests(server.bastion);
    contentsBefore = await attachedContents();
  });
  afterAll(async () => {
    await server?.close();
    installKeyring(testKeyring('k1'));
  });

  it('counts file contents per key id in the key status', async () => {
    expect(Object.keys(original)).toHaveLength(7);
    const status = await keysWith(testKeyring('k1')).status();
    expect(status.keyedData).toEqual([{ label: 'file contents', byKid: { k1: 8 } }]);
  });

  it('killed in the middle of a content, leaves every content whole on one key or the other, and every file downloadable', async () => {
    // Step 2 of a rotation: every instance writes under k2.
    installKeyring(testKeyring('k2'));
    const store = new DyingStore(new PostgresChunkStore(server.bastion.database.dataSource));
    const dying = new ContentKeys(
      server.bastion.database.dataSource,
      new Contents(server.bastion.database.dataSource, new Stores(store), () => testKeyring('k2')),
    );
    await expect(keysWith(testKeyring('k2'), [dying]).reencrypt()).rejects.toThrow('died in the middle of a content');
    expect(store.died).toBe(true);

    expect(await incomplete()).toEqual([]);
    // Those rewritten before it are on k2, the rest (and the one it died in) still on k1; nothing was left behind.
    const midway = await contentsByKid();
    expect(midway.k1).toBeGreaterThanOrEqual(2);
    expect((midway.k1 ?? 0) + (midway.k2 ?? 0)).toBe(8);
    expect(await servedDigests(server.bastion)).toEqual(original);
  });

  it('a rerun rewrites the rest, leaves the upload still arriving on k1 and says so, and k1 stays in use', async () => {
    const progress: { label?: string; done: number; total: number }[] = [];
    const result = await keysWith(testKeyring('k2')).reencrypt({ onProgress: (step) => progress.push(step) });
    expect(result.unreadable).toEqual([]);
    expect(result.left).toEqual([
      '1 upload in progress left on its old key: they finish under it or expire (BASTION_FILES_UPLOAD_TTL_HOURS); ' +
        'run `bastion keys reencrypt` again after',
    ]);
    const files = progress.filter((step) => step.label === 'file contents');
    expect(files[files.length - 1].done).toBe(files[files.length - 1].total);
    expect(await contentsByKid()).toEqual({ k1: 1, k2: 7 });

    const status = await keysWith(testKeyring('k2')).status();
    expect(status.keyedData).toEqual([{ label: 'file contents', byKid: { k1: 1, k2: 7 } }]);
    expect(status.keys.find((key) => key.kid === 'k1')?.retiredAt).toBeNull();

    // Every content is a new one; the old ones and their chunks are gone.
    const after = await attachedContents();
    expect(after.filter((id) => contentsBefore.includes(id))).toEqual([]);
    expect(await query('SELECT count(*)::int AS n FROM file_chunks WHERE content_id = ANY($1::uuid[])', [contentsBefore])).toEqual([
      { n: 0 },
    ]);
    expect(await incomplete()).toEqual([]);
    expect(await servedDigests(server.bastion)).toEqual(original);
  });

  it('once the upload is done, a rerun rewrites its file too, and retires k1', async () => {
    expect((await tusPatch(uploadUrl, 600_000, pending.subarray(600_000))).status).toBe(204);
    const withUpload = await servedDigests(server.bastion);
    expect(Object.values(withUpload)).toContain(sha256(pending));
    expect(await contentsByKid()).toEqual({ k1: 1, k2: 7 });

    const result = await keysWith(testKeyring('k2')).reencrypt();
    expect(result.left).toBeUndefined();
    expect(await contentsByKid()).toEqual({ k2: 8 });
    const status = await keysWith(testKeyring('k2')).status();
    expect(status.keys.find((key) => key.kid === 'k1')?.retiredAt).toEqual(server.clock.now());
    expect(await servedDigests(server.bastion)).toEqual(withUpload);
    // Under k2 alone, every file still opens.
    installKeyring(testKeyring('k2', ['k2']));
    try {
      expect(await servedDigests(server.bastion)).toEqual(withUpload);
    } finally {
      installKeyring(testKeyring('k2'));
    }
    expect((await keysWith(testKeyring('k2')).reencrypt()).rewritten).toBe(0);
  });
});
