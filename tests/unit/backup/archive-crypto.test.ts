import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TAG_BYTES } from '../../../src/crypto/aes-gcm';
import { Keyring } from '../../../src/crypto/keyring';
import {
  ARCHIVE_FORMAT_VERSION,
  ARCHIVE_MAGIC,
  ArchiveDecryptor,
  ArchiveEncryptor,
  MAX_HEADER_BYTES,
  archiveKey,
  newArchiveHeader,
  parseArchiveHeader,
} from '../../../src/backup/archive-crypto';
import { BackupError, BackupFailure } from '../../../src/backup/backup-errors';
import { TEST_KEYS, testKeyring } from '../../support/test-keys';

const CHUNK_BYTES = 1024;
const SEALED_CHUNK_BYTES = CHUNK_BYTES + TAG_BYTES;
const keyring = testKeyring();

/** Header layout for kid "k1": magic 8, version 1, kid length 1, kid 2, salt 32, nonce prefix 7, chunk size 4, key check 16. */
const HEADER_FIELDS = (() => {
  const fields: { name: string; bytes: number }[] = [
    { name: 'magic', bytes: ARCHIVE_MAGIC.length },
    { name: 'version', bytes: 1 },
    { name: 'kid length', bytes: 1 },
    { name: 'kid', bytes: 2 },
    { name: 'salt', bytes: 32 },
    { name: 'nonce prefix', bytes: 7 },
    { name: 'chunk size', bytes: 4 },
    { name: 'key check', bytes: 16 },
  ];
  let offset = 0;
  return Object.fromEntries(
    fields.map(({ name, bytes }) => {
      const field = { offset, bytes };
      offset += bytes;
      return [name, field];
    }),
  ) as Record<string, { offset: number; bytes: number }>;
})();
const HEADER_BYTES_FOR_K1 = Object.values(HEADER_FIELDS).reduce((sum, field) => sum + field.bytes, 0);

/** Cuts `bytes` into pieces of `pieceBytes` (the last one shorter), as a stream would deliver them. */
function piecesOf(bytes: Buffer, pieceBytes: number): Buffer[] {
  const pieces: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; offset += pieceBytes) pieces.push(bytes.subarray(offset, offset + pieceBytes));
  return pieces;
}

async function drain(source: Readable, transform: ArchiveEncryptor | ArchiveDecryptor): Promise<Buffer> {
  const output: Buffer[] = [];
  await pipeline(source, transform, async (stream: AsyncIterable<Buffer>) => {
    for await (const chunk of stream) output.push(chunk);
  });
  return Buffer.concat(output);
}

/** A whole archive as written: header bytes, then the sealed chunks. */
async function encrypt(plaintext: Buffer, options: { keyring?: Keyring; kid?: string; pieceBytes?: number } = {}): Promise<Buffer> {
  const { header, key } = newArchiveHeader(options.keyring ?? keyring, options.kid ?? 'k1', CHUNK_BYTES);
  const body = await drain(Readable.from(piecesOf(plaintext, options.pieceBytes ?? plaintext.length)), new ArchiveEncryptor(key, header));
  return Buffer.concat([header.bytes, body]);
}

/** Opens an archive the way readArchive does: header, key check, then the chunks. */
async function decrypt(archive: Buffer, options: { keyring?: Keyring; pieceBytes?: number } = {}): Promise<Buffer> {
  const header = parseArchiveHeader(archive.subarray(0, MAX_HEADER_BYTES));
  const key = archiveKey(options.keyring ?? keyring, header);
  const body = archive.subarray(header.bytes.length);
  return drain(Readable.from(piecesOf(body, options.pieceBytes ?? Math.max(body.length, 1))), new ArchiveDecryptor(key, header));
}

/** The BackupError failure an attempt ends with, or 'opened' when it succeeds. */
async function failureOf(attempt: () => Promise<unknown>): Promise<BackupFailure | 'opened'> {
  try {
    await attempt();
    return 'opened';
  } catch (error) {
    if (error instanceof BackupError) return error.failure;
    throw error;
  }
}

function flipped(bytes: Buffer, index: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[index] ^= 0xff;
  return copy;
}

