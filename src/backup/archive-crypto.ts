import { randomBytes, timingSafeEqual } from 'node:crypto';
import { Transform, TransformCallback } from 'node:stream';
import { KEY_BYTES, TAG_BYTES } from '../crypto/aes-gcm';
import { KID_PATTERN, Keyring } from '../crypto/keyring';
import { STREAM_MAX_CHUNKS, STREAM_NONCE_PREFIX_BYTES, openStreamChunk, sealStreamChunk } from '../crypto/stream-cipher';
import { BackupError, archiveDamaged } from './backup-errors';

/** 0x89 first, as PNG does: a transfer that strips the 8th bit, or a text file, fails at once. */
export const ARCHIVE_MAGIC = Buffer.from([0x89, 0x42, 0x53, 0x54, 0x42, 0x41, 0x4b, 0x0a]); // \x89BSTBAK\n
export const ARCHIVE_FORMAT_VERSION = 1;
/** Plaintext bytes per encrypted chunk: memory stays at a few chunks whatever the database size. */
export const DEFAULT_CHUNK_BYTES = 64 * 1024;
const SALT_BYTES = 32;
const NONCE_PREFIX_BYTES = STREAM_NONCE_PREFIX_BYTES;
const KEY_CHECK_BYTES = 16;
/** The longest header: magic, version, kid length, a 32-character kid, salt, prefix, chunk size, key check. */
export const MAX_HEADER_BYTES = ARCHIVE_MAGIC.length + 2 + 32 + SALT_BYTES + NONCE_PREFIX_BYTES + 4 + KEY_CHECK_BYTES;

/** The plaintext header of an archive; its bytes are the additional data of every chunk. */
export interface ArchiveHeader {
  readonly kid: string;
  readonly salt: Buffer;
  readonly noncePrefix: Buffer;
  readonly chunkBytes: number;
  readonly keyCheck: Buffer;
  /** The encoded header, as written. */
  readonly bytes: Buffer;
}

/** A fresh header for an archive encrypted with data key `kid`, and that archive's encryption key. */
export function newArchiveHeader(keyring: Keyring, kid: string, chunkBytes = DEFAULT_CHUNK_BYTES): { header: ArchiveHeader; key: Buffer } {
  const salt = randomBytes(SALT_BYTES);
  const keys = keyring.archiveKeys(kid, salt);
  if (!keys) throw new BackupError('UNKNOWN_KEY', `the backup key "${kid}" (BACKUP_KEY_ID) is not in the keyring`);
  const noncePrefix = randomBytes(NONCE_PREFIX_BYTES);
  const kidBytes = Buffer.from(kid, 'ascii');
  const fixed = Buffer.alloc(2);
  fixed.writeUInt8(ARCHIVE_FORMAT_VERSION, 0);
  fixed.writeUInt8(kidBytes.length, 1);
  const size = Buffer.alloc(4);
  size.writeUInt32BE(chunkBytes);
  const bytes = Buffer.concat([ARCHIVE_MAGIC, fixed, kidBytes, salt, noncePrefix, size, keys.check]);
  return { header: { kid, salt, noncePrefix, chunkBytes, keyCheck: keys.check, bytes }, key: keys.encryption };
}

/**
 * Reads a header from the first bytes of a file. Throws NOT_AN_ARCHIVE, UNSUPPORTED_FORMAT or
 * ARCHIVE_DAMAGED; the key is checked separately (`archiveKey`).
 */
export function parseArchiveHeader(start: Buffer): ArchiveHeader {
  if (start.length < ARCHIVE_MAGIC.length || !start.subarray(0, ARCHIVE_MAGIC.length).equals(ARCHIVE_MAGIC)) {
    throw new BackupError('NOT_AN_ARCHIVE', 'this file is not a Bastion backup archive');
  }
  if (start.length <= ARCHIVE_MAGIC.length + 1) throw archiveDamaged('its header is cut short');
  let offset = ARCHIVE_MAGIC.length;
  const version = start[offset];
  if (version !== ARCHIVE_FORMAT_VERSION) {
    throw new BackupError(
      'UNSUPPORTED_FORMAT',
      `the archive has format version ${version ?? '(none)'}; this Bastion reads version ${ARCHIVE_FORMAT_VERSION}: use the Bastion release that wrote it`,
    );
  }
  const kidLength = start[offset + 1] ?? 0;
  offset += 2;
  const length = offset + kidLength + SALT_BYTES + NONCE_PREFIX_BYTES + 4 + KEY_CHECK_BYTES;
  if (start.length < length) throw archiveDamaged('its header is cut short');
  // latin1, not ascii: ascii decoding drops the high bit, so a damaged byte could pass as a valid kid.
  const kid = start.subarray(offset, offset + kidLength).toString('latin1');
  if (!KID_PATTERN.test(kid)) throw archiveDamaged('its header names no valid key id');
  offset += kidLength;
  const salt = Buffer.from(start.subarray(offset, offset + SALT_BYTES));
  offset += SALT_BYTES;
  const noncePrefix = Buffer.from(start.subarray(offset, offset + NONCE_PREFIX_BYTES));
  offset += NONCE_PREFIX_BYTES;
  const chunkBytes = start.readUInt32BE(offset);
  offset += 4;
  if (chunkBytes < 1024 || chunkBytes > 16 * 1024 * 1024) throw archiveDamaged(`its header gives an impossible chunk size (${chunkBytes})`);
  const keyCheck = Buffer.from(start.subarray(offset, offset + KEY_CHECK_BYTES));
  return { kid, salt, noncePrefix, chunkBytes, keyCheck, bytes: Buffer.from(start.subarray(0, length)) };
}

