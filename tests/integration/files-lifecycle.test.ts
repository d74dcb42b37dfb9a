import { createHash } from 'node:crypto';
import { createLogger } from '../../src/logging';
import { RunningBastion, startBastion } from '../../src/main';
import { runMaintenance } from '../../src/maintenance';
import { lockWaiters } from '../support/eventually';
import { makeUser } from '../support/factories';
import {
  contentIdsOfRow,
  contentsLeft,
  download,
  fileRowCounts,
  pdfOf,
  photoWithGps,
  pngImage,
  startUpload,
  tusCreate,
  tusHead,
  tusPatch,
  uploadFile,
  FileJson,
  attachmentsOf,
  avatarOf,
  makeOwner,
} from '../support/files';
import { LogCollector } from '../support/log-collector';
import { TestServer, secondInstanceConfig, startTestServer } from '../support/test-server';

/**
 * A file's life: served by Range and ETag, replaced, removed, taken with its row or its account,
 * and an unfinished upload expiring; an upload that moves between two instances mid-way.
 */

const KIB = 1024;
const CHUNK = 512 * KIB;

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server?.close());

const owner = () => makeOwner(server, 'Owner');

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('downloads', () => {
  /** Five and a bit chunks: ranges cross chunk boundaries and the store's batches of chunks. */
  const pdf = pdfOf(5 * CHUNK + 12_345);
  let file: FileJson;
  let image: FileJson;

  beforeAll(async () => {
    const { account, profileId, postId } = await owner();
    expect((await uploadFile(account.client, 'startPostAttachmentsUpload', postId, pdf, 'application/pdf')).status).toBe(204);
    expect((await uploadFile(account.client, 'startProfileAvatarUpload', profileId, await pngImage(400, 300), 'image/png')).status).toBe(
      204,
    );
    [file] = await attachmentsOf(account, postId);
    image = (await avatarOf(account, profileId))!;
  });

  it('serves the whole file with its ETag, private caching for the URL’s life, nosniff, a sandbox CSP, as an attachment', async () => {
    const got = await download(file.url);
    expect(got.status).toBe(200);
    expect(got.bytes.equals(pdf)).toBe(true);
    expect(
      Object.fromEntries(
        [
          'etag',
          'content-type',
          'content-length',
          'content-disposition',
          'x-content-type-options',
          'content-security-policy',
          'accept-ranges',
        ].map((name) => [name, got.headers.get(name)]),
      ),
    ).toEqual({
      etag: `"${sha256(pdf)}"`,
      'content-type': 'application/pdf',
      'content-length': String(pdf.length),
      'content-disposition': 'attachment',
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'none'; sandbox",
      'accept-ranges': 'bytes',
    });
    const cacheControl = /^private, max-age=(\d+)$/.exec(got.headers.get('cache-control') ?? '');
    expect(cacheControl).not.toBeNull();
    const expires = Number(new URL(file.url).searchParams.get('expires'));
    expect(Number(cacheControl![1])).toBe(expires - Math.floor(server.clock.now().getTime() / 1000));
    expect(Number(cacheControl![1])).toBeLessThanOrEqual(server.config.filesUrlTtlSeconds);
  });

  it('serves images inline, and each variant with an ETag of its own', async () => {
    const original = await download(image.url);
    const thumb = await download(image.thumb!);
    expect([original.headers.get('content-disposition'), thumb.headers.get('content-disposition')]).toEqual(['inline', 'inline']);
    expect([original.headers.get('content-type'), original.headers.get('x-content-type-options')]).toEqual(['image/png', 'nosniff']);
    expect(original.headers.get('etag')).toBe(`"${image.sha256}"`);
    expect(thumb.headers.get('etag')).toBe(`"${sha256(thumb.bytes)}"`);
    expect(thumb.headers.get('etag')).not.toBe(original.headers.get('etag'));
  });

  it.each([
    ['bytes=0-99', 0, 99],
    ['bytes=100-', 100, 5 * CHUNK + 12_344],
    ['bytes=-50', 5 * CHUNK + 12_345 - 50, 5 * CHUNK + 12_344],
    ['bytes=524238-524388', CHUNK - 50, CHUNK + 100],
    // Chunks 1 to 5: more than one batch of the store's reads.
    [`bytes=${CHUNK + 7}-${5 * CHUNK + 3}`, CHUNK + 7, 5 * CHUNK + 3],
    ['bytes=0-999999999', 0, 5 * CHUNK + 12_344],
    [`bytes=${2 * CHUNK}-${2 * CHUNK}`, 2 * CHUNK, 2 * CHUNK],
  ])('Range %s: 206 with exactly those bytes', async (range, start, end) => {
    const got = await download(file.url, { range });
    expect({ status: got.status, contentRange: got.headers.get('content-range'), length: got.headers.get('content-length') }).toEqual({
      status: 206,
      contentRange: `bytes ${start}-${end}/${pdf.length}`,
      length: String(end - start + 1),
    });
    expect(got.bytes.equals(pdf.subarray(start, end + 1))).toBe(true);
  });

  it.each([`bytes=${5 * CHUNK + 12_345}-`, 'bytes=999999999-', 'bytes=-0', 'bytes=500-100'])(
    'an unsatisfiable Range (%s) is 416 with Content-Range */size, and no bytes of the file',
    async (range) => {
      const got = await download(file.url, { range });
      expect({ status: got.status, contentRange: got.headers.get('content-range') }).toEqual({
        status: 416,
        contentRange: `bytes */${pdf.length}`,
      });
      expect(got.bytes.includes(pdf.subarray(0, 16))).toBe(false);
    },
  );

  it('several ranges, or an If-Range that no longer matches, get the whole file', async () => {
    for (const headers of [{ range: 'bytes=0-1,5-6' }, { range: 'bytes=0-99', 'if-range': '"0000"' }] as Record<string, string>[]) {
      const got = await download(file.url, headers);
      expect({ status: got.status, length: got.bytes.length }).toEqual({ status: 200, length: pdf.length });
    }
    const matching = await download(file.url, { range: 'bytes=0-99', 'if-range': `"${file.sha256}"` });
    expect({ status: matching.status, length: matching.bytes.length }).toEqual({ status: 206, length: 100 });
  });

  it('If-None-Match with the ETag is 304 without a body; another ETag gets the file', async () => {
    const notModified = await download(file.url, { 'if-none-match': `"${file.sha256}"` });
    expect({ status: notModified.status, length: notModified.bytes.length, etag: notModified.headers.get('etag') }).toEqual({
      status: 304,
      length: 0,
      etag: `"${file.sha256}"`,
    });
    expect((await download(image.url, { 'if-none-match': `"${image.sha256}"` })).status).toBe(304);
    const changed = await download(file.url, { 'if-none-match': `"${'0'.repeat(64)}"` });
    expect({ status: changed.status, length: changed.bytes.length }).toEqual({ status: 200, length: pdf.length });
  });

  it('HEAD gives the headers, sizes and ranges without the bytes', async () => {
    const head = await download(file.url, {}, 'HEAD');
    expect({
      status: head.status,
      length: head.headers.get('content-length'),
      etag: head.headers.get('etag'),
      body: head.bytes.length,
    }).toEqual({
      status: 200,
      length: String(pdf.length),
      etag: `"${file.sha256}"`,
      body: 0,
    });
    const ranged = await download(file.url, { range: 'bytes=-50' }, 'HEAD');
    expect({ status: ranged.status, range: ranged.headers.get('content-range'), length: ranged.headers.get('content-length') }).toEqual({
      status: 206,
      range: `bytes ${pdf.length - 50}-${pdf.length - 1}/${pdf.length}`,
      length: '50',
    });
  });
});

