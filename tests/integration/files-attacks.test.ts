import sharp from 'sharp';
import { lockWaiters } from '../support/eventually';
import { TestAccount, codesOf, makeUser } from '../support/factories';
import {
  FileRowCounts,
  download,
  fileRowCounts,
  gifImage,
  pdfOf,
  photoWithGps,
  pngDeclaring,
  pngImage,
  refusalsAudited,
  startUpload,
  tusCreate,
  tusHead,
  tusPatch,
  tusUpload,
  UploadMutation,
  zipBomb,
  FileJson,
  attachmentsOf,
  avatarOf,
  makeOwner,
} from '../support/files';
import { TestServer, startTestServer } from '../support/test-server';

/**
 * What a hostile app or a hostile file can try: lie about the type, hide markup or a bomb behind
 * an image's name, send more than it declared, overrun its quota with uploads at once, forge
 * URLs. Each refusal keeps nothing (no content, chunk or upload row is left) and is counted in
 * the audit log.
 */

const MIB = 1024 * 1024;
/** Small enough that a few starts overrun it, large enough for an avatar at its 5 MiB limit. */
const QUOTA = 6 * MIB;

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ config: { filesAccountQuotaBytes: QUOTA } });
});
afterAll(() => server?.close());

/** A new account with a profile and a post: each test spends a quota of its own. */
const owner = () => makeOwner(server, 'Mallory');

/**
 * Runs `attempt` and checks what a refusal must leave: the files tables as they were before it
 * (nothing partial), and one more refusal of `reason` in the audit log.
 */
async function expectRefusalLeavesNothing(reason: string, attempt: () => Promise<void>, hits = 1): Promise<void> {
  const before: FileRowCounts = await fileRowCounts(server);
  const audited = (await refusalsAudited(server))[reason] ?? 0;
  await attempt();
  expect(await fileRowCounts(server)).toEqual(before);
  expect((await refusalsAudited(server))[reason] ?? 0).toBe(audited + hits);
}

/** Start, create, send: a refusal of the bytes is a 422 FILE_REJECTED with its reason. */
async function expectFileRejected(
  account: TestAccount,
  mutation: UploadMutation,
  id: string,
  bytes: Buffer,
  claimed: string,
  reason: string,
): Promise<void> {
  const started = await startUpload(account.client, mutation, id, bytes, claimed);
  expect(started.errors).toBeUndefined();
  const answer = await tusUpload(started.url!, bytes);
  expect({ status: answer.status, body: JSON.parse(answer.body) }).toEqual({
    status: 422,
    body: { errors: [{ message: expect.any(String), extensions: { code: 'FILE_REJECTED', reason } }] },
  });
  // The upload is gone with its bytes: resuming finds nothing.
  expect((await tusHead(started.url!)).status).toBe(404);
}

