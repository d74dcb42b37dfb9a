import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { s3ClientConfig } from '../../src/files/s3-chunk-store';
import { parseStorageUrl, S3StorageTarget } from '../../src/files/storage-url';
import { runMaintenance } from '../../src/maintenance';
import { TestAccount } from '../support/factories';
import {
  UploadMutation,
  contentIdsOfRow,
  download,
  pdfOf,
  photoWithGps,
  pngImage,
  startUpload,
  tusCreate,
  tusHead,
  tusPatch,
  tusUpload,
  uploadFile,
  attachmentsOf,
  avatarOf,
  makeOwner,
} from '../support/files';
import { keysUnder, startS3Server, TestS3Server } from '../support/s3-server';
import { TestServer, startTestServer } from '../support/test-server';

/**
 * Files in an S3-compatible bucket (s3rver on loopback), end to end through the real server:
 * chunks go to the bucket sealed, downloads and Range read them back, and what a replacement or a
 * deleted account leaves is queued (file_deletions) and removed from the bucket by the maintenance job.
 */

const CHUNK = 512 * 1024;
const PREFIX = 'bastion/';

let s3: TestS3Server;
let server: TestServer;
/** A client of our own, with the credentials s3rver knows, to look into the bucket around the server. */
let bucket: S3Client;
const savedEnv: Record<string, string | undefined> = {};