describe('replacing, removing, deleting', () => {
  it('a new avatar replaces the old one: the old file, its variant and their contents and chunks are gone as it is attached', async () => {
    const { account, profileId } = await owner();
    expect(
      (await uploadFile(account.client, 'startProfileAvatarUpload', profileId, await photoWithGps(600, 400), 'image/jpeg')).status,
    ).toBe(204);
    const first = (await avatarOf(account, profileId))!;
    const oldContents = await contentIdsOfRow(server, profileId);
    expect(oldContents).toHaveLength(2); // the original and THUMB_256
    expect(await contentsLeft(server, oldContents)).toEqual({ contents: 2, chunks: 2 });

    // No maintenance run in between: the replacement's own transaction removed them.
    expect((await uploadFile(account.client, 'startProfileAvatarUpload', profileId, await pngImage(300, 300), 'image/png')).status).toBe(
      204,
    );
    expect(await contentsLeft(server, oldContents)).toEqual({ contents: 0, chunks: 0 });
    const second = (await avatarOf(account, profileId))!;
    expect(second.id).not.toBe(first.id);
    expect(second.contentType).toBe('image/png');
    expect(await server.bastion.database.dataSource.query('SELECT count(*)::int AS n FROM files WHERE row_id = $1', [profileId])).toEqual([
      { n: 1 },
    ]);
    expect((await download(first.url)).status).toBe(404);
    expect((await download(second.url)).status).toBe(200);
  });

  it('two replacements finishing at the same moment leave exactly one avatar, and no content of the other', async () => {
    const { account, profileId } = await owner();
    const db = server.bastion.database.dataSource;
    const images = [await pngImage(200, 150), await pngImage(150, 200)];
    const urls: string[] = [];
    for (const image of images) {
      const started = await startUpload(account.client, 'startProfileAvatarUpload', profileId, image, 'image/png');
      expect((await tusCreate(started.url!, image.length)).status).toBe(201);
      urls.push(started.url!);
    }
    // Hold the profile row so both attachments reach it, then let them go at once.
    const runner = db.createQueryRunner();
    await runner.connect();
    let finishing: Promise<unknown>;
    try {
      await runner.startTransaction();
      await runner.query('SELECT 1 FROM profiles WHERE id = $1 FOR UPDATE', [profileId]);
      finishing = Promise.all(urls.map((url, index) => tusPatch(url, 0, images[index])));
      await lockWaiters(db, 2);
      await runner.commitTransaction();
    } finally {
      await runner.release();
    }
    const answers = (await finishing) as { status: number }[];
    expect(answers.map((answer) => answer.status)).toEqual([204, 204]);
    const files = await db.query('SELECT id, content_id FROM files WHERE table_name = $1 AND row_id = $2', ['profiles', profileId]);
    expect(files).toHaveLength(1);
    const kept = await contentIdsOfRow(server, profileId);
    expect(kept).toHaveLength(2);
    // The loser's contents went with it: only the winner's original and thumbnail remain of this profile's uploads.
    expect(await db.query('SELECT count(*)::int AS n FROM uploads WHERE row_id = $1', [profileId])).toEqual([{ n: 0 }]);
    expect((await avatarOf(account, profileId))!.id).toBe(files[0].id);
    const [{ orphans }] = await db.query(
      `SELECT count(*)::int AS orphans FROM file_contents c WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.content_id = c.id)
         AND NOT EXISTS (SELECT 1 FROM file_variants v WHERE v.content_id = c.id) AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.content_id = c.id)`,
    );
    expect(orphans).toBe(0);
  });

  it('removeFile removes the file’s contents and chunks at once', async () => {
    const { account, postId } = await owner();
    expect((await uploadFile(account.client, 'startPostAttachmentsUpload', postId, pdfOf(CHUNK + 10), 'application/pdf')).status).toBe(204);
    expect((await uploadFile(account.client, 'startPostAttachmentsUpload', postId, await pngImage(), 'image/png')).status).toBe(204);
    const [pdfFile, imageFile] = await attachmentsOf(account, postId);
    const before = await contentIdsOfRow(server, postId);
    expect(await contentsLeft(server, before)).toEqual({ contents: 4, chunks: 5 }); // PDF (2 chunks); PNG, thumb, medium (1 each)
    for (const removed of [imageFile, pdfFile]) {
      const result = await account.client.request('mutation($id: ID!) { removeFile(id: $id) }', { id: removed.id });
      expect(result.body).toEqual({ data: { removeFile: true } });
    }
    expect(await contentsLeft(server, before)).toEqual({ contents: 0, chunks: 0 });
    expect(await attachmentsOf(account, postId)).toEqual([]);
    expect((await download(pdfFile.url)).status).toBe(404);
  });

  it('deleting a post removes its attachments and their contents', async () => {
    const { account, postId } = await owner();
    expect((await uploadFile(account.client, 'startPostAttachmentsUpload', postId, pdfOf(3_000), 'application/pdf')).status).toBe(204);
    expect((await uploadFile(account.client, 'startPostAttachmentsUpload', postId, await pngImage(), 'image/png')).status).toBe(204);
    // An upload under way for the post goes too.
    const pending = await startUpload(account.client, 'startPostAttachmentsUpload', postId, { length: 5_000 }, 'application/pdf');
    await tusCreate(pending.url!, 5_000);
    const contents = await contentIdsOfRow(server, postId);
    expect(contents).toHaveLength(4);
    const [file] = await attachmentsOf(account, postId);
    expect((await account.client.request('mutation($id: ID!) { deletePost(id: $id) }', { id: postId })).body).toEqual({
      data: { deletePost: true },
    });
    expect(await contentsLeft(server, contents)).toEqual({ contents: 0, chunks: 0 });
    expect(await server.bastion.database.dataSource.query('SELECT count(*)::int AS n FROM files WHERE row_id = $1', [postId])).toEqual([
      { n: 0 },
    ]);
    expect(await server.bastion.database.dataSource.query('SELECT count(*)::int AS n FROM uploads WHERE row_id = $1', [postId])).toEqual([
      { n: 0 },
    ]);
    expect((await download(file.url)).status).toBe(404);
    expect((await tusHead(pending.url!)).status).toBe(404);
  });

  it('deleting the account leaves no file, content, chunk or upload of that user, whoever uploaded to their rows', async () => {
    const { account, profileId, postId } = await owner();
    const admin = await makeUser(server, { roles: ['admin'] });
    const db = server.bastion.database.dataSource;
    expect((await uploadFile(account.client, 'startProfileAvatarUpload', profileId, await photoWithGps(), 'image/jpeg')).status).toBe(204);
    expect((await uploadFile(account.client, 'startPostAttachmentsUpload', postId, pdfOf(CHUNK * 2 + 5), 'application/pdf')).status).toBe(
      204,
    );
    // An admin's attachment on the user's post, and the user's unfinished upload (a chunk stored, the rest in its tail).
    expect((await uploadFile(admin.client, 'startPostAttachmentsUpload', postId, pdfOf(2_000), 'application/pdf')).status).toBe(204);
    const unfinished = pdfOf(CHUNK * 3);
    const pending = await startUpload(account.client, 'startPostAttachmentsUpload', postId, unfinished, 'application/pdf');
    await tusCreate(pending.url!, unfinished.length);
    expect((await tusPatch(pending.url!, 0, unfinished.subarray(0, CHUNK + 1000))).offset).toBe(CHUNK + 1000);

    const contents = [
      ...(await contentIdsOfRow(server, profileId)),
      ...(await contentIdsOfRow(server, postId)),
      ...(await db.query('SELECT content_id AS id FROM uploads WHERE user_id = $1', [account.id])).map((row: { id: string }) => row.id),
    ];
    expect(contents).toHaveLength(2 + 2 + 1);
    expect((await contentsLeft(server, contents)).chunks).toBeGreaterThanOrEqual(2 + 3 + 1 + 1);

    const deleted = await account.client.request('mutation($input: DeleteAccountInput!) { deleteAccount(input: $input) }', {
      input: { password: account.password },
    });
    expect(deleted.body).toEqual({ data: { deleteAccount: true } });
    expect(await contentsLeft(server, contents)).toEqual({ contents: 0, chunks: 0 });
    const [left] = await db.query(
      'SELECT (SELECT count(*)::int FROM files WHERE uploaded_by = $1 OR row_id = ANY($2::uuid[])) AS files, ' +
        '(SELECT count(*)::int FROM uploads WHERE user_id = $1 OR row_id = ANY($2::uuid[])) AS uploads',
      [account.id, [profileId, postId]],
    );
    expect(left).toEqual({ files: 0, uploads: 0 });
    expect((await tusHead(pending.url!)).status).toBe(404);
  });
});

