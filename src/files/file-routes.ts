import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { Server as TusServer } from '@tus/server';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { ErrorCode } from '../errors';
import { errorBody, sendError } from '../http/http-errors';
import { addressBucket } from '../net/ip';
import { KeyedCounts } from '../net/keyed-counts';
import type { Logger } from '../logging';
import type { Clock } from '../clock';
import type { FileRefusals } from './file-refusals';
import type { FileUrls } from './file-urls';
import { FilesService, ORIGINAL } from './files.service';
import { BastionTusStore, tusRequest } from './tus-store';
import { UploadRefusal } from './upload-refusal';
import type { UploadsService } from './uploads.service';
import type { Upload } from './upload.entity';

export const UPLOADS_PATH = '/files/uploads';

const sizeExceeded = new UploadRefusal('BAD_REQUEST', 'More bytes were sent than the byteSize given to startUpload.', {}, 413);

export interface UploadRouteOptions {
  readonly maxUploadsPerAccount: number;
  readonly maxUploadsPerAddress: number;
  /** Whether a browser page from this origin may use the route (CORS_ORIGINS); apps send no Origin. */
  readonly allowsOrigin: (origin: string) => boolean;
}

/**
 * The tus endpoint: `/files/uploads/<token>`, the URL startUpload returns, is both where the app
 * creates the upload (POST, the tus creation extension) and where it sends the bytes (PATCH),
 * asks for the offset to resume from (HEAD) and gives up (DELETE). The token names the upload
 * and is signed: a forged or altered one is 404 before any lookup, as is an expired upload.
 */
export function uploadRoute(
  uploads: UploadsService,
  urls: FileUrls,
  refusals: FileRefusals,
  logger: Logger,
  options: UploadRouteOptions,
): RequestHandler {
  const tus = new TusServer({
    path: UPLOADS_PATH,
    datastore: new BastionTusStore(uploads),
    // The URL the app was given is the upload's URL too: Location sends its path back (relative, as RFC 9110 allows;
    // tus clients resolve it against the URL they posted to, which also holds behind a TLS proxy).
    namingFunction: (req) => tokenOf(req.url).uploadId ?? Promise.reject(new UploadRefusal('NOT_FOUND', 'No such upload.')),
    getFileIdFromRequest: (_req, lastPath) => (lastPath ? (urls.uploadIdOf(lastPath) ?? undefined) : undefined),
    generateUrl: (req) => new URL(req.url).pathname,
    allowedOrigins: (origin) => options.allowsOrigin(origin),
    disableTerminationForFinishedUploads: true,
    onResponseError: (_req, error) => {
      if (error instanceof UploadRefusal) return undefined;
      // More bytes than the upload's size: @tus/server refuses them by Content-Length (a plain object), or, for a streamed
      // body, by counting (StreamLimiter's MaxFileExceededError, an Error): both are the client's, 413 with our error shape.
      if ((error as { status_code?: unknown }).status_code === 413) return { status_code: 413, body: sizeExceeded.body };
      // @tus/server's own protocol refusals (a wrong offset, a missing header): the same status, in our error shape.
      if (!(error instanceof Error)) return tusRefusal(error);
      logger.error({ err: error }, 'files: an upload request failed');
      return {
        status_code: 500,
        body: errorBody('INTERNAL_SERVER_ERROR', 'Unexpected error.'),
      };
    },
  });
  const tokenOf = (url: string) => {
    const token = new URL(url, 'http://localhost').pathname.split('/').pop() ?? '';
    return { uploadId: urls.uploadIdOf(token) };
  };
  // Upload requests in flight, per address and per account (per instance).
  const inFlight = new KeyedCounts();

  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      if (req.method === 'OPTIONS') {
        await tus.handle(req, res);
        return;
      }
      const { uploadId } = tokenOf(req.originalUrl);
      const upload = uploadId ? await uploads.find(uploadId) : null;
      if (!upload) {
        if (!uploadId) refusals.refused('upload_url', req.clientIp);
        sendError(res, 'NOT_FOUND', 'No such upload: it expired, finished, or the URL is wrong. Start a new one with startUpload.');
        return;
      }
      // IPv6 by /64, as the rate limits count: one subscriber's network, not one of its 2^64 addresses.
      const address = `address:${addressBucket(req.clientIp)}`;
      const account = `account:${upload.userId}`;
      if (!inFlight.take(address, options.maxUploadsPerAddress)) return tooMany(res);
      if (!inFlight.take(account, options.maxUploadsPerAccount)) {
        inFlight.add(address, -1);
        return tooMany(res);
      }
      try {
        res.setHeader('Upload-Expires', upload.expiresAt.toUTCString());
        res.setHeader('Cache-Control', 'no-store');
        if (req.method === 'PUT') {
          await putWhole(uploads, upload, req, res);
          return;
        }
        // A HEAD reports the offset: an upload with every byte in is attached first (its completion
        // may have failed before), and then reported complete, as it is.
        if (req.method === 'HEAD' && (await finishing(uploads, upload, req, res))) return;
        // express strips the mount path from req.url; @tus/server reads the upload's URL from it.
        req.url = req.originalUrl;
        await tusRequest.run({ clientIp: req.clientIp }, () => tus.handle(req, res));
      } finally {
        inFlight.add(address, -1);
        inFlight.add(account, -1);
      }
    } catch (error) {
      next(error);
    }
  };
}

/**
 * A small file in one request, outside the tus protocol: `PUT` the whole file to the upload's URL
 * (Content-Length the byteSize declared). It is the creation and the bytes at once; a body cut
 * short stays resumable with tus (HEAD, then PATCH).
 */
