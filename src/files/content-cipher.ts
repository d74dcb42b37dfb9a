import { randomBytes } from 'node:crypto';
import type { Keyring } from '../crypto/keyring';
import { STREAM_NONCE_PREFIX_BYTES, openStreamChunk, sealStreamChunk } from '../crypto/stream-cipher';

/**
 * Plaintext bytes per chunk. A chunk is the unit a store writes, a download decrypts and a
 * Range request starts from: 512 KiB keeps a 100 MB file at 200 rows or objects and a download's
 * memory at a few chunks.
 */
export const FILE_CHUNK_BYTES = 512 * 1024;
const SALT_BYTES = 32;

/** How a content is keyed and cut: what file_contents keeps beside its chunks. */
export interface ContentKeying {
  readonly id: string;
  readonly kid: string;
  readonly salt: Buffer;
  readonly noncePrefix: Buffer;
  readonly chunkBytes: number;
  readonly byteSize: number;
}

/** A stored content's chunks do not authenticate: changed, moved between contents, cut short, or written under another key. */
export class ContentDamagedError extends Error {
  constructor(
    readonly contentId: string,
    readonly chunkIndex: number,
  ) {
    super(`chunk ${chunkIndex} of content ${contentId} does not authenticate`);
    this.name = 'ContentDamagedError';
  }
}

/** The keyring lacks the key a content was written with. */
export class ContentKeyMissingError extends Error {
  constructor(readonly kid: string) {
    super(`file contents written with key "${kid}" cannot be read: that key is not in the keyring`);
    this.name = 'ContentKeyMissingError';
  }
}

/** Keying for a new content of `byteSize` bytes under the keyring's current key: a fresh salt (so a key of its own) and nonce prefix. */
export function newContentKeying(keyring: Keyring, id: string, byteSize: number, chunkBytes = FILE_CHUNK_BYTES): ContentKeying {
  return {
    id,
    kid: keyring.currentKid,
    salt: randomBytes(SALT_BYTES),
    noncePrefix: randomBytes(STREAM_NONCE_PREFIX_BYTES),
    chunkBytes,
    byteSize,
  };
}

/** Chunks of a content: at least one (an empty file is one empty final chunk). */
export function chunkCountOf(byteSize: number, chunkBytes: number): number {
  return Math.max(1, Math.ceil(byteSize / chunkBytes));
}

/**
 * Seals and opens the chunks of one content (the STREAM construction of backup archives). Each
 * chunk is bound to the content's id, chunk size and total size, and to its position, the last
 * one flagged final: a chunk moved to another content or place, a dropped last chunk or a changed
 * size all fail to open.
 */
export class ContentCipher {
  readonly chunkCount: number;
  private readonly key: Buffer;
  private readonly additionalData: Buffer;

  constructor(
    keyring: Keyring,
    readonly keying: ContentKeying,
  ) {
    const key = keyring.fileContentKey(keying.kid, keying.salt);
    if (!key) throw new ContentKeyMissingError(keying.kid);
    this.key = key;
    this.chunkCount = chunkCountOf(keying.byteSize, keying.chunkBytes);
    this.additionalData = Buffer.from(`bastion/v1/file-content|${keying.id}|${keying.chunkBytes}|${keying.byteSize}`, 'utf8');
  }

  /** Plaintext bytes chunk `index` holds. */
  plainLengthOf(index: number): number {
    if (index < this.chunkCount - 1) return this.keying.chunkBytes;
    return this.keying.byteSize - (this.chunkCount - 1) * this.keying.chunkBytes;
  }

  seal(index: number, plaintext: Buffer): Buffer {
    if (plaintext.length !== this.plainLengthOf(index)) throw new Error(`chunk ${index} must hold ${this.plainLengthOf(index)} bytes`);
    return sealStreamChunk(this.position(index), plaintext);
  }

  open(index: number, sealed: Buffer): Buffer {
    const plaintext = openStreamChunk(this.position(index), sealed);
    if (!plaintext || plaintext.length !== this.plainLengthOf(index)) throw new ContentDamagedError(this.keying.id, index);
    return plaintext;
  }

  private position(index: number) {
    return {
      key: this.key,
      noncePrefix: this.keying.noncePrefix,
      counter: index,
      final: index === this.chunkCount - 1,
      additionalData: this.additionalData,
    };
  }
}