/** The archive's encryption key, once the header's key check proves the keyring holds the key it was written with. */
export function archiveKey(keyring: Keyring, header: ArchiveHeader): Buffer {
  const keys = keyring.archiveKeys(header.kid, header.salt);
  if (!keys)
    throw new BackupError(
      'UNKNOWN_KEY',
      `the archive was encrypted with key "${header.kid}", which is not in this keyring (BASTION_ENCRYPTION_KEYS): restore needs that key`,
    );
  if (!timingSafeEqual(keys.check, header.keyCheck)) {
    throw new BackupError(
      'WRONG_KEY',
      `the archive does not open with this keyring's key "${header.kid}": it was written with a different key of that name`,
    );
  }
  return keys.encryption;
}

/** Holds incoming buffers and hands out exact-size pieces without copying more than once. */
class ByteQueue {
  private parts: Buffer[] = [];
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.parts.push(chunk);
    this.length += chunk.length;
  }

  take(bytes: number): Buffer {
    const taken = Buffer.allocUnsafe(bytes);
    let filled = 0;
    while (filled < bytes) {
      const head = this.parts[0];
      const count = Math.min(head.length, bytes - filled);
      head.copy(taken, filled, 0, count);
      filled += count;
      if (count === head.length) this.parts.shift();
      else this.parts[0] = head.subarray(count);
    }
    this.length -= bytes;
    return taken;
  }
}

/**
 * Cuts a byte stream into fixed-size units and hands each to `process`, the last one (shorter,
 * possibly empty) with `final` set: a unit is only known to be the last once the stream ends.
 */
abstract class UnitTransform extends Transform {
  private readonly pending = new ByteQueue();
  protected counter = 0;

  constructor(private readonly unitBytes: number) {
    super();
  }

  protected abstract process(unit: Buffer, final: boolean): Buffer;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.pending.push(chunk);
    try {
      // Strictly more than a unit: the last unit must carry the final flag.
      while (this.pending.length > this.unitBytes) this.push(this.process(this.pending.take(this.unitBytes), false));
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.push(this.process(this.pending.take(this.pending.length), true));
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }
}

/**
 * Authenticated chunked encryption (AES-256-GCM per chunk): every chunk but the last holds
 * exactly `chunkBytes` of plaintext; the last (possibly empty) carries the final flag in its
 * nonce. Reordering, dropping, truncating or appending chunks, or changing any byte, fails.
 */
export class ArchiveEncryptor extends UnitTransform {
  constructor(
    private readonly key: Buffer,
    private readonly header: ArchiveHeader,
  ) {
    super(header.chunkBytes);
    if (key.length !== KEY_BYTES) throw new Error('archive key must be 32 bytes');
  }

  protected process(plaintext: Buffer, final: boolean): Buffer {
    // 2^32 chunks of 64 KiB (256 TiB) per archive.
    if (this.counter >= STREAM_MAX_CHUNKS) throw new Error('archive too large for one key (2^32 chunks)');
    const sealed = sealStreamChunk(
      { key: this.key, noncePrefix: this.header.noncePrefix, counter: this.counter, final, additionalData: this.header.bytes },
      plaintext,
    );
    this.counter += 1;
    return sealed;
  }
}

/** The inverse of ArchiveEncryptor: passes on only authenticated plaintext, and fails on any change. */
export class ArchiveDecryptor extends UnitTransform {
  constructor(
    private readonly key: Buffer,
    private readonly header: ArchiveHeader,
  ) {
    super(header.chunkBytes + TAG_BYTES);
  }

  protected process(sealed: Buffer, final: boolean): Buffer {
    if (sealed.length < TAG_BYTES) throw archiveDamaged('it ends early (truncated)');
    const plaintext = openStreamChunk(
      { key: this.key, noncePrefix: this.header.noncePrefix, counter: this.counter, final, additionalData: this.header.bytes },
      sealed,
    );
    if (!plaintext)
      throw archiveDamaged(
        final
          ? `its last chunk (${this.counter}) does not authenticate: the archive is truncated, extended or was modified`
          : `chunk ${this.counter} does not authenticate: bytes were changed, removed or reordered`,
      );
    this.counter += 1;
    return plaintext;
  }
}