async function putWhole(uploads: UploadsService, upload: Upload, req: Request, res: Response): Promise<void> {
  const length = Number(req.get('content-length'));
  if (!Number.isSafeInteger(length) || length !== upload.byteSize) {
    sendError(res, 'BAD_REQUEST', `PUT the whole file: Content-Length must be ${upload.byteSize}, the byteSize given to startUpload.`, 400);
    return;
  }
  try {
    await uploads.createdByClient(upload.id, length);
    const received = await uploads.receive(upload.id, 0, req, req.clientIp);
    if (received === length) res.status(204).end();
    else sendError(res, 'BAD_REQUEST', `The body ended at byte ${received} of ${length}: resume with HEAD and PATCH (tus).`, 400);
  } catch (error) {
    if (!(error instanceof UploadRefusal)) throw error;
    sendRefusal(res, error);
  }
}

/** Attaches a complete upload before a HEAD reports it; true when it answered. */
async function finishing(uploads: UploadsService, upload: Upload, req: Request, res: Response): Promise<boolean> {
  try {
    if (!(await uploads.finish(upload.id, req.clientIp))) return false;
  } catch (error) {
    if (!(error instanceof UploadRefusal)) throw error;
    sendRefusal(res, error);
    return true;
  }
  res.setHeader('Tus-Resumable', '1.0.0');
  res.setHeader('Upload-Offset', String(upload.byteSize));
  res.setHeader('Upload-Length', String(upload.byteSize));
  res.status(200).end();
  return true;
}

/** The catalogue code of a status @tus/server answers with. */
const TUS_STATUS_CODES: Readonly<Record<number, ErrorCode>> = { 404: 'NOT_FOUND', 409: 'CONFLICT', 410: 'NOT_FOUND' };

function tusRefusal(error: { status_code: number; body: string }): { status_code: number; body: string } {
  const code = error.status_code >= 500 ? 'INTERNAL_SERVER_ERROR' : (TUS_STATUS_CODES[error.status_code] ?? 'BAD_REQUEST');
  const message = error.body.trim() || 'The tus request was refused.';
  return { status_code: error.status_code, body: new UploadRefusal(code, message, {}, error.status_code).body };
}

function sendRefusal(res: Response, refusal: UploadRefusal): void {
  sendError(res, refusal.code, refusal.message, refusal.status_code, refusal.details);
}

function tooMany(res: Response): void {
  res.setHeader('Retry-After', '1');
  sendError(res, 'RATE_LIMITED', 'Too many uploads at once from this account or network: wait for one to finish.', undefined, {
    retryAfterSeconds: 1,
  });
}

/** An HTTP byte range, `bytes=a-b`, `bytes=a-` or `bytes=-n`; one range only (several get the whole file). */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

/**
 * `GET /files/<id>/<variant>?expires&kid&sig`: a file's bytes by signed URL, no bearer token
 * needed. An expired or altered URL is 403 and says nothing about the file. Range requests,
 * ETag (the content's SHA-256) and If-None-Match; `private` caching for as long as the URL lives;
 * anything but an image is sent as an attachment, under a CSP that lets nothing run.
 */
export function downloadRoute(files: FilesService, refusals: FileRefusals, clock: Clock, logger: Logger): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD');
        sendError(res, 'BAD_REQUEST', 'File URLs are read with GET.', 405);
        return;
      }
      const match = /^\/([0-9a-f-]{36})\/([a-z0-9_]{1,32})$/.exec(req.path);
      const fileId = match?.[1] ?? '';
      const variant = (match?.[2] ?? '').toUpperCase();
      const refusal = match ? files.urls.checkDownload(fileId, variant, req.query) : 'invalid';
      if (refusal) {
        refusals.refused('download_url', req.clientIp);
        sendError(res, 'FORBIDDEN', 'This file link is not valid: it expired or was changed. Ask the API for a new one.');
        return;
      }
      const download = await files.download(fileId, variant === ORIGINAL ? ORIGINAL : variant);
      if (!download) {
        sendError(res, 'NOT_FOUND', 'This file was removed.');
        return;
      }
      const { content, contentType, sha256 } = download;
      const etag = `"${sha256}"`;
      const expiresInSeconds = Math.max(0, Number(req.query.expires) - Math.floor(clock.now().getTime() / 1000));
      res.setHeader('ETag', etag);
      res.setHeader('Cache-Control', `private, max-age=${expiresInSeconds}`);
      res.setHeader('Accept-Ranges', 'bytes');
      res.setHeader('Content-Type', contentType);
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.setHeader('Content-Security-Policy', "default-src 'none'; sandbox");
      res.setHeader('Content-Disposition', contentType.startsWith('image/') ? 'inline' : 'attachment');
      if (req.get('if-none-match') === etag) {
        res.status(304).end();
        return;
      }
      const ifRange = req.get('if-range');
      const range = ifRange === undefined || ifRange === etag ? parseRange(req.get('range'), content.byteSize) : undefined;
      if (range === 'unsatisfiable') {
        res.setHeader('Content-Range', `bytes */${content.byteSize}`);
        sendError(res, 'BAD_REQUEST', 'The requested range is outside the file.', 416);
        return;
      }
      if (range) {
        res.status(206);
        res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${content.byteSize}`);
        res.setHeader('Content-Length', String(range.end - range.start + 1));
      } else {
        res.setHeader('Content-Length', String(content.byteSize));
      }
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      // One chunk buffered at a time: memory stays flat whatever the file's size and the client's speed.
      await pipeline(Readable.from(files.read(content, range), { highWaterMark: 1 }), res).catch((error: unknown) => {
        // Headers are out: a failure now (a damaged chunk, a lost store) can only cut the response.
        if (!res.destroyed) logger.error({ err: error, fileId }, 'files: a download failed midway');
        res.destroy();
      });
    } catch (error) {
      next(error);
    }
  };
}