describe('the type is read from the bytes', () => {
  it('a phone photo’s GPS EXIF is gone from the stored file and its thumbnail', async () => {
    const { account, profileId } = await owner();
    const photo = await photoWithGps(800, 600);
    expect((await sharp(photo).metadata()).exif?.includes('WGS-84-HOME')).toBe(true);
    const started = await startUpload(account.client, 'startProfileAvatarUpload', profileId, photo, 'image/jpeg');
    expect((await tusUpload(started.url!, photo)).status).toBe(204);
    const avatar = (await avatarOf(account, profileId))!;
    for (const url of [avatar.url, avatar.thumb!]) {
      const { bytes } = await download(url);
      const metadata = await sharp(bytes).metadata();
      expect({ exif: metadata.exif, xmp: metadata.xmp, iptc: metadata.iptc }).toEqual({ exif: undefined, xmp: undefined, iptc: undefined });
      for (const secret of ['WGS-84-HOME', 'PhoneCam', 'Pocket-9']) expect(bytes.includes(Buffer.from(secret))).toBe(false);
    }
  });

  it('a PNG claimed as image/jpeg is stored and served as image/png', async () => {
    const { account, profileId } = await owner();
    const png = await pngImage(120, 90);
    const started = await startUpload(account.client, 'startProfileAvatarUpload', profileId, png, 'image/jpeg');
    expect((await tusUpload(started.url!, png)).status).toBe(204);
    const avatar = (await avatarOf(account, profileId))!;
    expect(avatar.contentType).toBe('image/png');
    const served = await download(avatar.url);
    expect(served.headers.get('content-type')).toBe('image/png');
    expect((await sharp(served.bytes).metadata()).format).toBe('png');
  });

  // Both sample fields take PNG, so "a PNG where PNG is not allowed" is shown with other real types
  // each field does not take, claimed as one it does.
  it.each([
    ['a PDF claimed as image/jpeg, on Profile.avatar (images only)', 'startProfileAvatarUpload', () => pdfOf(3_000), 'image/jpeg'],
    ['a GIF claimed as image/png, on Post.attachments (no GIF)', 'startPostAttachmentsUpload', () => gifImage(), 'image/png'],
    [
      'an HTML page claimed as image/png',
      'startProfileAvatarUpload',
      () => Buffer.from('<!doctype html><html><body><script>fetch("/graphql")</script></body></html>'),
      'image/png',
    ],
    [
      'an SVG with a script, claimed as image/png',
      'startProfileAvatarUpload',
      () => Buffer.from('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.domain)"><rect/></svg>'),
      'image/png',
    ],
    [
      'an SVG claimed as image/jpeg, on Post.attachments',
      'startPostAttachmentsUpload',
      () => Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
      'image/jpeg',
    ],
    ['a zip bomb (64 MiB of zeros deflated) claimed as a PDF', 'startPostAttachmentsUpload', () => zipBomb(), 'application/pdf'],
  ] as const)('%s is refused: FILE_REJECTED / TYPE_NOT_ALLOWED, nothing kept', async (_what, mutation, bytesOf, claimed) => {
    const { account, profileId, postId } = await owner();
    const bytes = await bytesOf();
    await expectRefusalLeavesNothing('type', () =>
      expectFileRejected(
        account,
        mutation,
        mutation === 'startProfileAvatarUpload' ? profileId : postId,
        bytes,
        claimed,
        'TYPE_NOT_ALLOWED',
      ),
    );
    expect(await avatarOf(account, profileId)).toBeNull();
    expect(await attachmentsOf(account, postId)).toEqual([]);
  });

  it('a refused file sent in two requests leaves nothing of the first (its bytes were kept sealed in the upload)', async () => {
    const { account, profileId } = await owner();
    const page = Buffer.concat([Buffer.from('<html><body>'), Buffer.alloc(700 * 1024, 'A'), Buffer.from('</body></html>')]);
    await expectRefusalLeavesNothing('type', async () => {
      const started = await startUpload(account.client, 'startProfileAvatarUpload', profileId, page, 'image/png');
      expect((await tusCreate(started.url!, page.length)).status).toBe(201);
      // Less than a chunk: nothing is sniffed yet, the bytes wait in the upload's sealed tail.
      expect((await tusPatch(started.url!, 0, page.subarray(0, 1000))).offset).toBe(1000);
      const refused = await tusPatch(started.url!, 1000, page.subarray(1000));
      expect({ status: refused.status, reason: JSON.parse(refused.body).errors[0].extensions.reason }).toEqual({
        status: 422,
        reason: 'TYPE_NOT_ALLOWED',
      });
    });
  });

  it('a pixel bomb (a PNG header claiming 30000×30000) is refused from its header: FILE_REJECTED / PIXEL_LIMIT', async () => {
    const { account, profileId } = await owner();
    const bomb = pngDeclaring(30_000, 30_000);
    expect(bomb.length).toBeLessThan(2_000);
    await expectRefusalLeavesNothing('image', () =>
      expectFileRejected(account, 'startProfileAvatarUpload', profileId, bomb, 'image/png', 'PIXEL_LIMIT'),
    );
    expect(await avatarOf(account, profileId)).toBeNull();
  });

  it('a JPEG that starts right and then is not one is refused: FILE_REJECTED / UNDECODABLE', async () => {
    const { account, profileId } = await owner();
    const broken = Buffer.concat([(await photoWithGps(64, 64)).subarray(0, 200), Buffer.alloc(5_000, 0x41)]);
    await expectRefusalLeavesNothing('image', () =>
      expectFileRejected(account, 'startProfileAvatarUpload', profileId, broken, 'image/jpeg', 'UNDECODABLE'),
    );
  });
});