describe('two instances on one database', () => {
  let second: RunningBastion;

  beforeAll(async () => {
    second = await startBastion(secondInstanceConfig(server), {
      logger: createLogger({ level: 'warn', pretty: false, destination: new LogCollector() }),
      clock: server.clock,
    });
  });
  afterAll(() => second?.stop());

  const onSecond = (url: string) => {
    const moved = new URL(url);
    const target = new URL(second.url);
    moved.host = target.host;
    return moved.href;
  };

  it('an upload started and begun on one instance is resumed on the other and completes with the same bytes', async () => {
    const { account, postId } = await owner();
    const pdf = pdfOf(2 * CHUNK + 77_777);
    const started = await startUpload(account.client, 'startPostAttachmentsUpload', postId, pdf, 'application/pdf');
    expect((await tusCreate(started.url!, pdf.length)).status).toBe(201);
    // One chunk and a bit on the first: the bit waits, sealed, in the upload row, which the second reads.
    const cut = CHUNK + 100_000;
    expect((await tusPatch(started.url!, 0, pdf.subarray(0, cut))).offset).toBe(cut);
    expect((await tusHead(onSecond(started.url!))).offset).toBe(cut);
    const done = await tusPatch(onSecond(started.url!), cut, pdf.subarray(cut));
    expect({ status: done.status, offset: done.offset }).toEqual({ status: 204, offset: pdf.length });
    const [file] = await attachmentsOf(account, postId);
    expect(file.sha256).toBe(sha256(pdf));
    for (const url of [file.url, onSecond(file.url)]) expect((await download(url)).bytes.equals(pdf)).toBe(true);
  });

  it('two instances writing the same upload at once: exactly one request’s bytes are kept, the other is refused with 409', async () => {
    const { account, postId } = await owner();
    const db = server.bastion.database.dataSource;
    const versions = [pdfOf(3 * CHUNK), pdfOf(3 * CHUNK)];
    const started = await startUpload(account.client, 'startPostAttachmentsUpload', postId, versions[0], 'application/pdf');
    expect((await tusCreate(started.url!, 3 * CHUNK)).status).toBe(201);
    const uploadId = new URL(started.url!).pathname.split('/').pop()!.split('.')[0];
    const part = 2 * CHUNK + 5_000;
    // Hold the upload row: both requests pass the offset check and reach their claim of chunk 0 before either is written.
    const runner = db.createQueryRunner();
    await runner.connect();
    let sending: Promise<{ status: number }[]>;
    try {
      await runner.startTransaction();
      await runner.query('SELECT 1 FROM uploads WHERE id = $1 FOR UPDATE', [uploadId]);
      sending = Promise.all([
        tusPatch(started.url!, 0, versions[0].subarray(0, part)),
        tusPatch(onSecond(started.url!), 0, versions[1].subarray(0, part)),
      ]);
      await lockWaiters(db, 2);
      await runner.commitTransaction();
    } finally {
      await runner.release();
    }
    const statuses = (await sending).map((answer) => answer.status);
    expect([...statuses].sort()).toEqual([204, 409]);
    const winner = versions[statuses.indexOf(204)];
    expect((await tusHead(started.url!)).offset).toBe(part);
    expect((await tusPatch(onSecond(started.url!), part, winner.subarray(part))).status).toBe(204);
    const [file] = await attachmentsOf(account, postId);
    expect(file.sha256).toBe(sha256(winner));
    expect((await download(file.url)).bytes.equals(winner)).toBe(true);
  });
});

