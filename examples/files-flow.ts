/**
 * Files, as an app sees them: an avatar uploaded with the tus protocol, then shown to someone
 * else through a short-lived signed URL. Two people:
 *
 * - Alice signs up, creates her profile and takes a photo: a JPEG whose EXIF holds her camera and
 *   the GPS position where she took it. She asks `startProfileAvatarUpload` for an upload URL,
 *   creates the upload there (tus POST with Upload-Length), and sends the bytes with PATCH: half of
 *   them, then, as an app does after a lost connection, HEAD for the offset the server kept, and
 *   the rest. The last PATCH answers once the file is checked, re-encoded and attached.
 * - Bob signs up and reads Alice's profile (its name and avatar are public). He downloads the
 *   avatar from `File.url` and its `THUMB_256` variant with plain GETs, no bearer token, as an image
 *   loader (Kingfisher, Coil, Glide) would. The original carries no EXIF at all: the GPS position
 *   is gone. Asked again with its ETag, the URL answers 304; with its expiry pushed back, 403.
 *
 * Plain `fetch` for every request: the tus requests are the ones TUSKit and tus-android-client make
 * (docs/mobile.md, "Files"). The photo is made and read with sharp, which Bastion depends on.
 *
 * Run it against a running development server (after `npx tsc -p tsconfig.json`, which compiles
 * examples/ too):
 *
 *   node dist/examples/files-flow.js http://localhost:4000/graphql
 *
 * It signs up two throwaway accounts (files-flow.<random>.alice/bob@example.com). Where every
 * account needs a second factor (BASTION_MFA_REQUIRED_FOR=all, the production default) sign-up
 * answers MfaEnrollmentRequired and the script stops: see examples/mobile-flow.ts for enrolment.
 * tests/integration/files-flow.test.ts runs the same function against a test server.
 */