/** An archive split into its header and sealed chunks, to be reassembled in another order. */
function split(archive: Buffer): { header: Buffer; chunks: Buffer[] } {
  const header = archive.subarray(0, HEADER_BYTES_FOR_K1);
  return { header, chunks: piecesOf(archive.subarray(HEADER_BYTES_FOR_K1), SEALED_CHUNK_BYTES) };
}

describe('archive encryption', () => {
  describe('round trip', () => {
    const sizes: [string, number][] = [
      ['empty', 0],
      ['one byte', 1],
      ['one byte short of a chunk', CHUNK_BYTES - 1],
      ['exactly one chunk', CHUNK_BYTES],
      ['one byte over a chunk', CHUNK_BYTES + 1],
      ['three chunks and five bytes', 3 * CHUNK_BYTES + 5],
    ];

    it.each(sizes)(
      '%s (%i bytes) decrypts to the plaintext, sealed as max(1, ⌈n / chunk⌉) chunks with one tag each',
      async (_name, size) => {
        const plaintext = randomBytes(size);
        const archive = await encrypt(plaintext);
        const chunks = Math.max(1, Math.ceil(size / CHUNK_BYTES));
        expect(archive.length).toBe(HEADER_BYTES_FOR_K1 + size + chunks * TAG_BYTES);
        expect(await decrypt(archive)).toEqual(plaintext);
      },
    );

    it.each(sizes)('%s (%i bytes) decrypts the same whatever pieces the streams deliver', async (_name, size) => {
      const plaintext = randomBytes(size);
      const archive = await encrypt(plaintext, { pieceBytes: 7 });
      expect(await decrypt(archive, { pieceBytes: 1 })).toEqual(plaintext);
      expect(await decrypt(archive, { pieceBytes: SEALED_CHUNK_BYTES + 3 })).toEqual(plaintext);
    });

    it('writes the same archive bytes whatever pieces the plaintext arrives in', async () => {
      const plaintext = randomBytes(3 * CHUNK_BYTES + 5);
      const { header, key } = newArchiveHeader(keyring, 'k1', CHUNK_BYTES);
      const whole = await drain(Readable.from([plaintext]), new ArchiveEncryptor(key, header));
      const byteByByte = await drain(Readable.from(piecesOf(plaintext, 1)), new ArchiveEncryptor(key, header));
      expect(byteByByte).toEqual(whole);
    });

    it('gives two archives of the same plaintext under the same key a different salt, nonce prefix, key check and ciphertext', async () => {
      const plaintext = randomBytes(2 * CHUNK_BYTES);
      const first = await encrypt(plaintext);
      const second = await encrypt(plaintext);
      const field = (archive: Buffer, name: string) =>
        archive.subarray(HEADER_FIELDS[name].offset, HEADER_FIELDS[name].offset + HEADER_FIELDS[name].bytes);
      for (const name of ['salt', 'nonce prefix', 'key check']) expect(field(first, name)).not.toEqual(field(second, name));
      expect(first.subarray(HEADER_BYTES_FOR_K1)).not.toEqual(second.subarray(HEADER_BYTES_FOR_K1));
      expect(await decrypt(first)).toEqual(await decrypt(second));
    });
  });

  describe('every change to the sealed chunks is ARCHIVE_DAMAGED', () => {
    const plaintext = randomBytes(3 * CHUNK_BYTES + 5);
    let archive: Buffer;
    beforeAll(async () => {
      archive = await encrypt(plaintext);
    });

    it('the archive under attack has three full chunks and a short final one', () => {
      expect(split(archive).chunks.map((chunk) => chunk.length)).toEqual([
        SEALED_CHUNK_BYTES,
        SEALED_CHUNK_BYTES,
        SEALED_CHUNK_BYTES,
        5 + TAG_BYTES,
      ]);
    });

    it('a flipped byte at any position after the header', async () => {
      const notDamaged: string[] = [];
      for (let index = HEADER_BYTES_FOR_K1; index < archive.length; index += 1) {
        const failure = await failureOf(() => decrypt(flipped(archive, index)));
        if (failure !== 'ARCHIVE_DAMAGED') notDamaged.push(`${index}: ${failure}`);
      }
      expect(notDamaged).toEqual([]);
    });

    it('truncation at any length, every chunk boundary and the bare header included', async () => {
      const notDamaged: string[] = [];
      for (let length = HEADER_BYTES_FOR_K1; length < archive.length; length += 1) {
        const failure = await failureOf(() => decrypt(archive.subarray(0, length)));
        if (failure !== 'ARCHIVE_DAMAGED') notDamaged.push(`${length}: ${failure}`);
      }
      expect(notDamaged).toEqual([]);
    });

    const rearrangements: [string, (chunks: Buffer[]) => Buffer[]][] = [
      ['chunks 0 and 1 swapped', ([a, b, c, last]) => [b, a, c, last]],
      ['chunks 1 and 2 swapped', ([a, b, c, last]) => [a, c, b, last]],
      ['chunk 0 dropped', ([, b, c, last]) => [b, c, last]],
      ['chunk 1 dropped', ([a, , c, last]) => [a, c, last]],
      ['the final chunk dropped', ([a, b, c]) => [a, b, c]],
      ['chunk 0 duplicated', ([a, b, c, last]) => [a, a, b, c, last]],
      ['chunk 2 duplicated', ([a, b, c, last]) => [a, b, c, c, last]],
      ['the final chunk duplicated', ([a, b, c, last]) => [a, b, c, last, last]],
      ['a copy of chunk 0 appended', ([a, b, c, last]) => [a, b, c, last, a]],
      ['one byte appended', (chunks) => [...chunks, Buffer.from([0])]],
      ['a whole tag of bytes appended', (chunks) => [...chunks, Buffer.alloc(TAG_BYTES)]],
    ];
    it.each(rearrangements)('%s', async (_name, rearrange) => {
      const { header, chunks } = split(archive);
      expect(await failureOf(() => decrypt(Buffer.concat([header, ...rearrange(chunks)])))).toBe('ARCHIVE_DAMAGED');
    });

    it('a chunk taken from another archive of the same plaintext and key (its salt gives it another key)', async () => {
      const other = split(await encrypt(plaintext));
      const { header, chunks } = split(archive);
      chunks[1] = other.chunks[1];
      expect(await failureOf(() => decrypt(Buffer.concat([header, ...chunks])))).toBe('ARCHIVE_DAMAGED');
    });

    it('passes on no plaintext of a chunk that does not authenticate', async () => {
      const output: Buffer[] = [];
      const { header, chunks } = split(archive);
      const parsed = parseArchiveHeader(header);
      const damagedFirstChunk = flipped(Buffer.concat(chunks), 0);
      const decryptor = new ArchiveDecryptor(archiveKey(keyring, parsed), parsed);
      const reading = pipeline(Readable.from([damagedFirstChunk]), decryptor, async (stream: AsyncIterable<Buffer>) => {
        for await (const chunk of stream) output.push(chunk);
      });
      await expect(reading).rejects.toMatchObject({ failure: 'ARCHIVE_DAMAGED' });
      expect(output).toEqual([]);
    });
  });

  describe('the header', () => {
    let archive: Buffer;
    beforeAll(async () => {
      archive = await encrypt(randomBytes(3 * CHUNK_BYTES + 5));
    });

    it('is laid out as documented: magic, version, kid, salt, nonce prefix, chunk size, key check', () => {
      const header = parseArchiveHeader(archive.subarray(0, MAX_HEADER_BYTES));
      expect(header.bytes).toEqual(archive.subarray(0, HEADER_BYTES_FOR_K1));
      expect(archive.subarray(0, 8)).toEqual(Buffer.from('\x89BSTBAK\n', 'latin1'));
      expect(archive[HEADER_FIELDS.version.offset]).toBe(ARCHIVE_FORMAT_VERSION);
      expect(archive[HEADER_FIELDS['kid length'].offset]).toBe(2);
      expect(archive.subarray(HEADER_FIELDS.kid.offset, HEADER_FIELDS.kid.offset + 2).toString('ascii')).toBe('k1');
      expect(archive.readUInt32BE(HEADER_FIELDS['chunk size'].offset)).toBe(CHUNK_BYTES);
      expect(header).toMatchObject({ kid: 'k1', chunkBytes: CHUNK_BYTES });
      expect(header.salt).toEqual(archive.subarray(HEADER_FIELDS.salt.offset, HEADER_FIELDS.salt.offset + 32));
      expect(header.noncePrefix).toEqual(archive.subarray(HEADER_FIELDS['nonce prefix'].offset, HEADER_FIELDS['nonce prefix'].offset + 7));
      expect(header.keyCheck).toEqual(archive.subarray(HEADER_FIELDS['key check'].offset, HEADER_FIELDS['key check'].offset + 16));
    });

    it('parses from a read of MAX_HEADER_BYTES that runs into the chunks, and takes only its own bytes', () => {
      expect(MAX_HEADER_BYTES).toBeGreaterThan(HEADER_BYTES_FOR_K1);
      expect(parseArchiveHeader(archive.subarray(0, MAX_HEADER_BYTES)).bytes.length).toBe(HEADER_BYTES_FOR_K1);
    });

    it('with the wrong magic is NOT_AN_ARCHIVE', () => {
      expect(() => parseArchiveHeader(Buffer.from('PGDMP\x01\x0e\x00 a pg_dump, not an archive'))).toThrow(
        expect.objectContaining({ failure: 'NOT_AN_ARCHIVE' }),
      );
      expect(() => parseArchiveHeader(Buffer.alloc(0))).toThrow(expect.objectContaining({ failure: 'NOT_AN_ARCHIVE' }));
    });

    it('with another format version is UNSUPPORTED_FORMAT', () => {
      const otherVersion = Buffer.from(archive);
      otherVersion[HEADER_FIELDS.version.offset] = ARCHIVE_FORMAT_VERSION + 1;
      expect(() => parseArchiveHeader(otherVersion)).toThrow(expect.objectContaining({ failure: 'UNSUPPORTED_FORMAT' }));
    });

    it('cut short anywhere after its version byte is ARCHIVE_DAMAGED', () => {
      const notDamaged: string[] = [];
      for (let length = HEADER_FIELDS['kid length'].offset; length < HEADER_BYTES_FOR_K1; length += 1) {
        try {
          parseArchiveHeader(archive.subarray(0, length));
          notDamaged.push(`${length}: parsed`);
        } catch (error) {
          if ((error as BackupError).failure !== 'ARCHIVE_DAMAGED') notDamaged.push(`${length}: ${(error as BackupError).failure}`);
        }
      }
      expect(notDamaged).toEqual([]);
    });

    it('naming no valid key id (empty, or not of the key-id alphabet) is ARCHIVE_DAMAGED', () => {
      const withKid = (kid: Buffer) => {
        const { kid: kidField, 'kid length': lengthField } = HEADER_FIELDS;
        return Buffer.concat([
          archive.subarray(0, lengthField.offset),
          Buffer.from([kid.length]),
          kid,
          archive.subarray(kidField.offset + kidField.bytes),
        ]);
      };
      expect(() => parseArchiveHeader(withKid(Buffer.alloc(0)))).toThrow(expect.objectContaining({ failure: 'ARCHIVE_DAMAGED' }));
      expect(() => parseArchiveHeader(withKid(Buffer.from('k 1')))).toThrow(expect.objectContaining({ failure: 'ARCHIVE_DAMAGED' }));
    });

    it.each([
      ['below 1 KiB', 1023],
      ['above 16 MiB', 16 * 1024 * 1024 + 1],
    ])('giving a chunk size %s is ARCHIVE_DAMAGED', (_name, chunkBytes) => {
      const changed = Buffer.from(archive);
      changed.writeUInt32BE(chunkBytes, HEADER_FIELDS['chunk size'].offset);
      expect(() => parseArchiveHeader(changed)).toThrow(expect.objectContaining({ failure: 'ARCHIVE_DAMAGED' }));
    });

    it('is the additional data of every chunk: a chunk size changed within the allowed range fails a one-chunk archive', async () => {
      const oneChunk = await encrypt(randomBytes(100));
      const changed = Buffer.from(oneChunk);
      changed.writeUInt32BE(2 * CHUNK_BYTES, HEADER_FIELDS['chunk size'].offset);
      // Only the additional data differs: the header parses, the key checks out, the chunking of 116 bytes is the same.
      expect(parseArchiveHeader(changed).chunkBytes).toBe(2 * CHUNK_BYTES);
      expect(() => archiveKey(keyring, parseArchiveHeader(changed))).not.toThrow();
      expect(await failureOf(() => decrypt(changed))).toBe('ARCHIVE_DAMAGED');
      expect(await failureOf(() => decrypt(oneChunk))).toBe('opened');
    });

    it('with a changed nonce prefix is ARCHIVE_DAMAGED', async () => {
      const changed = flipped(archive, HEADER_FIELDS['nonce prefix'].offset + 3);
      expect(await failureOf(() => decrypt(changed))).toBe('ARCHIVE_DAMAGED');
    });

    it('with any byte flipped does not open, and fails with the failure of the field it hit', async () => {
      const expected: Record<string, BackupFailure[]> = {
        magic: ['NOT_AN_ARCHIVE'],
        version: ['UNSUPPORTED_FORMAT'],
        // A changed key id may happen to name another key (UNKNOWN_KEY) or none at all.
        'kid length': ['ARCHIVE_DAMAGED', 'UNKNOWN_KEY'],
        kid: ['ARCHIVE_DAMAGED', 'UNKNOWN_KEY'],
        salt: ['WRONG_KEY'],
        'nonce prefix': ['ARCHIVE_DAMAGED'],
        'chunk size': ['ARCHIVE_DAMAGED'],
        'key check': ['WRONG_KEY'],
      };
      const unexpected: string[] = [];
      for (const [name, field] of Object.entries(HEADER_FIELDS)) {
        for (let index = field.offset; index < field.offset + field.bytes; index += 1) {
          const failure = await failureOf(() => decrypt(flipped(archive, index)));
          if (!(expected[name] as string[]).includes(failure)) unexpected.push(`${name} byte ${index}: ${failure}`);
        }
      }
      expect(unexpected).toEqual([]);
    });
  });

  describe('the key', () => {
    it('newArchiveHeader refuses a key id the keyring lacks with UNKNOWN_KEY', () => {
      expect(() => newArchiveHeader(testKeyring('k1', ['k1']), 'k2', CHUNK_BYTES)).toThrow(
        expect.objectContaining({ failure: 'UNKNOWN_KEY' }),
      );
    });

    it('an archive of a key id the keyring lacks is UNKNOWN_KEY', async () => {
      const archive = await encrypt(randomBytes(10), { kid: 'k2' });
      const header = parseArchiveHeader(archive);
      expect(() => archiveKey(testKeyring('k1', ['k1']), header)).toThrow(expect.objectContaining({ failure: 'UNKNOWN_KEY' }));
    });

    it('an archive opened with other key bytes under the same key id is WRONG_KEY', async () => {
      const archive = await encrypt(randomBytes(10));
      const header = parseArchiveHeader(archive);
      const impostor = new Keyring({ keys: new Map([['k1', TEST_KEYS.k2]]), currentKid: 'k1', blindIndexKey: TEST_KEYS.blindIndex });
      expect(() => archiveKey(impostor, header)).toThrow(expect.objectContaining({ failure: 'WRONG_KEY' }));
      expect(archiveKey(keyring, header)).toHaveLength(32);
    });

    it('opens an archive written with an older key of the ring, naming that key in its header', async () => {
      const plaintext = randomBytes(CHUNK_BYTES + 1);
      const archive = await encrypt(plaintext, { kid: 'k2' });
      expect(parseArchiveHeader(archive).kid).toBe('k2');
      expect(await decrypt(archive, { keyring: testKeyring('k1', ['k1', 'k2']) })).toEqual(plaintext);
    });

    it('the encryption key is not the keyring data key, and differs per archive', async () => {
      const first = parseArchiveHeader(await encrypt(Buffer.alloc(0)));
      const second = parseArchiveHeader(await encrypt(Buffer.alloc(0)));
      expect(archiveKey(keyring, first)).not.toEqual(TEST_KEYS.k1);
      expect(archiveKey(keyring, first)).not.toEqual(archiveKey(keyring, second));
    });

    it('ArchiveEncryptor refuses a key that is not 32 bytes', () => {
      const { header } = newArchiveHeader(keyring, 'k1', CHUNK_BYTES);
      expect(() => new ArchiveEncryptor(Buffer.alloc(16), header)).toThrow('archive key must be 32 bytes');
    });
  });
});
