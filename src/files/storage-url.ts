import { isIP } from 'node:net';

/** Where file contents' sealed chunks go: the database (the default) or an S3 bucket. */
export type StorageTarget = PostgresStorageTarget | S3StorageTarget;

export interface PostgresStorageTarget {
  readonly kind: 'postgres';
}

export interface S3StorageTarget {
  readonly kind: 's3';
  readonly bucket: string;
  readonly region: string;
  /** An S3-compatible server (MinIO, Garage, Ceph…); AWS itself when absent. */
  readonly endpoint?: string;
  /** Prepended to every key: empty, or ending with '/'. */
  readonly prefix: string;
  readonly forcePathStyle: boolean;
}

const DEFAULT_REGION = 'us-east-1';

/** The query parameters an s3:// URL may carry. */
const S3_PARAMETERS = ['endpoint', 'region', 'prefix', 'forcePathStyle'] as const;

/** What the URL's shape should be, for error messages. */
const EXAMPLE = 'STORAGE_URL=postgres, or STORAGE_URL=s3://bucket?region=eu-west-1&endpoint=https://s3.example.com&prefix=bastion/';

const CREDENTIALS_ADVICE =
  'credentials do not belong in STORAGE_URL (it is logged and shown in process listings): ' +
  'give them through the AWS credential chain instead — AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile (AWS_PROFILE), or an instance role';

/** Parameter names that can only mean someone is trying to pass a credential. */
const CREDENTIAL_PARAMETER = /key|secret|token|password|credential|session/i;

/** Keys are at most 1024 bytes; the store adds about 60 to the prefix. */
const MAX_PREFIX_BYTES = 900;

export class StorageUrlError extends Error {
  constructor(reason: string) {
    super(`Invalid STORAGE_URL: ${reason}`);
    this.name = 'StorageUrlError';
  }
}

/**
 * Reads the STORAGE_URL setting: unset, empty or `postgres` for the database, or
 * `s3://bucket?endpoint=…&region=…&prefix=…&forcePathStyle=…`. Error messages never repeat the
 * value: a mistyped one may still hold a secret.
 */
export function parseStorageUrl(value: string | undefined): StorageTarget {
  const text = value?.trim() ?? '';
  if (text === '' || text.toLowerCase() === 'postgres') return { kind: 'postgres' };
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1]?.toLowerCase();
  if (scheme !== 's3')
    throw new StorageUrlError(
      scheme === undefined ? `expected "postgres" or an s3:// URL (${EXAMPLE})` : `unsupported scheme "${scheme}:" (${EXAMPLE})`,
    );
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // URL's own error carries the input, which may hold a secret.
    throw new StorageUrlError(`not a valid URL (${EXAMPLE})`);
  }
  if (url.username !== '' || url.password !== '') throw new StorageUrlError(CREDENTIALS_ADVICE);
  const bucket = validBucket(url.hostname);
  if (url.port !== '')
    throw new StorageUrlError('an s3:// URL names a bucket, not a server: give the server as ?endpoint=http(s)://host:port');
  if (url.pathname !== '' && url.pathname !== '/') throw new StorageUrlError('an s3:// URL has no path: give the key prefix as ?prefix=…');
  if (url.hash !== '') throw new StorageUrlError('an s3:// URL has no #fragment');

  const parameters = readParameters(url.searchParams);

  const endpoint = parameters.endpoint === undefined ? undefined : validEndpoint(parameters.endpoint);
  const region = parameters.region === undefined ? DEFAULT_REGION : validRegion(parameters.region);
  const prefix = parameters.prefix === undefined ? '' : validPrefix(parameters.prefix);
  // Path-style (host/bucket/key) is what S3-compatible servers answer; AWS prefers virtual-hosted.
  const forcePathStyle = parameters.forcePathStyle === undefined ? endpoint !== undefined : validBoolean(parameters.forcePathStyle);
  return { kind: 's3', bucket, region, ...(endpoint === undefined ? {} : { endpoint }), prefix, forcePathStyle };
}

