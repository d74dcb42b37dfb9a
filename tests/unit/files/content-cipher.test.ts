import { randomBytes } from 'node:crypto';
import {
  ContentCipher,
  ContentDamagedError,
  ContentKeyMissingError,
  chunkCountOf,
  newContentKeying,
} from '../../../src/files/content-cipher';
import { testKeyring } from '../../support/test-keys';

const CHUNK = 1024;

function cipherFor(byteSize: number, kid: 'k1' | 'k2' = 'k1') {
  const keyring = testKeyring(kid);
  return {
    keyring,
    cipher: new ContentCipher(keyring, newContentKeying(keyring, 'a3f1c0de-0000-4000-8000-000000000001', byteSize, CHUNK)),
  };
}

function sealAll(cipher: ContentCipher, plaintext: Buffer): Buffer[] {
  return Array.from({ length: cipher.chunkCount }, (_, index) =>
    cipher.seal(index, plaintext.subarray(index * CHUNK, index * CHUNK + cipher.plainLengthOf(index))),
  );
}

describe('ContentCipher: chunks of one stored content', () => {
  it('cuts a content into whole chunks and a short last one; an empty content is one empty chunk', () => {
    expect([chunkCountOf(0, CHUNK), chunkCountOf(1, CHUNK), chunkCountOf(CHUNK, CHUNK), chunkCountOf(CHUNK + 1, CHUNK)]).toEqual([
      1, 1, 1, 2,
    ]);
    const { cipher } = cipherFor(2 * CHUNK + 10);
    expect([cipher.plainLengthOf(0), cipher.plainLengthOf(1), cipher.plainLengthOf(2)]).toEqual([CHUNK, CHUNK, 10]);
  });

  it('opens what it sealed, chunk by chunk, in any order', () => {
    const plaintext = randomBytes(3 * CHUNK + 7);
    const { cipher } = cipherFor(plaintext.length);
    const sealed = sealAll(cipher, plaintext);
    expect(sealed.every((chunk, index) => chunk.length === cipher.plainLengthOf(index) + 16)).toBe(true);
    const opened: Buffer[] = [];
    for (const index of [3, 0, 2, 1]) opened[index] = cipher.open(index, sealed[index]);
    expect(Buffer.concat(opened)).toEqual(plaintext);
  });

  it('refuses a changed byte, a chunk moved to another place or content, a dropped last chunk and a changed size', () => {
    const plaintext = randomBytes(3 * CHUNK);
    const { keyring, cipher } = cipherFor(plaintext.length);
    const sealed = sealAll(cipher, plaintext);
    const flipped = Buffer.from(sealed[1]);
    flipped[5] ^= 1;
    expect(() => cipher.open(1, flipped)).toThrow(ContentDamagedError);
    expect(() => cipher.open(0, sealed[1])).toThrow(ContentDamagedError);
    // The same bytes as a two-chunk content: chunk 1 was not sealed as the last one.
    const shorter = new ContentCipher(keyring, { ...cipher.keying, byteSize: 2 * CHUNK });
    expect(() => shorter.open(1, sealed[1])).toThrow(ContentDamagedError);
    const other = new ContentCipher(keyring, { ...cipher.keying, id: 'a3f1c0de-0000-4000-8000-000000000002' });
    expect(() => other.open(0, sealed[0])).toThrow(ContentDamagedError);
  });

  it('gives every content a key of its own: the same plaintext seals differently', () => {
    const plaintext = Buffer.alloc(CHUNK, 7);
    const first = cipherFor(CHUNK).cipher.seal(0, plaintext);
    const second = cipherFor(CHUNK).cipher.seal(0, plaintext);
    expect(first.equals(second)).toBe(false);
  });

  it('names a missing key, and refuses a chunk of the wrong length', () => {
    const { cipher } = cipherFor(CHUNK, 'k1');
    expect(() => new ContentCipher(testKeyring('k2'), { ...cipher.keying, kid: 'gone' })).toThrow(ContentKeyMissingError);
    expect(() => cipher.seal(0, Buffer.alloc(CHUNK - 1))).toThrow(/must hold 1024 bytes/);
  });
});
