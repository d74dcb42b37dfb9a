import { randomBytes, randomUUID } from 'node:crypto';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { ChunkMissingError, ChunkStore } from './chunk-store';
import type { S3StorageTarget } from './storage-url';

/**
 * Chunks fetched ahead of the reader: enough to hide a round trip behind the consumer's work,
 * few enough that a download holds at most READ_AHEAD + 1 chunks in memory.
 */
export const READ_AHEAD = 3;

/** S3's limit on keys per DeleteObjects request. */
const DELETE_BATCH = 1000;

/** Single-key deletes in flight when a server cannot delete in batches. */
const DELETE_CONCURRENCY = 8;

/**
 * Codes (or statuses) a server answers when it does not implement DeleteObjects, or wants a
 * Content-MD5 this SDK no longer sends: single-key deletes still work there.
 */
const MULTI_DELETE_UNSUPPORTED = new Set(['NotImplemented', 'MethodNotAllowed', 'MissingContentMD5', 'XNotImplemented']);
const MULTI_DELETE_UNSUPPORTED_STATUS = new Set([405, 501]);

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'TimeoutError',
  'RequestTimeout',
]);

const ACCESS_CODES = new Set(['AccessDenied', 'AllAccessDisabled', 'ExpiredToken', 'InvalidToken', 'AccountProblem']);

const CREDENTIAL_CHAIN = 'AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile (AWS_PROFILE), or an instance role';

/**
 * The client settings for a target. Exported so tests build their client (with explicit
 * credentials) exactly as production does.
 */
export function s3ClientConfig(target: S3StorageTarget): S3ClientConfig {
  return {
    region: target.region,
    ...(target.endpoint === undefined ? {} : { endpoint: target.endpoint }),
    forcePathStyle: target.forcePathStyle,
    // The SDK's default CRC checksums on every request are refused by many S3-compatible servers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
    // Without these an unreachable or stalled server hangs a download or the start-up probe forever.
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000 },
  };
}

/** A failed S3 request, said in terms an operator can act on; never carries the SDK error (or a stack of it). */
export class S3StoreError extends Error {
  constructor(
    message: string,
    /** The S3 error code or network error code, when there was one. */
    readonly code: string | undefined,
    readonly status: number | undefined,
  ) {
    super(message);
    this.name = 'S3StoreError';
  }
}

/**
 * Chunks as objects `${prefix}contents/${contentId}/${chunkIndex}` in an S3 bucket (AWS or an
 * S3-compatible server). Deleting a content's row queues its chunks (`file_deletions`) for
 * `remove`, since no transaction spans the database and the bucket.
 *
 * Credentials come from the AWS credential chain (or the client a caller passes), never from the
 * target: there is nothing here that could put one in a log line or an error.
 */
export class S3ChunkStore implements ChunkStore {
  readonly kind = 's3' as const;
  private readonly client: S3Client;
  /** Set once the server refused DeleteObjects: later removals go key by key straight away. */
  private multiDeleteUnsupported = false;

  /** `client`: for tests (explicit credentials, instrumentation). The store destroys it on close. */
  constructor(
    private readonly target: S3StorageTarget,
    client?: S3Client,
  ) {
    this.client = client ?? new S3Client(s3ClientConfig(target));
  }

  keyOf(contentId: string, chunkIndex: number): string {
    return `${this.target.prefix}contents/${contentId}/${chunkIndex}`;
  }

