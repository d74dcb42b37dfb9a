import sharp from 'sharp';
import type { GraphQLClient } from './factories';

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
  mutation: 'startProfileAvatarUpload' | 'startPostAttachmentsUpload',
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
