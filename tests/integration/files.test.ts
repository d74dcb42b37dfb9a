import { createHash } from 'node:crypto';
import { Client } from 'pg';
import sharp from 'sharp';
import { TestAccount, makeUser } from '../support/factories';
import { photoWithGps, startUpload, tusCreate, tusHead, tusPatch, tusUpload } from '../support/files';
import { TestServer, startTestServer } from '../support/test-server';

const PROFILE_FILES =
  'query($id: ID!) { profile(id: $id) { id avatar { id contentType byteSize sha256 url thumb: url(variant: THUMB_256) } } }';

let server: TestServer;
let alice: TestAccount;
let profileId: string;

async function createProfile(account: TestAccount): Promise<string> {
  const { body } = await account.client.request<{ createProfile: { id: string } }>(
    'mutation($input: CreateProfileInput!) { createProfile(input: $input) { id } }',
    { input: { displayName: 'Alice' } },
  );
  if (!body.data) throw new Error(JSON.stringify(body.errors));
  return body.data.createProfile.id;
}

beforeAll(async () => {
  server = await startTestServer();
  alice = await makeUser(server);
  profileId = await createProfile(alice);
});
afterAll(() => server?.close());

describe('an avatar uploaded over tus', () => {
  it('is re-encoded without its GPS metadata, attached, and served by a signed URL', async () => {
    const photo = await photoWithGps(640, 480);
    expect((await sharp(photo).metadata()).exif).toBeDefined();
    const started = await startUpload(alice.client, 'startProfileAvatarUpload', profileId, photo, 'image/jpeg');
    expect(started.errors).toBeUndefined();
    const created = await tusCreate(started.url!, photo.length);
    expect(created.status).toBe(201);
    expect(new URL(created.headers.get('location')!, started.url).href).toBe(started.url);
    expect(created.headers.get('upload-expires')).toBeTruthy();
    const patched = await tusPatch(started.url!, 0, photo);
    expect({ status: patched.status, offset: patched.offset, body: patched.body }).toEqual({ status: 204, offset: photo.length, body: '' });

    const { body } = await alice.client.request<{
      profile: { avatar: { contentType: string; sha256: string; byteSize: number; url: string; thumb: string } };
    }>(PROFILE_FILES, { id: profileId });
    const avatar = body.data!.profile.avatar;
    expect(avatar.contentType).toBe('image/jpeg');
    const download = await fetch(avatar.url);
    expect(download.status).toBe(200);
    const bytes = Buffer.from(await download.arrayBuffer());
    expect(bytes.length).toBe(avatar.byteSize);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(avatar.sha256);
    expect(download.headers.get('etag')).toBe(`"${avatar.sha256}"`);
    const metadata = await sharp(bytes).metadata();
    expect({ exif: metadata.exif, width: metadata.width, height: metadata.height }).toEqual({ exif: undefined, width: 640, height: 480 });
    expect(bytes.includes(Buffer.from('WGS-84-HOME'))).toBe(false);
    const thumb = await fetch(avatar.thumb);
    expect((await sharp(Buffer.from(await thumb.arrayBuffer())).metadata()).width).toBe(256);
    // The upload URL is a credential, the download URL's query a signature: neither is logged.
    const logged = JSON.stringify(server.logs.lines);
    expect(logged).not.toContain(started.url!.split('.').pop()!);
    expect(logged).not.toContain(new URL(avatar.url).searchParams.get('sig')!);
    expect(logged).toContain(`/files/uploads/${started.url!.split('/').pop()!.slice(0, 36)}…`);
  });

  it('resumes after a cut: HEAD gives the offset kept, and the rest completes the file', async () => {
    const photo = await photoWithGps(1600, 1200);
    const started = await startUpload(alice.client, 'startProfileAvatarUpload', profileId, photo, 'image/jpeg');
    expect((await tusCreate(started.url!, photo.length)).status).toBe(201);
    const firstPart = Math.floor(photo.length / 3);
    expect((await tusPatch(started.url!, 0, photo.subarray(0, firstPart))).offset).toBe(firstPart);
    expect((await tusHead(started.url!)).offset).toBe(firstPart);
    const done = await tusPatch(started.url!, firstPart, photo.subarray(firstPart));
    expect(done.status).toBe(204);
    const { body } = await alice.client.request<{ profile: { avatar: { byteSize: number } } }>(PROFILE_FILES, { id: profileId });
    expect(body.data!.profile.avatar).not.toBeNull();
  });

  it('refuses an HTML page claimed as an image and keeps nothing', async () => {
    const page = Buffer.from('<!doctype html><html><script>alert(1)</script></html>');
    const before = await server.bastion.database.dataSource.query('SELECT count(*)::int AS n FROM file_contents');
    const started = await startUpload(alice.client, 'startProfileAvatarUpload', profileId, page, 'image/png');
    const answer = await tusUpload(started.url!, page);
    expect(answer.status).toBe(422);
    expect(JSON.parse(answer.body).errors[0].extensions).toEqual({ code: 'FILE_REJECTED', reason: 'TYPE_NOT_ALLOWED' });
    const after = await server.bastion.database.dataSource.query('SELECT count(*)::int AS n FROM file_contents');
    expect(after[0].n).toBe(before[0].n);
    expect((await tusHead(started.url!)).status).toBe(404);
  });

  it('takes a small file in the creation request (tus creation-with-upload) or in one PUT', async () => {
    const photo = await photoWithGps(200, 100);
    const started = await startUpload(alice.client, 'startProfileAvatarUpload', profileId, photo, 'image/jpeg');
    const created = await fetch(started.url!, {
      method: 'POST',
      headers: {
        'tus-resumable': '1.0.0',
        'upload-length': String(photo.length),
        'content-type': 'application/offset+octet-stream',
      },
      body: photo,
    });
    expect({ status: created.status, offset: created.headers.get('upload-offset') }).toEqual({ status: 201, offset: String(photo.length) });
    const put = await startUpload(alice.client, 'startProfileAvatarUpload', profileId, photo, 'image/jpeg');
    const whole = await fetch(put.url!, { method: 'PUT', body: photo });
    expect(whole.status).toBe(204);
    const { body } = await alice.client.request<{ profile: { avatar: { id: string } } }>(PROFILE_FILES, { id: profileId });
    const [{ id }] = await server.bastion.database.dataSource.query('SELECT id FROM files WHERE row_id = $1', [profileId]);
    expect(body.data!.profile.avatar.id).toBe(id);
    // The upload is done: its URL names nothing any more.
    expect((await fetch(put.url!, { method: 'PUT', body: photo })).status).toBe(404);
  });

  it('sends Upload-Expires from the upload itself, and answers a wrong-length PUT with 400', async () => {
    const photo = await photoWithGps(64, 64);
    const started = await startUpload(alice.client, 'startProfileAvatarUpload', profileId, photo, 'image/jpeg');
    const [upload] = await server.bastion.database.dataSource.query('SELECT expires_at FROM uploads ORDER BY created_at DESC LIMIT 1');
    const created = await tusCreate(started.url!, photo.length);
    expect(created.headers.get('upload-expires')).toBe(new Date(upload.expires_at).toUTCString());
    const patched = await tusPatch(started.url!, 0, photo.subarray(0, 10));
    expect(patched.headers.get('upload-expires')).toBe(new Date(upload.expires_at).toUTCString());
    const other = await startUpload(alice.client, 'startProfileAvatarUpload', profileId, photo, 'image/jpeg');
    const short = await fetch(other.url!, { method: 'PUT', body: photo.subarray(1) });
    expect(short.status).toBe(400);
    expect(((await short.json()) as { errors: { extensions: { code: string } }[] }).errors[0].extensions.code).toBe('BAD_REQUEST');
  });

  it('answers an id that is not a uuid with NOT_FOUND, never a database error', async () => {
    const removed = await alice.client.request('mutation { removeFile(id: "__proto__") }');
    expect(removed.body.errors?.map((error) => error.extensions?.code)).toEqual(['NOT_FOUND']);
    const started = await startUpload(alice.client, 'startProfileAvatarUpload', 'not-a-uuid', { length: 10 }, 'image/jpeg');
    expect(started.errors?.map((error) => error.extensions?.code)).toEqual(['NOT_FOUND']);
  });
});