  /**
   * Takes no `transaction`: a bucket cannot join the upload's database transaction. A claim that
   * rolls back leaves an object the retried upload overwrites, or the content's removal deletes.
   */
  async put(contentId: string, chunkIndex: number, sealed: Buffer): Promise<void> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.target.bucket,
          Key: this.keyOf(contentId, chunkIndex),
          Body: sealed,
          ContentLength: sealed.length,
          ContentType: 'application/octet-stream',
        }),
      );
    } catch (error) {
      throw this.failure(`write chunk ${chunkIndex} of content ${contentId}`, error);
    }
  }

  async *read(contentId: string, first: number, last: number): AsyncIterable<Buffer> {
    // Aborts what is still in flight when the reader stops early (a client gone mid-download).
    const abort = new AbortController();
    const ahead: Promise<Buffer>[] = [];
    let next = first;
    const fill = () => {
      while (next <= last && ahead.length < READ_AHEAD) {
        const fetching = this.fetch(contentId, next, abort.signal);
        // Awaited later, in order; until then a rejection must not count as unhandled.
        fetching.catch(() => undefined);
        ahead.push(fetching);
        next += 1;
      }
    };
    try {
      fill();
      for (let fetching = ahead.shift(); fetching !== undefined; fetching = ahead.shift()) {
        const chunk = await fetching;
        // Start the next fetch before handing this chunk over, so the reader's work overlaps it.
        fill();
        yield chunk;
      }
    } finally {
      abort.abort();
    }
  }

  async remove(contents: readonly { readonly contentId: string; readonly chunkCount: number }[]): Promise<void> {
    const keys: string[] = [];
    for (const { contentId, chunkCount } of contents) {
      if (!Number.isSafeInteger(chunkCount) || chunkCount < 0)
        throw new RangeError(`invalid chunk count ${chunkCount} for content ${contentId}`);
      for (let index = 0; index < chunkCount; index += 1) keys.push(this.keyOf(contentId, index));
    }
    for (let start = 0; start < keys.length; start += DELETE_BATCH) await this.deleteBatch(keys.slice(start, start + DELETE_BATCH));
  }

  /**
   * Writes, reads back and deletes a small object under `${prefix}probe/`: the three permissions
   * the store needs, checked before the first upload rather than during it.
   */
  async probe(): Promise<void> {
    const key = `${this.target.prefix}probe/${randomUUID()}`;
    const body = randomBytes(32);
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.target.bucket, Key: key, Body: body, ContentLength: body.length }));
    } catch (error) {
      throw this.failure('write a probe object', error);
    }
    // The read's failure, if any, is the one to report; the delete is still attempted after it.
    let problem: S3StoreError | undefined;
    try {
      const read = await this.fetchObject(key);
      if (!read.equals(body))
        problem = new S3StoreError(
          `S3 store ${this.where()}: the probe object read back differs from what was written (${read.length} bytes instead of ${body.length})`,
          undefined,
          undefined,
        );
    } catch (error) {
      problem = this.failure('read back the probe object', error);
    }
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.target.bucket, Key: key }));
    } catch (error) {
      problem ??= this.failure('delete the probe object', error);
    }
    if (problem !== undefined) throw problem;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private async fetch(contentId: string, chunkIndex: number, signal: AbortSignal): Promise<Buffer> {
    try {
      return await this.fetchObject(this.keyOf(contentId, chunkIndex), signal);
    } catch (error) {
      if (isMissingObject(error)) throw new ChunkMissingError(contentId, chunkIndex);
      throw this.failure(`read chunk ${chunkIndex} of content ${contentId}`, error);
    }
  }

  private async fetchObject(key: string, signal?: AbortSignal): Promise<Buffer> {
    const answer = await this.client.send(new GetObjectCommand({ Bucket: this.target.bucket, Key: key }), { abortSignal: signal });
    if (answer.Body === undefined) return Buffer.alloc(0);
    const bytes = await answer.Body.transformToByteArray();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private async deleteBatch(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    if (this.multiDeleteUnsupported) return this.deleteOneByOne(keys);
    let failed: string[];
    try {
      const answer = await this.client.send(
        new DeleteObjectsCommand({ Bucket: this.target.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }),
      );
      // Per-key failures (a transient InternalError, SlowDown) get a second chance one by one.
      failed = (answer.Errors ?? []).flatMap((entry) => (entry.Key === undefined || entry.Code === 'NoSuchKey' ? [] : [entry.Key]));
    } catch (error) {
      const { code, status } = errorFacts(error);
      if (
        (code === undefined || !MULTI_DELETE_UNSUPPORTED.has(code)) &&
        (status === undefined || !MULTI_DELETE_UNSUPPORTED_STATUS.has(status))
      )
        throw this.failure(`delete ${keys.length} chunks`, error);
      this.multiDeleteUnsupported = true;
      failed = keys;
    }
    await this.deleteOneByOne(failed);
  }

  private async deleteOneByOne(keys: readonly string[]): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < keys.length) {
        const key = keys[next];
        next += 1;
        try {
          await this.client.send(new DeleteObjectCommand({ Bucket: this.target.bucket, Key: key }));
        } catch (error) {
          // S3 answers 204 for a missing key; some compatible servers answer 404.
          if (!isMissingObject(error)) throw this.failure('delete a chunk', error);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, keys.length) }, worker));
  }

  private where(): string {
    const { bucket, endpoint, region } = this.target;
    return `(bucket "${bucket}" ${endpoint === undefined ? `on AWS, region ${region}` : `at ${endpoint}`})`;
  }

  /** An S3StoreError for a failed `action`, built from the error's code and status only: server messages may quote the request. */
  private failure(action: string, error: unknown): S3StoreError {
    const { code, status } = errorFacts(error);
    const { bucket, endpoint, region, prefix } = this.target;
    let reason: string;
    if (code === 'NoSuchBucket') reason = `bucket "${bucket}" does not exist`;
    else if (code === 'CredentialsProviderError')
      reason = `no AWS credentials found: provide them through the AWS credential chain (${CREDENTIAL_CHAIN})`;
    else if (code === 'InvalidAccessKeyId') reason = `access denied: the server does not know the access key (${CREDENTIAL_CHAIN})`;
    else if (code === 'SignatureDoesNotMatch') reason = `access denied: the secret key does not match the access key (${CREDENTIAL_CHAIN})`;
    else if (status === 403 || (code !== undefined && ACCESS_CODES.has(code)))
      reason =
        `access denied${code === undefined ? '' : ` (${code})`}: the credentials need s3:PutObject, s3:GetObject and s3:DeleteObject ` +
        `on "${bucket}/${prefix}*"`;
    else if (code === 'PermanentRedirect' || code === 'AuthorizationHeaderMalformed' || status === 301)
      reason = `the bucket is not in region ${region}: set region= in STORAGE_URL to the bucket's region`;
    else if (code !== undefined && NETWORK_CODES.has(code))
      reason = `cannot reach ${endpoint ?? `S3 in region ${region}`} (${code}): check the endpoint and that the server is up`;
    else if (code === 'AbortError') reason = 'the request was aborted';
    else reason = `${code ?? 'unknown error'}${status === undefined ? '' : ` (HTTP ${status})`}`;
    return new S3StoreError(`S3 store ${this.where()}: could not ${action}: ${reason}`, code, status);
  }
}