describe('unfinished uploads', () => {
  it('expire after 24 hours: refused at once, then the maintenance job deletes them with their bytes; live ones stay', async () => {
    const { account, postId } = await owner();
    const db = server.bastion.database.dataSource;
    const pdf = pdfOf(2 * CHUNK);
    const started = await startUpload(account.client, 'startPostAttachmentsUpload', postId, pdf, 'application/pdf');
    await tusCreate(started.url!, pdf.length);
    expect((await tusPatch(started.url!, 0, pdf.subarray(0, CHUNK + 10))).offset).toBe(CHUNK + 10);
    const [{ content_id: contentId }] = await db.query('SELECT content_id FROM uploads WHERE user_id = $1', [account.id]);
    expect(await contentsLeft(server, [contentId])).toEqual({ contents: 1, chunks: 1 });

    server.clock.advance(24 * 60 * 60 * 1000 - 1_000);
    expect((await tusHead(started.url!)).offset).toBe(CHUNK + 10);
    server.clock.advance(1_000);
    expect((await tusHead(started.url!)).status).toBe(404);
    expect((await tusPatch(started.url!, CHUNK + 10, pdf.subarray(CHUNK + 10))).status).toBe(404);

    // An upload started now is not touched.
    const fresh = await owner();
    const live = await startUpload(fresh.account.client, 'startPostAttachmentsUpload', fresh.postId, pdf, 'application/pdf');
    await tusCreate(live.url!, pdf.length);
    expect((await tusPatch(live.url!, 0, pdf.subarray(0, 1_000))).offset).toBe(1_000);

    const before = await fileRowCounts(server);
    const removed = await runMaintenance(db, server.bastion.maintenanceTasks, server.logger);
    expect(removed).toMatchObject({ expiredUploads: 1, orphanFileContents: 0 });
    expect(await contentsLeft(server, [contentId])).toEqual({ contents: 0, chunks: 0 });
    expect(await db.query('SELECT count(*)::int AS n FROM uploads WHERE user_id = $1', [account.id])).toEqual([{ n: 0 }]);
    expect(await fileRowCounts(server)).toMatchObject({
      uploads: before.uploads - 1,
      contents: before.contents - 1,
      chunks: before.chunks - 1,
    });
    expect((await tusPatch(live.url!, 1_000, pdf.subarray(1_000))).status).toBe(204);
  });
});