describe('an upload whose completion failed', () => {
  let slow: TestServer;
  beforeAll(async () => {
    // A short statement timeout: the attach waits on a row lock the test holds, and fails.
    slow = await startTestServer({ config: { databaseStatementTimeoutMs: 1000 } });
  });
  afterAll(() => slow?.close());

  it('is attached when the app asks for its offset, and reported complete', async () => {
    const owner = await makeUser(slow);
    const profile = await createProfile(owner);
    const photo = await photoWithGps(120, 80);
    const started = await startUpload(owner.client, 'startProfileAvatarUpload', profile, photo, 'image/jpeg');
    expect((await tusCreate(started.url!, photo.length)).status).toBe(201);
    const blocker = new Client({ connectionString: slow.database.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM profiles WHERE id = $1 FOR UPDATE', [profile]);
      const failed = await tusPatch(started.url!, 0, photo);
      expect(failed.status).toBeGreaterThanOrEqual(500);
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
    const [upload] = await slow.bastion.database.dataSource.query('SELECT received_bytes FROM uploads WHERE row_id = $1', [profile]);
    expect(Number(upload.received_bytes)).toBe(photo.length);
    const head = await tusHead(started.url!);
    expect({ status: head.status, offset: head.offset }).toEqual({ status: 200, offset: photo.length });
    const attached = await slow.bastion.database.dataSource.query('SELECT count(*)::int AS n FROM files WHERE row_id = $1', [profile]);
    expect(attached[0].n).toBe(1);
    expect(await slow.bastion.database.dataSource.query('SELECT id FROM uploads WHERE row_id = $1', [profile])).toEqual([]);
  });
});