/** A missing object: NoSuchKey, or a bare 404 (HEAD-like answers, other servers), but not a missing bucket. */
function isMissingObject(error: unknown): boolean {
  const { code, status } = errorFacts(error);
  return code === 'NoSuchKey' || code === 'NotFound' || (status === 404 && code !== 'NoSuchBucket');
}

/**
 * The S3 error code (the SDK's exception name) or the network error code, and the HTTP status.
 * Node's connection errors may come wrapped in an AggregateError (one per address tried).
 */
function errorFacts(error: unknown): { code: string | undefined; status: number | undefined } {
  if (typeof error !== 'object' || error === null) return { code: undefined, status: undefined };
  const fields = error as {
    name?: unknown;
    code?: unknown;
    Code?: unknown;
    message?: unknown;
    $metadata?: { httpStatusCode?: unknown };
    errors?: unknown;
  };
  const status = typeof fields.$metadata?.httpStatusCode === 'number' ? fields.$metadata.httpStatusCode : undefined;
  const networkCode = typeof fields.code === 'string' ? fields.code : undefined;
  if (networkCode !== undefined && NETWORK_CODES.has(networkCode)) return { code: networkCode, status };
  if (Array.isArray(fields.errors) && fields.errors.length > 0) {
    const inner = errorFacts(fields.errors[0]);
    if (inner.code !== undefined) return { code: inner.code, status: status ?? inner.status };
  }
  // A connection error from another realm (a vm context, as under jest) reaches us as an SDK
  // wrapper that kept only its text: the code is still in there.
  const quoted = status === undefined && typeof fields.message === 'string' ? /\b(E[A-Z]+)\b/.exec(fields.message)?.[1] : undefined;
  if (quoted !== undefined && NETWORK_CODES.has(quoted)) return { code: quoted, status };
  const serviceCode = typeof fields.Code === 'string' ? fields.Code : undefined;
  const name = typeof fields.name === 'string' && fields.name !== 'Error' && fields.name !== 'AggregateError' ? fields.name : undefined;
  return { code: serviceCode ?? name ?? networkCode, status };
}
