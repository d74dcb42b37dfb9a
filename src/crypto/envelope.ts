import { randomBytes } from 'node:crypto';
import { IV_BYTES, TAG_BYTES, gcmDecrypt, gcmEncrypt } from './aes-gcm';
import type { Keyring } from './keyring';

export const ENVELOPE_VERSION = 'v1';

/**
 * The one decryption error. Bland on purpose (as jose's): it never says whether the key id, the
 * tag, the column binding or the format was wrong. Not an AppError, so clients see it masked.
 */
export class DecryptionFailedError extends Error {
  readonly code = 'DECRYPTION_FAILED';

  constructor(readonly domain: string) {
    super('decryption failed');
    this.name = 'DecryptionFailedError';
  }
}

/** By domain, then key id: read per encrypted value, so no string is built per lookup. */
const additionalDataCache = new Map<string, Map<string, Buffer>>();

/** The additional data: binds a ciphertext to its format version, key id and column. */
function additionalData(kid: string, domain: string): Buffer {
  let byKid = additionalDataCache.get(domain);
  if (!byKid) additionalDataCache.set(domain, (byKid = new Map<string, Buffer>()));
  let aad = byKid.get(kid);
  if (!aad) {
    aad = Buffer.from(`${ENVELOPE_VERSION}.${kid}.${domain}`, 'utf8');
    byKid.set(kid, aad);
  }
  return aad;
}

/**
 * IVs are drawn from a pool refilled 1,024 IVs at a time: one randomBytes call costs about as
 * much as the encryption itself. Every IV is still fresh CSPRNG output, used once.
 */
const IV_POOL_BYTES = IV_BYTES * 1024;
let ivPool = Buffer.alloc(0);
let ivPoolOffset = 0;

function freshIv(): Buffer {
  if (ivPoolOffset + IV_BYTES > ivPool.length) {
    ivPool = randomBytes(IV_POOL_BYTES);
    ivPoolOffset = 0;
  }
  const iv = Buffer.from(ivPool.subarray(ivPoolOffset, ivPoolOffset + IV_BYTES));
  ivPool.fill(0, ivPoolOffset, ivPoolOffset + IV_BYTES);
  ivPoolOffset += IV_BYTES;
  return iv;
}

/**
 * Encrypts under the current key: `v1.<kid>.<iv>.<ciphertext+tag>`, base64url parts, a fresh
 * random 96-bit IV per call. `domain` is the column ("table.column") the value belongs to.
 */
export function seal(keyring: Keyring, plaintext: Buffer, domain: string): string {
  const kid = keyring.currentKid;
  const iv = freshIv();
  const { ciphertext, tag } = gcmEncrypt(keyring.columnKey(kid, domain)!, iv, plaintext, additionalData(kid, domain));
  return `${ENVELOPE_VERSION}.${kid}.${iv.toString('base64url')}.${Buffer.concat([ciphertext, tag]).toString('base64url')}`;
}

/** Decrypts an envelope written by `seal` for the same domain, under any key of the keyring. */
export function open(keyring: Keyring, envelope: string, domain: string): Buffer {
  // v1.<kid>.<iv>.<body>: found by position rather than split (a value is opened per row and column).
  const kidStart = ENVELOPE_VERSION.length + 1;
  const ivStart = envelope.indexOf('.', kidStart) + 1;
  const bodyStart = ivStart > 0 ? envelope.indexOf('.', ivStart) + 1 : 0;
  if (!envelope.startsWith(`${ENVELOPE_VERSION}.`) || ivStart === 0 || bodyStart === 0 || envelope.includes('.', bodyStart))
    throw new DecryptionFailedError(domain);
  const kid = envelope.slice(kidStart, ivStart - 1);
  const ivText = envelope.slice(ivStart, bodyStart - 1);
  const body = envelope.slice(bodyStart);
  const key = keyring.columnKey(kid, domain);
  const iv = Buffer.from(ivText, 'base64url');
  const sealed = Buffer.from(body, 'base64url');
  if (!key || sealed.length < TAG_BYTES || iv.toString('base64url') !== ivText || sealed.toString('base64url') !== body) {
    throw new DecryptionFailedError(domain);
  }
  try {
    return gcmDecrypt(
      key,
      iv,
      sealed.subarray(0, sealed.length - TAG_BYTES),
      sealed.subarray(sealed.length - TAG_BYTES),
      additionalData(kid, domain),
    );
  } catch {
    throw new DecryptionFailedError(domain);
  }
}

/** The key id an envelope was written with, without decrypting it. */
export function envelopeKid(envelope: string): string | undefined {
  const parts = envelope.split('.');
  return parts.length === 4 && parts[0] === ENVELOPE_VERSION ? parts[1] : undefined;
}
