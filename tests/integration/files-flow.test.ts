import { FilesFlowResult, runFilesFlow } from '../../examples/files-flow';
import { strongPassword } from '../support/factories';
import { TestServer, startTestServer } from '../support/test-server';

describe('examples/files-flow.ts, end to end', () => {
  let server: TestServer;
  let result: FilesFlowResult;
  const logged: string[] = [];

  beforeAll(async () => {
    server = await startTestServer();
    result = await runFilesFlow({
      url: server.url,
      alice: { email: 'files.alice@example.com', password: strongPassword() },
      bob: { email: 'files.bob@example.com', password: strongPassword() },
      log: (message) => logged.push(message),
    });
  });
  afterAll(() => server?.close());

  it('starts from a photo that carries its GPS position in EXIF', () => {
    expect(result.photo).toMatchObject({ width: 1600, height: 1200, gps: '51°30′26″N 0°7′39″W' });
  });

  it('creates the upload at the URL the mutation returned, and Location names that URL, relative', () => {
    const uploadUrl = new URL(result.upload.url);
    expect(uploadUrl.pathname).toMatch(/^\/files\/uploads\/[0-9a-f-]{36}\.[\w-]+\.[\w-]{43}$/);
    expect(result.creation).toEqual({ status: 201, location: uploadUrl.pathname });
  });

  it('resumes from the offset HEAD reports, and the last PATCH attaches the file', () => {
    const half = Math.floor(result.photo.byteSize / 2);
    expect(result.offsets).toEqual({ firstPatch: half, head: half, lastPatch: result.photo.byteSize });
    expect(result.headUploadExpires).toBe(new Date(result.upload.expiresAt).toUTCString());
    expect(result.lastPatchStatus).toBe(204);
    expect(result.uploadUrlAfterwards).toBe(404);
  });

  it('gives Bob the avatar: re-encoded, its bytes matching the SHA-256 the API reports, the GPS gone', () => {
    expect(result.avatar.contentType).toBe('image/jpeg');
    expect(result.original).toMatchObject({
      status: 200,
      contentType: 'image/jpeg',
      etag: `"${result.avatar.sha256}"`,
      contentDisposition: 'inline',
      contentSecurityPolicy: "default-src 'none'; sandbox",
      nosniff: true,
      byteSize: result.avatar.byteSize,
      sha256: result.avatar.sha256,
      width: 1600,
      height: 1200,
      exif: false,
      gps: null,
    });
    expect(result.original.cacheControl).toMatch(/^private, max-age=\d+$/);
    expect(result.avatar.byteSize).not.toBe(result.photo.byteSize);
  });

  it('serves the THUMB_256 variant, fitted inside 256×256, without metadata', () => {
    expect(new URL(result.avatar.thumbUrl).pathname).toBe(`/files/${result.avatar.id}/thumb_256`);
    expect(result.thumb).toMatchObject({ status: 200, contentType: 'image/jpeg', width: 256, height: 192, exif: false, gps: null });
  });

  it('answers 304 to the ETag, and 403 to a URL whose expiry was changed', () => {
    expect(result.revalidated).toBe(304);
    expect(result.extended).toBe(403);
  });

  it('logged every step', () => {
    expect(logged).toHaveLength(10);
    expect(logged[1]).toMatch(/GPS 51°30′26″N 0°7′39″W in its EXIF$/);
    expect(logged.at(-1)).toBe('Asked again with its ETag: 304; with its expiry a day later: 403');
  });
});