/** One line for logs and diagnostics; a target never holds credentials, so neither does this. */
export function describeStorage(target: StorageTarget): string {
  if (target.kind === 'postgres') return 'postgres (file_chunks table)';
  const details = [
    `region ${target.region}`,
    target.endpoint === undefined ? 'AWS endpoint' : `endpoint ${target.endpoint}`,
    target.prefix === '' ? 'no key prefix' : `key prefix "${target.prefix}"`,
    target.forcePathStyle ? 'path-style' : 'virtual-hosted-style',
  ];
  return `s3://${target.bucket} (${details.join(', ')})`;
}

function readParameters(search: URLSearchParams): Partial<Record<(typeof S3_PARAMETERS)[number], string>> {
  const found: Partial<Record<(typeof S3_PARAMETERS)[number], string>> = {};
  for (const [name, value] of search) {
    if (CREDENTIAL_PARAMETER.test(name)) throw new StorageUrlError(CREDENTIALS_ADVICE);
    const known = S3_PARAMETERS.find((parameter) => parameter === name);
    if (known === undefined)
      throw new StorageUrlError(`unknown parameter "${name.slice(0, 40)}" (known: ${S3_PARAMETERS.join(', ')}; names are case-sensitive)`);
    if (found[known] !== undefined) throw new StorageUrlError(`parameter "${known}" is given twice`);
    found[known] = value;
  }
  return found;
}

/** AWS's bucket naming rules, so a typo fails at start-up rather than at the first upload. */
function validBucket(name: string): string {
  if (name === '') throw new StorageUrlError(`no bucket name (${EXAMPLE})`);
  const problem =
    name.length < 3 || name.length > 63
      ? 'must be 3 to 63 characters long'
      : !/^[a-z0-9.-]+$/.test(name)
        ? 'may hold only lowercase letters, digits, dots and hyphens'
        : !/^[a-z0-9].*[a-z0-9]$/.test(name)
          ? 'must begin and end with a letter or a digit'
          : name.includes('..')
            ? 'may not hold two dots in a row'
            : isIP(name) !== 0
              ? 'may not be formatted as an IP address'
              : undefined;
  if (problem !== undefined) throw new StorageUrlError(`bucket name "${name}" ${problem}`);
  return name;
}

function validEndpoint(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new StorageUrlError('endpoint is not a URL: expected http(s)://host[:port]');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new StorageUrlError(`endpoint must be an http:// or https:// URL, not ${url.protocol}`);
  if (url.username !== '' || url.password !== '') throw new StorageUrlError(CREDENTIALS_ADVICE);
  if (url.search !== '' || url.hash !== '') throw new StorageUrlError('endpoint may not carry a ?query or #fragment');
  // Kept with its path: some S3-compatible servers are mounted below the root.
  return url.pathname === '/' ? url.origin : `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

function validRegion(value: string): string {
  if (!/^[a-z0-9][a-z0-9-]{0,49}$/i.test(value))
    throw new StorageUrlError('region must be a region name such as eu-west-1 (letters, digits and hyphens)');
  return value;
}

function validPrefix(value: string): string {
  // A leading '/' would make keys like "/bastion/…", which S3 allows but every tool shows oddly.
  const trimmed = value.replace(/^\/+/, '');
  if (trimmed === '') return '';
  if ([...trimmed].some((character) => character.charCodeAt(0) < 0x20 || character === '\u007f' || character === '\\'))
    throw new StorageUrlError('prefix may not hold control characters or backslashes');
  const prefix = trimmed.endsWith('/') ? trimmed : `${trimmed}/`;
  if (Buffer.byteLength(prefix) > MAX_PREFIX_BYTES) throw new StorageUrlError(`prefix is longer than ${MAX_PREFIX_BYTES} bytes`);
  return prefix;
}

function validBoolean(value: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new StorageUrlError('forcePathStyle must be true or false');
}
