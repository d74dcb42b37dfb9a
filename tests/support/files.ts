import { createHash, randomBytes } from 'node:crypto';
import { crc32, deflateRawSync, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import type { RunningBastion } from '../../src/main';
import { FactoryServer, GraphQLClient, TestAccount, makeUser } from './factories';

/** A phone photo: a JPEG carrying GPS coordinates and the camera in its EXIF. */
export async function photoWithGps(width = 320, height = 240): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: '#3a7bd5' } })
    .jpeg()
    .withExif({
      IFD0: { Make: 'PhoneCam', Model: 'Pocket-9' },
      IFD3: {
        GPSLatitudeRef: 'N',
        GPSLatitude: '51/1 30/1 26/1',
        GPSLongitudeRef: 'W',
        GPSLongitude: '0/1 7/1 39/1',
        GPSMapDatum: 'WGS-84-HOME',
      },
    })
    .toBuffer();
}

/** What a tus request answered. */
export interface TusAnswer {
  readonly status: number;
  readonly offset: number | null;
  readonly headers: Headers;
  readonly body: string;
}

async function answer(response: Response): Promise<TusAnswer> {
  const offset = response.headers.get('upload-offset');
  return {
    status: response.status,
    offset: offset === null ? null : Number(offset),
    headers: response.headers,
    body: await response.text(),
  };
}

const TUS = { 'tus-resumable': '1.0.0' };

/** tus creation: POST to the upload URL with the length. */
export async function tusCreate(url: string, length: number, headers: Record<string, string> = {}): Promise<TusAnswer> {
  return answer(await fetch(url, { method: 'POST', headers: { ...TUS, 'upload-length': String(length), ...headers } }));
}

/** tus append: PATCH bytes at an offset. */
export async function tusPatch(url: string, offset: number, bytes: Uint8Array, headers: Record<string, string> = {}): Promise<TusAnswer> {
  return answer(
    await fetch(url, {
      method: 'PATCH',
      headers: { ...TUS, 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream', ...headers },
      body: bytes,
    }),
  );
}

/** tus offset query. */
export async function tusHead(url: string): Promise<TusAnswer> {
  return answer(await fetch(url, { method: 'HEAD', headers: TUS }));
}

/** A whole file in two requests: creation, then one PATCH. */
export async function tusUpload(url: string, bytes: Uint8Array): Promise<TusAnswer> {
  const created = await tusCreate(url, bytes.length);
  if (created.status !== 201) return created;
  return tusPatch(url, 0, bytes);
}

/** Starts an upload through GraphQL; returns its tus URL (or the errors). */
export async function startUpload(
  client: GraphQLClient,
  mutation: UploadMutation,
  id: string,
  bytes: { length: number },
  contentType: string,
): Promise<{ url?: string; errors?: { extensions?: Record<string, unknown>; message: string }[] }> {
  const { body } = await client.request<Record<string, { url: string }>>(
    `mutation($id: ID!, $input: StartUploadInput!) { ${mutation}(id: $id, input: $input) { id url expiresAt } }`,
    { id, input: { byteSize: bytes.length, contentType } },
  );
  return { url: body.data?.[mutation]?.url, errors: body.errors as never };
}

/** Every start…Upload mutation of the sample models. */
export type UploadMutation = 'startProfileAvatarUpload' | 'startPostAttachmentsUpload';

/** What a test server gives the helpers below: its database. */
interface ServerWithDatabase {
  readonly bastion: { readonly database: { readonly dataSource: { query(sql: string, parameters?: unknown[]): Promise<unknown> } } };
}

/** Rows of every files table: after a refusal nothing partial may remain, so these stay as they were. */
export interface FileRowCounts {
  readonly files: number;
  readonly variants: number;
  readonly contents: number;
  readonly chunks: number;
  readonly uploads: number;
  readonly deletions: number;
}

export async function fileRowCounts(server: ServerWithDatabase): Promise<FileRowCounts> {
  const [row] = (await server.bastion.database.dataSource.query(
    'SELECT (SELECT count(*)::int FROM files) AS files, (SELECT count(*)::int FROM file_variants) AS variants, ' +
      '(SELECT count(*)::int FROM file_contents) AS contents, (SELECT count(*)::int FROM file_chunks) AS chunks, ' +
      '(SELECT count(*)::int FROM uploads) AS uploads, (SELECT count(*)::int FROM file_deletions) AS deletions',
  )) as FileRowCounts[];
  return row;
}

/** The contents (original and variants) behind the files attached to a row, for checking they are gone later. */
export async function contentIdsOfRow(server: ServerWithDatabase, rowId: string): Promise<string[]> {
  const rows = (await server.bastion.database.dataSource.query(
    'SELECT f.content_id AS id FROM files f WHERE f.row_id = $1 UNION ' +
      'SELECT v.content_id FROM file_variants v JOIN files f ON f.id = v.file_id WHERE f.row_id = $1',
    [rowId],
  )) as { id: string }[];
  return rows.map((row) => row.id).sort();
}

/** How many of these contents still have a row, and chunks, in the database. */
export async function contentsLeft(
  server: ServerWithDatabase,
  contentIds: readonly string[],
): Promise<{ contents: number; chunks: number }> {
  const [row] = (await server.bastion.database.dataSource.query(
    'SELECT (SELECT count(*)::int FROM file_contents WHERE id = ANY($1::uuid[])) AS contents, ' +
      '(SELECT count(*)::int FROM file_chunks WHERE content_id = ANY($1::uuid[])) AS chunks',
    [contentIds],
  )) as { contents: number; chunks: number }[];
  return row;
}

/** A PDF of exactly `size` bytes (at least 32): a real header, random filler, the end marker. Stored as sent. */
export function pdfOf(size: number): Buffer {
  const head = Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1');
  const tail = Buffer.from('\n%%EOF\n', 'latin1');
  if (size < head.length + tail.length) throw new Error(`a PDF needs at least ${head.length + tail.length} bytes`);
  return Buffer.concat([head, randomBytes(size - head.length - tail.length), tail]);
}

/** A small PNG (no metadata), decodable by sharp. */
export function pngImage(width = 64, height = 48): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: '#d53a7b' } })
    .png()
    .toBuffer();
}