import { createHash, randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { graphql, signUp } from './graphql-over-http';

export interface FilesFlowOptions {
  /** The GraphQL endpoint, e.g. http://localhost:4000/graphql. */
  readonly url: string;
  readonly alice: { readonly email: string; readonly password: string };
  readonly bob: { readonly email: string; readonly password: string };
  readonly log?: (message: string) => void;
}

/** One GET of a file URL, as the downloader saw it. */
export interface Download {
  readonly status: number;
  readonly contentType: string | null;
  readonly etag: string | null;
  readonly cacheControl: string | null;
  readonly contentDisposition: string | null;
  readonly contentSecurityPolicy: string | null;
  readonly nosniff: boolean;
  readonly byteSize: number;
  /** SHA-256 of the bytes received, hex. */
  readonly sha256: string;
  readonly width: number | null;
  readonly height: number | null;
  /** Whether the image still carries an EXIF block. */
  readonly exif: boolean;
  /** The GPS position its EXIF holds ("51°30′26″N 0°7′39″W"), or null. */
  readonly gps: string | null;
}

/** Everything the flow saw, for a test (or a curious reader) to check. */
export interface FilesFlowResult {
  readonly aliceId: string;
  readonly bobId: string;
  readonly profileId: string;
  /** The photo as Alice's phone made it. */
  readonly photo: { readonly byteSize: number; readonly width: number; readonly height: number; readonly gps: string | null };
  /** What startProfileAvatarUpload answered. */
  readonly upload: { readonly id: string; readonly url: string; readonly expiresAt: string };
  /** The tus creation (POST): 201, and the upload's URL in Location (relative: the path of `upload.url`). */
  readonly creation: { readonly status: number; readonly location: string | null };
  /** Upload-Offset after the first PATCH, from the HEAD that followed, and after the last PATCH. */
  readonly offsets: { readonly firstPatch: number; readonly head: number; readonly lastPatch: number };
  /** The HEAD's Upload-Expires: the upload's `expiresAt`. */
  readonly headUploadExpires: string | null;
  /** The status of the last PATCH (204: the file is attached). */
  readonly lastPatchStatus: number;
  /** The upload URL asked again once the file is on the row (HEAD): 404. */
  readonly uploadUrlAfterwards: number;
  /** Alice's avatar, as Bob's query returned it. */
  readonly avatar: {
    readonly id: string;
    readonly contentType: string;
    readonly byteSize: number;
    readonly sha256: string;
    readonly url: string;
    readonly thumbUrl: string;
  };
  readonly original: Download;
  readonly thumb: Download;
  /** The original's URL asked again with If-None-Match: its ETag. */
  readonly revalidated: number;
  /** The original's URL with its expiry pushed a day later (the signature no longer matches). */
  readonly extended: number;
}

const CREATE_PROFILE = 'mutation CreateProfile($input: CreateProfileInput!) { createProfile(input: $input) { id } }';
// The upload mutation is generated per model and file field: start<Model><Field>Upload.
const START_AVATAR_UPLOAD = `mutation StartAvatarUpload($profileId: ID!, $input: StartUploadInput!) {
  startProfileAvatarUpload(id: $profileId, input: $input) { id url expiresAt }
}`;
const PROFILE_WITH_AVATAR = `query ProfileWithAvatar($id: ID!) {
  profile(id: $id) {
    id
    displayName
    avatar { id contentType byteSize sha256 url thumb: url(variant: THUMB_256) }
  }
}`;

/**
 * The tus requests. The upload URL needs no bearer token: it names one upload and carries a
 * signature. Errors come back as GraphQL-shaped JSON (`errors[0].extensions.code`), like every
 * other error Bastion sends; this flow expects none.
 */
const TUS_RESUMABLE = { 'tus-resumable': '1.0.0' };

async function tus(method: 'POST' | 'PATCH' | 'HEAD', url: string, headers: Record<string, string>, body?: Uint8Array): Promise<Response> {
  const response = await fetch(url, { method, headers: { ...TUS_RESUMABLE, ...headers }, body });
  if (response.status >= 400) throw new Error(`tus ${method} answered ${response.status}: ${await response.text()}`);
  return response;
}

function offsetOf(response: Response): number {
  return Number(response.headers.get('upload-offset'));
}

/** A phone photo: a JPEG whose EXIF names the camera and where it was taken (51°30′26″N 0°7′39″W). */
async function takePhoto(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: '#3a7bd5' } })
    .jpeg({ quality: 90 })
    .withExif({
      IFD0: { Make: 'PhoneCam', Model: 'Pocket-9' },
      IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 26/1', GPSLongitudeRef: 'W', GPSLongitude: '0/1 7/1 39/1' },
    })
    .toBuffer();
}

/**
 * The GPS position an EXIF block holds, read from its TIFF structure: IFD0's GPS pointer (tag
 * 0x8825), then latitude and longitude (tags 1–4) as degrees, minutes and seconds. Null when
 * there is no EXIF or no GPS in it.
 */
export function gpsOf(exif: Buffer | undefined): string | null {
  if (!exif) return null;
  const tiff = exif.subarray(exif.toString('latin1', 0, 6) === 'Exif\0\0' ? 6 : 0);
  if (tiff.length < 8) return null;
  const little = tiff.toString('latin1', 0, 2) === 'II';
  const u16 = (at: number) => (little ? tiff.readUInt16LE(at) : tiff.readUInt16BE(at));
  const u32 = (at: number) => (little ? tiff.readUInt32LE(at) : tiff.readUInt32BE(at));
  /** The entries of the directory at `offset`: 12 bytes each (tag, type, count, value or offset). */
  const entries = (offset: number) => Array.from({ length: u16(offset) }, (_, index) => offset + 2 + index * 12);
  const pointer = entries(u32(4)).find((entry) => u16(entry) === 0x8825);
  if (pointer === undefined) return null;
  const gps = new Map(entries(u32(pointer + 8)).map((entry) => [u16(entry), entry]));
  const reference = (tag: number) => {
    const entry = gps.get(tag);
    return entry === undefined ? '' : tiff.toString('latin1', entry + 8, entry + 9);
  };
  const degrees = (tag: number) => {
    const entry = gps.get(tag);
    if (entry === undefined) return null;
    const values = u32(entry + 8);
    const [d, m, s] = [0, 1, 2].map((index) => u32(values + index * 8) / u32(values + index * 8 + 4));
    return `${d}°${m}′${s}″`;
  };
  const latitude = degrees(2);
  const longitude = degrees(4);
  return latitude && longitude ? `${latitude}${reference(1)} ${longitude}${reference(3)}` : null;
}