describe('sizes', () => {
  it('byteSize one byte over the field’s limit is refused at start; at the limit it is accepted', async () => {
    const { account, profileId, postId } = await owner();
    for (const [mutation, id, limit] of [
      ['startProfileAvatarUpload', profileId, 5 * MIB],
      ['startPostAttachmentsUpload', postId, 25 * MIB],
    ] as const) {
      await expectRefusalLeavesNothing('size', async () => {
        const refused = await startUpload(account.client, mutation, id, { length: limit + 1 }, 'image/png');
        expect({ url: refused.url, code: refused.errors?.[0].extensions?.code, field: refused.errors?.[0].extensions?.field }).toEqual({
          url: undefined,
          code: 'BAD_USER_INPUT',
          field: 'byteSize',
        });
      });
    }
    const atLimit = await startUpload(account.client, 'startProfileAvatarUpload', profileId, { length: 5 * MIB }, 'image/png');
    expect(atLimit.errors).toBeUndefined();
    await tusCreate(atLimit.url!, 5 * MIB);
    expect((await fetch(atLimit.url!, { method: 'DELETE', headers: { 'tus-resumable': '1.0.0' } })).status).toBe(204);
  });

  it('an Upload-Length other than the declared byteSize is refused; the declared one then works', async () => {
    const { account, postId } = await owner();
    const pdf = pdfOf(10_000);
    const started = await startUpload(account.client, 'startPostAttachmentsUpload', postId, pdf, 'application/pdf');
    const before = await fileRowCounts(server);
    for (const length of [pdf.length + 1, pdf.length - 1, 25 * MIB]) {
      const refused = await tusCreate(started.url!, length);
      expect({ status: refused.status, code: JSON.parse(refused.body).errors[0].extensions.code }).toEqual({
        status: 400,
        code: 'BAD_REQUEST',
      });
    }
    expect(await fileRowCounts(server)).toEqual(before);
    expect((await tusUpload(started.url!, pdf)).status).toBe(204);
    expect((await attachmentsOf(account, postId)).map((file) => file.byteSize)).toEqual([pdf.length]);
  });

  it('more bytes than declared are refused (413), with or without a Content-Length, and nothing past the size is kept', async () => {
    const { account, postId } = await owner();
    const pdf = pdfOf(20_000);
    const started = await startUpload(account.client, 'startPostAttachmentsUpload', postId, pdf, 'application/pdf');
    expect((await tusCreate(started.url!, pdf.length)).status).toBe(201);
    const before = await fileRowCounts(server);
    const tooMuch = Buffer.concat([pdf, Buffer.alloc(5_000, 0x20)]);
    const withLength = await tusPatch(started.url!, 0, tooMuch);
    expect({ status: withLength.status, code: JSON.parse(withLength.body).errors[0].extensions.code }).toEqual({
      status: 413,
      code: 'BAD_REQUEST',
    });
    // Streamed (chunked transfer, no Content-Length): the server only learns it by counting.
    const streamed = await fetch(started.url!, {
      method: 'PATCH',
      headers: { 'tus-resumable': '1.0.0', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new Uint8Array(tooMuch.subarray(0, 15_000)));
          controller.enqueue(new Uint8Array(tooMuch.subarray(15_000)));
          controller.close();
        },
      }),
      duplex: 'half',
    });
    const body = await streamed.text();
    expect({ status: streamed.status, code: JSON.parse(body).errors?.[0]?.extensions?.code }).toEqual({ status: 413, code: 'BAD_REQUEST' });
    expect(server.logs.lines.filter((line) => line.msg === 'files: an upload request failed')).toEqual([]);
    // Whatever was kept lies within the declared size, and the upload still completes with the right bytes.
    const offset = (await tusHead(started.url!)).offset!;
    expect(offset).toBeLessThanOrEqual(pdf.length);
    expect(await fileRowCounts(server)).toMatchObject({ files: before.files, uploads: before.uploads });
    expect((await tusPatch(started.url!, offset, pdf.subarray(offset))).status).toBe(204);
    const [file] = await attachmentsOf(account, postId);
    expect((await download(file.url)).bytes.equals(pdf)).toBe(true);
  });
});