/** A GIF: an image type neither sample field takes. */
export function gifImage(width = 16, height = 16): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: '#00ff00' } })
    .gif()
    .toBuffer();
}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A PNG chunk: length, type, data, CRC. */
export function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typeAndData = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndData));
  return Buffer.concat([length, typeAndData, crc]);
}

/** A decompression bomb: a valid PNG header declaring width × height RGB pixels, then a few bytes of pixel data. */
export function pngDeclaring(width: number, height: number): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // truecolour
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(Buffer.alloc(1024))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A zip bomb: one entry of `inflatedBytes` zeros, deflated to a few kilobytes; a valid single-entry archive. */
export function zipBomb(inflatedBytes = 64 * 1024 * 1024): Buffer {
  const name = Buffer.from('report.pdf', 'latin1');
  const data = deflateRawSync(Buffer.alloc(inflatedBytes), { level: 9 });
  const crc = crc32(Buffer.alloc(inflatedBytes));
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4); // version needed
  local.writeUInt16LE(8, 8); // deflate
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(inflatedBytes, 22);
  local.writeUInt16LE(name.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(inflatedBytes, 24);
  central.writeUInt16LE(name.length, 28);
  const centralOffset = local.length + name.length + data.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + name.length, 12);
  end.writeUInt32LE(centralOffset, 16);
  return Buffer.concat([local, name, data, central, name, end]);
}

/** Starts an upload and sends the whole file (creation, one PATCH); the PATCH's answer, or the start's errors. */
export async function uploadFile(
  client: GraphQLClient,
  mutation: UploadMutation,
  id: string,
  bytes: Buffer,
  contentType: string,
): Promise<TusAnswer & { url: string }> {
  const started = await startUpload(client, mutation, id, bytes, contentType);
  if (!started.url) throw new Error(`${mutation} failed: ${JSON.stringify(started.errors)}`);
  return { ...(await tusUpload(started.url, bytes)), url: started.url };
}