/** A GET of a file URL, as an image loader does it: no Authorization header. */
async function download(url: string): Promise<Download> {
  const response = await fetch(url);
  const bytes = Buffer.from(await response.arrayBuffer());
  const image = response.ok ? await sharp(bytes).metadata() : undefined;
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    etag: response.headers.get('etag'),
    cacheControl: response.headers.get('cache-control'),
    contentDisposition: response.headers.get('content-disposition'),
    contentSecurityPolicy: response.headers.get('content-security-policy'),
    nosniff: response.headers.get('x-content-type-options') === 'nosniff',
    byteSize: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    width: image?.width ?? null,
    height: image?.height ?? null,
    exif: image?.exif !== undefined,
    gps: gpsOf(image?.exif),
  };
}

export async function runFilesFlow(options: FilesFlowOptions): Promise<FilesFlowResult> {
  const { url } = options;
  const log = options.log ?? (() => {});

  // 1. Alice and Bob sign up; Alice creates her profile.
  const alice = await signUp(url, options.alice);
  const bob = await signUp(url, options.bob);
  const { createProfile: profile } = await graphql<{ createProfile: { id: string } }>(
    url,
    'createProfile',
    CREATE_PROFILE,
    { input: { displayName: 'Alice' } },
    alice.accessToken,
  );
  log(`Alice (${alice.id}) and Bob (${bob.id}) signed up; Alice created profile ${profile.id}`);

  // 2. Alice's photo, as her phone wrote it.
  const photo = await takePhoto(1600, 1200);
  const taken = await sharp(photo).metadata();
  const photoGps = gpsOf(taken.exif);
  log(`Alice's photo: ${taken.width}×${taken.height} JPEG, ${photo.length} bytes, GPS ${photoGps ?? 'none'} in its EXIF`);

  // 3. An upload URL for Profile.avatar: the size and type are declared here (the server checks
  //    them against the field, the account's quota and Alice's right to change the profile).
  const { startProfileAvatarUpload: upload } = await graphql<{ startProfileAvatarUpload: { id: string; url: string; expiresAt: string } }>(
    url,
    'startProfileAvatarUpload',
    START_AVATAR_UPLOAD,
    { profileId: profile.id, input: { byteSize: photo.length, contentType: 'image/jpeg' } },
    alice.accessToken,
  );
  log(`startProfileAvatarUpload: send the bytes to ${upload.url} before ${upload.expiresAt}`);

  // 4. tus: create the upload at that URL (the creation URL of TUSKit and tus-android-client).
  //    Location names the same URL, relative: the upload's URL is the one the mutation returned.
  const created = await tus('POST', upload.url, { 'upload-length': String(photo.length) });
  const uploadUrl = new URL(created.headers.get('location') ?? '', upload.url).href;
  log(`tus POST: ${created.status}, Location ${created.headers.get('location')}`);

  // 5. The bytes: half of them, then (as after a lost connection) HEAD for the offset the server
  //    kept, then the rest from there. The last PATCH answers when the file is on the profile.
  const patch = (offset: number, bytes: Uint8Array) =>
    tus('PATCH', uploadUrl, { 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' }, bytes);
  const half = Math.floor(photo.length / 2);
  const first = await patch(0, photo.subarray(0, half));
  const head = await tus('HEAD', uploadUrl, {});
  const resumeAt = offsetOf(head);
  const last = await patch(resumeAt, photo.subarray(resumeAt));
  log(`tus PATCH ${offsetOf(first)} bytes, HEAD says ${resumeAt}, PATCH the rest: ${last.status}, offset ${offsetOf(last)}`);
  const afterwards = await fetch(uploadUrl, { method: 'HEAD', headers: TUS_RESUMABLE });
  log(`The upload URL now answers ${afterwards.status}: the file is on the profile`);

  // 6. Bob reads Alice's profile: the avatar's signed URLs come with it.
  const { profile: seen } = await graphql<{
    profile: { avatar: { id: string; contentType: string; byteSize: number; sha256: string; url: string; thumb: string } | null };
  }>(url, 'profile', PROFILE_WITH_AVATAR, { id: profile.id }, bob.accessToken);
  if (!seen.avatar) throw new Error("Bob sees no avatar on Alice's profile");
  const avatar = seen.avatar;
  log(`Bob sees avatar ${avatar.id}: ${avatar.contentType}, ${avatar.byteSize} bytes`);

  // 7. Bob's image loader fetches both renditions, without his token.
  const original = await download(avatar.url);
  const thumb = await download(avatar.thumb);
  log(
    `Original: ${original.status}, ${original.width}×${original.height}, ${original.byteSize} bytes, ` +
      `EXIF ${original.exif ? 'present' : 'none'}, GPS ${original.gps ?? 'gone'}; Cache-Control ${original.cacheControl}`,
  );
  log(`THUMB_256: ${thumb.status}, ${thumb.width}×${thumb.height}, ${thumb.byteSize} bytes, GPS ${thumb.gps ?? 'gone'}`);

  // 8. The loader revalidates with the ETag (304, no body); a URL whose expiry was pushed back is refused.
  const revalidated = await fetch(avatar.url, { headers: { 'if-none-match': original.etag ?? '' } });
  const signed = new URL(avatar.url);
  signed.searchParams.set('expires', String(Number(signed.searchParams.get('expires')) + 24 * 60 * 60));
  const extended = await fetch(signed);
  log(`Asked again with its ETag: ${revalidated.status}; with its expiry a day later: ${extended.status}`);

  return {
    aliceId: alice.id,
    bobId: bob.id,
    profileId: profile.id,
    photo: { byteSize: photo.length, width: taken.width, height: taken.height, gps: photoGps },
    upload,
    creation: { status: created.status, location: created.headers.get('location') },
    offsets: { firstPatch: offsetOf(first), head: resumeAt, lastPatch: offsetOf(last) },
    headUploadExpires: head.headers.get('upload-expires'),
    lastPatchStatus: last.status,
    uploadUrlAfterwards: afterwards.status,
    avatar: {
      id: avatar.id,
      contentType: avatar.contentType,
      byteSize: avatar.byteSize,
      sha256: avatar.sha256,
      url: avatar.url,
      thumbUrl: avatar.thumb,
    },
    original,
    thumb,
    revalidated: revalidated.status,
    extended: extended.status,
  };
}

async function main(): Promise<void> {
  const url = process.argv[2] ?? 'http://localhost:4000/graphql';
  const log = (message: string) => console.log(`- ${message}`);
  const suffix = randomBytes(4).toString('hex');
  const account = (name: string) => ({
    email: `files-flow.${suffix}.${name}@example.com`,
    password: randomBytes(15).toString('base64url'),
  });
  const result = await runFilesFlow({ url, alice: account('alice'), bob: account('bob'), log });
  console.log(
    `Done: the photo had GPS ${result.photo.gps ?? 'none'}; what Bob downloaded has ${result.original.gps ?? 'none'} ` +
      `(EXIF ${result.original.exif ? 'present' : 'stripped'}).`,
  );
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