beforeAll(async () => {
  s3 = await startS3Server();
  // The server's store takes its credentials from the AWS chain, as in production: here, the environment.
  for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE']) savedEnv[name] = process.env[name];
  process.env.AWS_ACCESS_KEY_ID = s3.credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
  const storage = parseStorageUrl(`s3://${s3.bucket}?endpoint=${s3.endpoint}&region=us-east-1&prefix=${PREFIX}`);
  server = await startTestServer({ config: { storage } });
  bucket = new S3Client({ ...s3ClientConfig(storage as S3StorageTarget), credentials: s3.credentials });
});
afterAll(async () => {
  bucket?.destroy();
  await server?.close();
  await s3?.close();
  for (const [name, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

/** The chunk objects in the bucket, by content id. */
async function objectsByContent(): Promise<Map<string, number[]>> {
  const byContent = new Map<string, number[]>();
  for (const key of await keysUnder(bucket, s3.bucket, `${PREFIX}contents/`)) {
    const [contentId, index] = key.slice(`${PREFIX}contents/`.length).split('/');
    byContent.set(
      contentId,
      [...(byContent.get(contentId) ?? []), Number(index)].sort((a, b) => a - b),
    );
  }
  return byContent;
}

const owner = () => makeOwner(server, 'S3 user');

/** Uploads a whole file; returns the content its bytes arrived in (for an image, replaced by the re-encoded one, then deleted). */
async function uploadNamingRaw(account: TestAccount, mutation: UploadMutation, id: string, bytes: Buffer, type: string): Promise<string> {
  const started = await startUpload(account.client, mutation, id, bytes, type);
  const uploadId = new URL(started.url!).pathname.split('/').pop()!.split('.')[0];
  const [{ content_id: raw }] = await server.bastion.database.dataSource.query('SELECT content_id FROM uploads WHERE id = $1', [uploadId]);
  expect((await tusUpload(started.url!, bytes)).status).toBe(204);
  return raw;
}

const maintenance = () => runMaintenance(server.bastion.database.dataSource, server.bastion.maintenanceTasks, server.logger);
const queued = async (): Promise<string[]> =>
  (await server.bastion.database.dataSource.query("SELECT content_id FROM file_deletions WHERE store = 's3' ORDER BY content_id")).map(
    (row: { content_id: string }) => row.content_id,
  );

it('an upload resumed midway lands in the bucket as sealed chunks, and downloads (whole and by Range) give the bytes back', async () => {
  const { account, postId } = await owner();
  const pdf = pdfOf(2 * CHUNK + 1234);
  const started = await startUpload(account.client, 'startPostAttachmentsUpload', postId, pdf, 'application/pdf');
  expect((await tusCreate(started.url!, pdf.length)).status).toBe(201);
  const cut = CHUNK + 4321;
  expect((await tusPatch(started.url!, 0, pdf.subarray(0, cut))).offset).toBe(cut);
  expect((await tusHead(started.url!)).offset).toBe(cut);
  expect((await tusPatch(started.url!, cut, pdf.subarray(cut))).status).toBe(204);

  const [file] = await attachmentsOf(account, postId);
  const [contentId] = await contentIdsOfRow(server, postId);
  const [row] = await server.bastion.database.dataSource.query(
    'SELECT store, (SELECT count(*)::int FROM file_chunks WHERE content_id = $1) AS chunks FROM file_contents WHERE id = $1',
    [contentId],
  );
  expect(row).toEqual({ store: 's3', chunks: 0 });
  expect((await objectsByContent()).get(contentId)).toEqual([0, 1, 2]);
  // What the bucket holds is ciphertext.
  const object = await bucket.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `${PREFIX}contents/${contentId}/0` }));
  const sealed = Buffer.from(await object.Body!.transformToByteArray());
  expect(sealed.length).toBeGreaterThan(CHUNK);
  expect(sealed.includes(pdf.subarray(0, 9))).toBe(false);
  expect(sealed.includes(pdf.subarray(1000, 1064))).toBe(false);

  expect((await download(file.url)).bytes.equals(pdf)).toBe(true);
  for (const [range, start, end] of [
    [`bytes=${CHUNK - 10}-${2 * CHUNK + 10}`, CHUNK - 10, 2 * CHUNK + 10],
    ['bytes=-100', pdf.length - 100, pdf.length - 1],
    ['bytes=0-0', 0, 0],
  ] as const) {
    const got = await download(file.url, { range });
    expect({ status: got.status, range: got.headers.get('content-range') }).toEqual({
      status: 206,
      range: `bytes ${start}-${end}/${pdf.length}`,
    });
    expect(got.bytes.equals(pdf.subarray(start, end + 1))).toBe(true);
  }
  const unsatisfiable = await download(file.url, { range: `bytes=${pdf.length}-` });
  expect({ status: unsatisfiable.status, range: unsatisfiable.headers.get('content-range') }).toEqual({
    status: 416,
    range: `bytes */${pdf.length}`,
  });
});

it('a replaced avatar’s objects, and the photo as it was uploaded, are removed from the bucket by the maintenance job', async () => {
  const { account, profileId } = await owner();
  await maintenance();
  expect(await queued()).toEqual([]);
  // The photo as sent (GPS and all) is only ever an upload's content: once re-encoded and attached, it is queued for deletion.
  const photo = await photoWithGps(500, 400);
  const rawPhoto = await uploadNamingRaw(account, 'startProfileAvatarUpload', profileId, photo, 'image/jpeg');
  const old = await contentIdsOfRow(server, profileId);
  expect(old).toHaveLength(2); // the image and its thumbnail
  expect(old).not.toContain(rawPhoto);
  expect(await queued()).toEqual([rawPhoto]);
  const first = (await avatarOf(account, profileId))!;

  const rawPng = await uploadNamingRaw(account, 'startProfileAvatarUpload', profileId, await pngImage(256, 256), 'image/png');
  const current = await contentIdsOfRow(server, profileId);
  expect(current.filter((id) => old.includes(id))).toEqual([]);
  // Gone from the database at once, queued for the bucket, still in it until the job runs.
  const gone = [...old, rawPhoto, rawPng].sort();
  expect(await server.bastion.database.dataSource.query('SELECT id FROM file_contents WHERE id = ANY($1::uuid[])', [gone])).toEqual([]);
  expect(await queued()).toEqual(gone);
  expect((await download(first.url)).status).toBe(404);
  let objects = await objectsByContent();
  for (const id of [...gone, ...current]) expect(objects.get(id)).toEqual([0]);

  const removed = await maintenance();
  expect(removed).toMatchObject({ storeDeletions: gone.length });
  expect(await queued()).toEqual([]);
  objects = await objectsByContent();
  for (const id of gone) expect(objects.has(id)).toBe(false);
  for (const id of current) expect(objects.get(id)).toEqual([0]);
  const now = (await avatarOf(account, profileId))!;
  expect((await download(now.thumb!)).status).toBe(200);
});

it('a deleted account’s files and unfinished uploads leave the bucket after maintenance; other accounts’ stay', async () => {
  const leaving = await owner();
  const staying = await owner();
  const db = server.bastion.database.dataSource;
  await maintenance();
  const rawAvatar = await uploadNamingRaw(
    leaving.account,
    'startProfileAvatarUpload',
    leaving.profileId,
    await pngImage(100, 100),
    'image/png',
  );
  expect(
    (await uploadFile(leaving.account.client, 'startPostAttachmentsUpload', leaving.postId, pdfOf(CHUNK + 1), 'application/pdf')).status,
  ).toBe(204);
  expect(
    (await uploadFile(staying.account.client, 'startPostAttachmentsUpload', staying.postId, pdfOf(5_000), 'application/pdf')).status,
  ).toBe(204);
  const unfinished = pdfOf(3 * CHUNK);
  const pending = await startUpload(leaving.account.client, 'startPostAttachmentsUpload', leaving.postId, unfinished, 'application/pdf');
  await tusCreate(pending.url!, unfinished.length);
  expect((await tusPatch(pending.url!, 0, unfinished.subarray(0, CHUNK + 99))).offset).toBe(CHUNK + 99);

  const theirs = [
    ...(await contentIdsOfRow(server, leaving.profileId)),
    ...(await contentIdsOfRow(server, leaving.postId)),
    ...(await db.query('SELECT content_id AS id FROM uploads WHERE user_id = $1', [leaving.account.id])).map(
      (row: { id: string }) => row.id,
    ),
  ];
  expect(theirs).toHaveLength(2 + 1 + 1);
  const others = await contentIdsOfRow(server, staying.postId);
  let objects = await objectsByContent();
  expect(theirs.map((id) => objects.get(id)?.length ?? 0)).toEqual([1, 1, 2, 1]);

  const deleted = await leaving.account.client.request('mutation($input: DeleteAccountInput!) { deleteAccount(input: $input) }', {
    input: { password: leaving.account.password },
  });
  expect(deleted.body).toEqual({ data: { deleteAccount: true } });
  expect(await db.query('SELECT count(*)::int AS n FROM file_contents WHERE id = ANY($1::uuid[])', [theirs])).toEqual([{ n: 0 }]);
  expect(await queued()).toEqual([...theirs, rawAvatar].sort());

  expect(await maintenance()).toMatchObject({ storeDeletions: theirs.length + 1 });
  objects = await objectsByContent();
  for (const id of [...theirs, rawAvatar]) expect(objects.has(id)).toBe(false);
  for (const id of others) expect(objects.get(id)).toEqual([0]);
  expect(await queued()).toEqual([]);
  const [file] = await attachmentsOf(staying.account, staying.postId);
  expect((await download(file.url)).status).toBe(200);
});