describe('quota', () => {
  it('uploads started at the same time: exactly those that fit the quota succeed', async () => {
    const { account, postId } = await owner();
    const size = 2 * MIB;
    const before = await fileRowCounts(server);
    const audited = (await refusalsAudited(server)).quota ?? 0;
    const results = await Promise.all(
      Array.from({ length: 7 }, () =>
        startUpload(account.client, 'startPostAttachmentsUpload', postId, { length: size }, 'application/pdf'),
      ),
    );
    const started = results.filter((result) => result.url !== undefined);
    expect(started).toHaveLength(QUOTA / size);
    expect(results.filter((result) => result.url === undefined).map((result) => result.errors?.[0].extensions?.code)).toEqual(
      Array(7 - QUOTA / size).fill('QUOTA_EXCEEDED'),
    );
    const after = await fileRowCounts(server);
    expect({ uploads: after.uploads - before.uploads, contents: after.contents - before.contents }).toEqual({
      uploads: QUOTA / size,
      contents: QUOTA / size,
    });
    expect((await refusalsAudited(server)).quota).toBe(audited + 7 - QUOTA / size);
    // Giving one up frees its share at once.
    expect((await tusCreate(started[0].url!, size)).status).toBe(201);
    expect((await fetch(started[0].url!, { method: 'DELETE', headers: { 'tus-resumable': '1.0.0' } })).status).toBe(204);
    const again = await startUpload(account.client, 'startPostAttachmentsUpload', postId, { length: size }, 'application/pdf');
    expect(again.errors).toBeUndefined();
  });

  it('Post.attachments holds at most 10 files, even when two accounts start the 10th at the same moment', async () => {
    const { account, postId } = await owner();
    // An admin may attach to any post: the limit holds across accounts, whose quota locks do not serialize each other.
    const admin = await makeUser(server, { roles: ['admin'] });
    const start = (who: TestAccount) => startUpload(who.client, 'startPostAttachmentsUpload', postId, { length: 1_000 }, 'application/pdf');
    const first = await Promise.all(Array.from({ length: 9 }, () => start(account)));
    expect(first.filter((result) => result.url !== undefined)).toHaveLength(9);
    // Both starts wait at their account's quota lock (held here), then run side by side: the field's count must still hold.
    const db = server.bastion.database.dataSource;
    const runner = db.createQueryRunner();
    await runner.connect();
    let racing: Promise<Awaited<ReturnType<typeof start>>[]>;
    try {
      await runner.startTransaction();
      await runner.query(
        "SELECT pg_advisory_xact_lock(hashtextextended('bastion.files.quota:' || $1, 0)), " +
          "pg_advisory_xact_lock(hashtextextended('bastion.files.quota:' || $2, 0))",
        [account.id, admin.id],
      );
      racing = Promise.all([start(account), start(admin)]);
      await lockWaiters(db, 2);
      await runner.commitTransaction();
    } finally {
      await runner.release();
    }
    const results = await racing;
    expect(results.filter((result) => result.url !== undefined)).toHaveLength(1);
    expect(results.filter((result) => result.url === undefined).map((result) => result.errors?.[0].extensions)).toEqual([
      { code: 'QUOTA_EXCEEDED', maxFiles: 10 },
    ]);
    expect(await start(admin)).toMatchObject({ url: undefined });
  });

  it('stored files count too: a start that would pass the quota is refused until a file is removed', async () => {
    const { account, postId } = await owner();
    const pdf = pdfOf(4 * MIB);
    const started = await startUpload(account.client, 'startPostAttachmentsUpload', postId, pdf, 'application/pdf');
    expect((await tusUpload(started.url!, pdf)).status).toBe(204);
    await expectRefusalLeavesNothing('quota', async () => {
      const refused = await startUpload(account.client, 'startPostAttachmentsUpload', postId, { length: 3 * MIB }, 'application/pdf');
      expect(refused.errors?.map((error) => error.extensions)).toEqual([{ code: 'QUOTA_EXCEEDED', usedBytes: 4 * MIB, quotaBytes: QUOTA }]);
    });
    const [file] = await attachmentsOf(account, postId);
    expect(codesOf(await account.client.request('mutation($id: ID!) { removeFile(id: $id) }', { id: file.id }))).toBeUndefined();
    const fits = await startUpload(account.client, 'startPostAttachmentsUpload', postId, { length: 3 * MIB }, 'application/pdf');
    expect(fits.errors).toBeUndefined();
  });
});