/** Downloads a signed URL: status, headers and bytes. */
export async function download(
  url: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; headers: Headers; bytes: Buffer }> {
  const response = await fetch(url, { method, headers });
  return { status: response.status, headers: response.headers, bytes: Buffer.from(await response.arrayBuffer()) };
}

/**
 * Refused uploads and file URLs as the audit log counts them (hits summed per reason over the
 * `file_refused` rows), after writing out the refusals still being summed up.
 */
export async function refusalsAudited(
  server: ServerWithDatabase & { bastion: { services: { fileRefusals: { flush(): Promise<void> } } } },
) {
  await server.bastion.services.fileRefusals.flush();
  const rows = (await server.bastion.database.dataSource.query(
    "SELECT metadata->>'reason' AS reason, sum((metadata->>'hits')::int)::int AS hits FROM audit_events " +
      "WHERE action = 'file_refused' GROUP BY 1",
  )) as { reason: string; hits: number }[];
  return Object.fromEntries(rows.map((row) => [row.reason, row.hits])) as Record<string, number>;
}

/** A file as the tests read it, through a file field. */
export interface FileJson {
  id: string;
  contentType: string;
  byteSize: number;
  sha256: string;
  url: string;
  thumb: string | null;
}

const FILE_FIELDS = 'id contentType byteSize sha256 url thumb: url(variant: THUMB_256)';

/** A signed-in user with a profile and a published post, made through the API: a row for each sample file field. */
export async function makeOwner(
  server: FactoryServer,
  displayName: string,
): Promise<{ account: TestAccount; profileId: string; postId: string }> {
  const account = await makeUser(server);
  const profile = await account.client.request<{ createProfile: { id: string } }>(
    'mutation($input: CreateProfileInput!) { createProfile(input: $input) { id } }',
    { input: { displayName } },
  );
  const post = await account.client.request<{ createPost: { id: string } }>(
    'mutation($input: CreatePostInput!) { createPost(input: $input) { id } }',
    { input: { title: 'post', published: true } },
  );
  return { account, profileId: profile.body.data!.createProfile.id, postId: post.body.data!.createPost.id };
}

/** A profile's avatar as its viewer reads it. */
export async function avatarOf(account: TestAccount, profileId: string): Promise<FileJson | null> {
  const { body } = await account.client.request<{ profile: { avatar: FileJson | null } }>(
    `query($id: ID!) { profile(id: $id) { id avatar { ${FILE_FIELDS} } } }`,
    { id: profileId },
  );
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data!.profile.avatar;
}

/** A post's attachments as its viewer reads them. */
export async function attachmentsOf(account: TestAccount, postId: string): Promise<FileJson[]> {
  const { body } = await account.client.request<{ post: { attachments: FileJson[] } }>(
    `query($id: ID!) { post(id: $id) { id attachments { ${FILE_FIELDS} } } }`,
    { id: postId },
  );
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data!.post.attachments;
}

/** SHA-256 of every file and variant as a server serves them by signed URL, by "fileId variant" (or the HTTP status it gave). */
export async function servedDigests(bastion: RunningBastion): Promise<Record<string, string>> {
  const served = await bastion.database.dataSource.query<{ fileId: string; variant: string }[]>(
    `SELECT f.id AS "fileId", 'ORIGINAL' AS variant FROM files f UNION ALL SELECT v.file_id, v.variant FROM file_variants v ORDER BY 1, 2`,
  );
  const origin = new URL(bastion.url).origin;
  const digests: Record<string, string> = {};
  for (const { fileId, variant } of served) {
    const query = bastion.services.files.urls.downloadQuery(fileId, variant);
    const response = await fetch(`${origin}/files/${fileId}/${variant.toLowerCase()}?${query}`);
    const bytes = Buffer.from(await response.arrayBuffer());
    digests[`${fileId} ${variant}`] =
      response.status === 200 ? createHash('sha256').update(bytes).digest('hex') : `HTTP ${response.status}`;
  }
  return digests;
}
