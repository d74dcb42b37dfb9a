import type { SettingValues, SettingsTable } from '../config';
import { SettingProblem, byteSize, integer, spec } from '../config/settings';
import { StorageTarget, StorageUrlError, parseStorageUrl } from './storage-url';

const specs = {
  storage: spec<StorageTarget>({
    env: 'STORAGE_URL',
    description:
      'Where file contents are stored, encrypted: `postgres` (a table, the default) or `s3://bucket?endpoint=…&region=…&prefix=…` ' +
      '(an S3-compatible bucket; credentials from the AWS chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or an instance role).',
    fallback: () => parseStorageUrl(undefined),
    defaultText: 'postgres',
    parse: (raw) => {
      try {
        return parseStorageUrl(raw);
      } catch (error) {
        if (error instanceof StorageUrlError) throw new SettingProblem(error.message.replace(/^Invalid STORAGE_URL: /, ''));
        throw error;
      }
    },
  }),
  filesAccountQuotaBytes: spec<number>({
    env: 'BASTION_FILES_ACCOUNT_QUOTA',
    description: 'Bytes of files (and unfinished uploads) one account may hold; past it startUpload answers QUOTA_EXCEEDED.',
    fallback: () => 1024 * 1024 * 1024,
    defaultText: '1gb',
    parse: byteSize(1024, 1024 * 1024 * 1024 * 1024),
  }),
  filesUrlTtlSeconds: spec<number>({
    env: 'BASTION_FILES_URL_TTL_SECONDS',
    description: 'How long a signed download URL (File.url) works, in seconds.',
    fallback: () => 300,
    defaultText: '300',
    parse: integer(30, 24 * 60 * 60),
  }),
  filesUploadTtlHours: spec<number>({
    env: 'BASTION_FILES_UPLOAD_TTL_HOURS',
    description: 'How long an upload may take from its start to its last byte; then it and its bytes are deleted.',
    fallback: () => 24,
    defaultText: '24',
    parse: integer(1, 7 * 24),
  }),
  filesMaxImagePixels: spec<number>({
    env: 'BASTION_FILES_MAX_IMAGE_PIXELS',
    description: 'Largest image, in pixels, that is decoded at all; a larger one (a decompression bomb) is refused from its header.',
    fallback: () => 50_000_000,
    defaultText: '50000000',
    parse: integer(1_000_000, 500_000_000),
  }),
  filesMaxUploadsPerAccount: spec<number>({
    env: 'BASTION_FILES_MAX_UPLOADS_PER_ACCOUNT',
    description: 'Upload requests one account may have in flight on one instance; the next gets 429.',
    fallback: () => 4,
    defaultText: '4',
    parse: integer(1, 1_000),
  }),
  filesMaxUploadsPerAddress: spec<number>({
    env: 'BASTION_FILES_MAX_UPLOADS_PER_ADDRESS',
    description: 'Upload requests one client address may have in flight on one instance; the next gets 429.',
    fallback: () => 8,
    defaultText: '8',
    parse: integer(1, 10_000),
  }),
  filesBaseUrl: spec<string | undefined>({
    env: 'BASTION_FILES_BASE_URL',
    description:
      "The origin of upload and download URLs (https://api.example.com); unset: the request's own (its Host, and https when TLS or a TRUST_PROXY proxy says so).",
    fallback: () => undefined,
    defaultText: '(the request’s origin)',
    parse: (raw) => {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw new SettingProblem('must be an origin such as https://api.example.com');
      }
      if (!['http:', 'https:'].includes(url.protocol) || url.pathname !== '/' || url.search || url.username)
        throw new SettingProblem('must be an origin such as https://api.example.com (no path, query or credentials)');
      return url.origin;
    },
  }),
};

declare module '../config/config' {
  interface Config extends SettingValues<typeof specs> {}
}

/** Storage, quotas and limits of files. */
export const FILES_SETTINGS: SettingsTable = { specs };
