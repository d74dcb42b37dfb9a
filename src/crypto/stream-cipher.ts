import { createCipheriv, createDecipheriv } from 'node:crypto';
import { KEY_BYTES, TAG_BYTES } from './aes-gcm';

/**
 * The STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015) over AES-256-GCM: a long
 * plaintext in fixed-size chunks, each sealed with nonce = 7-byte random prefix ‖ 32-bit chunk
 * counter ‖ final-chunk flag. Reordering, dropping, truncating or appending chunks fails to
 * authenticate. Backup archives and stored files both use it, each chunk decryptable on its own
 * (a file's Range request opens only the chunks it covers).
 */
export const STREAM_NONCE_PREFIX_BYTES = 7;
/** The counter is 32 bits. */
export const STREAM_MAX_CHUNKS = 2 ** 32;

const GCM_OPTIONS = { authTagLength: TAG_BYTES };

function chunkNonce(prefix: Buffer, counter: number, final: boolean): Buffer {
  if (prefix.length !== STREAM_NONCE_PREFIX_BYTES) throw new Error(`a STREAM nonce prefix is ${STREAM_NONCE_PREFIX_BYTES} bytes`);
  if (!Number.isInteger(counter) || counter < 0 || counter >= STREAM_MAX_CHUNKS)
    throw new Error('STREAM chunk counter out of range (2^32 chunks)');
  const nonce = Buffer.alloc(12);
  prefix.copy(nonce, 0);
  nonce.writeUInt32BE(counter, STREAM_NONCE_PREFIX_BYTES);
  nonce[11] = final ? 1 : 0;
  return nonce;
}

/** Where a chunk sits in its stream, and what it is bound to. */
export interface StreamPosition {
  readonly key: Buffer;
  readonly noncePrefix: Buffer;
  readonly counter: number;
  readonly final: boolean;
  /** Additional data every chunk of the stream carries (an archive's header, a file's content id). */
  readonly additionalData: Buffer;
}

/** Seals one chunk: ciphertext ‖ 16-byte tag. */
export function sealStreamChunk(position: StreamPosition, plaintext: Buffer): Buffer {
  if (position.key.length !== KEY_BYTES) throw new Error('a STREAM key is 32 bytes');
  const cipher = createCipheriv(
    'aes-256-gcm',
    position.key,
    chunkNonce(position.noncePrefix, position.counter, position.final),
    GCM_OPTIONS,
  );
  cipher.setAAD(position.additionalData);
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** Opens one chunk; undefined when it does not authenticate at this position (changed, moved, cut or the wrong key). */
export function openStreamChunk(position: StreamPosition, sealed: Buffer): Buffer | undefined {
  if (sealed.length < TAG_BYTES) return undefined;
  const decipher = createDecipheriv(
    'aes-256-gcm',
    position.key,
    chunkNonce(position.noncePrefix, position.counter, position.final),
    GCM_OPTIONS,
  );
  decipher.setAAD(position.additionalData);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  const plaintext = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES));
  try {
    decipher.final();
  } catch {
    return undefined;
  }
  return plaintext;
}