describe('URLs', () => {
  let account: TestAccount;
  let postId: string;
  let file: FileJson;
  let pdf: Buffer;

  beforeAll(async () => {
    const made = await owner();
    account = made.account;
    postId = made.postId;
    pdf = pdfOf(3_000);
    const started = await startUpload(account.client, 'startPostAttachmentsUpload', made.postId, pdf, 'application/pdf');
    expect((await tusUpload(started.url!, pdf)).status).toBe(204);
    [file] = await attachmentsOf(account, made.postId);
  });

  /** A 403 that tells nothing of the file: the same body as for a file that never existed, no file headers. */
  async function expectRefusedUrl(url: string): Promise<void> {
    const refused = await download(url);
    const text = refused.bytes.toString();
    expect({ status: refused.status, body: JSON.parse(text) }).toEqual({
      status: 403,
      body: { errors: [{ message: expect.any(String), extensions: { code: 'FORBIDDEN' } }] },
    });
    for (const secret of [file.id, file.sha256, 'application/pdf', String(file.byteSize)]) expect(text).not.toContain(secret);
    for (const header of ['etag', 'content-disposition', 'content-range', 'accept-ranges']) expect(refused.headers.get(header)).toBeNull();
    expect(refused.headers.get('content-type')).toMatch(/^application\/json/);
    const never = new URL(url);
    never.pathname = '/files/00000000-0000-4000-8000-000000000000/original';
    expect((await download(never.href)).bytes.toString()).toBe(text);
  }

  it('a forged, an altered and a re-pointed download URL are 403 and say nothing about the file', async () => {
    expect((await download(file.url)).bytes.equals(pdf)).toBe(true);
    const url = new URL(file.url);
    const forged = new URL(url);
    forged.searchParams.set('sig', 'A'.repeat(43));
    const longer = new URL(url);
    longer.searchParams.set('expires', String(Number(url.searchParams.get('expires')) + 3600));
    const otherKey = new URL(url);
    otherKey.searchParams.set('kid', 'k2');
    const otherVariant = new URL(url);
    otherVariant.pathname = otherVariant.pathname.replace('/original', '/thumb_256');
    const otherFile = new URL(url);
    otherFile.pathname = otherFile.pathname.replace(file.id, '00000000-0000-4000-8000-000000000000');
    const noSignature = new URL(url);
    noSignature.search = '';
    await expectRefusalLeavesNothing(
      'download_url',
      async () => {
        for (const refused of [forged, longer, otherKey, otherVariant, otherFile, noSignature]) await expectRefusedUrl(refused.href);
      },
      6 + 6, // expectRefusedUrl fetches a never-existing file's forged URL each time too
    );
  });

  it('an expired download URL is 403 from its expiry on, and says nothing about the file', async () => {
    const expires = Number(new URL(file.url).searchParams.get('expires')) * 1000;
    const lifetime = expires - server.clock.now().getTime();
    expect(lifetime).toBeGreaterThan(0);
    expect(lifetime).toBeLessThanOrEqual(server.config.filesUrlTtlSeconds * 1000);
    server.clock.advance(lifetime - 1);
    expect((await download(file.url)).status).toBe(200);
    server.clock.advance(1);
    await expectRefusalLeavesNothing('download_url', () => expectRefusedUrl(file.url), 2);
    // A fresh URL from the API works again.
    const [fresh] = await attachmentsOf(account, postId);
    expect(fresh.url).not.toBe(file.url);
    expect((await download(fresh.url)).status).toBe(200);
  });

  it('a forged or altered upload URL is 404 before any lookup; the real one still works', async () => {
    const { account: uploader, postId } = await owner();
    const bytes = pdfOf(2_000);
    const started = await startUpload(uploader.client, 'startPostAttachmentsUpload', postId, bytes, 'application/pdf');
    const real = new URL(started.url!);
    const token = real.pathname.split('/').pop()!;
    const [uploadId, kid, mac] = token.split('.');
    const flipped = mac.slice(0, -1) + (mac.endsWith('A') ? 'B' : 'A');
    const forgeries = [
      `${uploadId}.${kid}.${flipped}`,
      `00000000-0000-4000-8000-000000000000.${kid}.${mac}`,
      `${uploadId}.k2.${mac}`,
      uploadId,
      `${uploadId}.${kid}.${mac}.extra`,
    ];
    await expectRefusalLeavesNothing(
      'upload_url',
      async () => {
        for (const forged of forgeries) {
          const url = new URL(real);
          url.pathname = `/files/uploads/${forged}`;
          for (const answer of [await tusCreate(url.href, bytes.length), await tusHead(url.href), await tusPatch(url.href, 0, bytes)]) {
            expect(answer.status).toBe(404);
            expect(answer.body).not.toContain(uploadId);
          }
        }
      },
      forgeries.length * 3,
    );
    expect((await tusUpload(started.url!, bytes)).status).toBe(204);
  });
});
