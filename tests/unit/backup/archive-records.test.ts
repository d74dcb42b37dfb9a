import { Readable } from 'node:stream';
import { countRows } from '../../../src/backup/archive-file';
import {
  ArchiveRecord,
  MAX_RECORD_BYTES,
  RecordType,
  encodeJsonRecord,
  encodeRecord,
  parseJsonRecord,
  readRecords,
} from '../../../src/backup/archive-records';
import { BackupError, BackupFailure } from '../../../src/backup/backup-errors';

/** A small archive's worth of records, one of each type and an empty one. */
const RECORDS: ArchiveRecord[] = [
  { type: RecordType.PREAMBLE, payload: Buffer.from(JSON.stringify({ format: 1, tables: [{ name: 'users', columns: ['id', 'email'] }] })) },
  { type: RecordType.TABLE, payload: Buffer.from(JSON.stringify({ name: 'users', columns: ['id', 'email'] })) },
  { type: RecordType.DATA, payload: Buffer.from('1\tv1.k1.aXY.Y3Q\n2\t\\N\n') },
  { type: RecordType.DATA, payload: Buffer.alloc(0) },
  { type: RecordType.MANIFEST, payload: Buffer.from(JSON.stringify({ tables: [{ name: 'users', rows: 2 }] })) },
];
const ENCODED = Buffer.concat(RECORDS.map((record) => encodeRecord(record.type, record.payload)));

function piecesOf(bytes: Buffer, pieceBytes: number): Buffer[] {
  const pieces: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; offset += pieceBytes) pieces.push(bytes.subarray(offset, offset + pieceBytes));
  return pieces;
}

async function read(pieces: Buffer[]): Promise<ArchiveRecord[]> {
  const records: ArchiveRecord[] = [];
  for await (const record of readRecords(Readable.from(pieces))) records.push({ type: record.type, payload: Buffer.from(record.payload) });
  return records;
}

async function failureOf(attempt: () => Promise<unknown>): Promise<BackupFailure | 'read'> {
  try {
    await attempt();
    return 'read';
  } catch (error) {
    if (error instanceof BackupError) return error.failure;
    throw error;
  }
}

describe('archive records', () => {
  describe('encoding', () => {
    it('frames a record as type byte ‖ uint32 big-endian length ‖ payload', () => {
      expect(encodeRecord(RecordType.DATA, Buffer.from('ab'))).toEqual(Buffer.from([0x44, 0, 0, 0, 2, 0x61, 0x62]));
      expect(encodeJsonRecord(RecordType.MANIFEST, { tables: [] })).toEqual(
        Buffer.concat([Buffer.from([0x4d, 0, 0, 0, 13]), Buffer.from('{"tables":[]}')]),
      );
    });

    it('uses the type bytes H, T, D, C, K and M', () => {
      expect(RecordType).toEqual({ PREAMBLE: 0x48, TABLE: 0x54, DATA: 0x44, CONTENT: 0x43, CHUNK: 0x4b, MANIFEST: 0x4d });
    });

    it('refuses a payload over MAX_RECORD_BYTES, and takes one of exactly that size', () => {
      expect(() => encodeRecord(RecordType.DATA, Buffer.alloc(MAX_RECORD_BYTES + 1))).toThrow(`exceeds ${MAX_RECORD_BYTES}`);
      expect(encodeRecord(RecordType.DATA, Buffer.alloc(MAX_RECORD_BYTES))).toHaveLength(5 + MAX_RECORD_BYTES);
    });
  });

  describe('reading', () => {
    it('reads back the records in one piece', async () => {
      expect(await read([ENCODED])).toEqual(RECORDS);
    });

    it('reads back the records fed one byte at a time', async () => {
      expect(await read(piecesOf(ENCODED, 1))).toEqual(RECORDS);
    });

    it('reads back the records split at every single position', async () => {
      const misread: number[] = [];
      for (let cut = 1; cut < ENCODED.length; cut += 1) {
        const records = await read([ENCODED.subarray(0, cut), ENCODED.subarray(cut)]);
        if (JSON.stringify(records) !== JSON.stringify(RECORDS)) misread.push(cut);
      }
      expect(misread).toEqual([]);
    });

    it('reads back a record of MAX_RECORD_BYTES split across pieces of odd sizes', async () => {
      const payload = Buffer.alloc(MAX_RECORD_BYTES, 0x5a);
      const encoded = Buffer.concat([encodeRecord(RecordType.DATA, payload), encodeJsonRecord(RecordType.MANIFEST, { tables: [] })]);
      const records = await read(piecesOf(encoded, 65_537));
      expect(records.map((record) => [record.type, record.payload.length])).toEqual([
        [RecordType.DATA, MAX_RECORD_BYTES],
        [RecordType.MANIFEST, 13],
      ]);
      expect(records[0].payload.equals(payload)).toBe(true);
    });

    it('reads nothing from an empty stream', async () => {
      expect(await read([])).toEqual([]);
    });

    it('refuses every unknown type byte with ARCHIVE_DAMAGED', async () => {
      const known = new Set<number>(Object.values(RecordType));
      const notDamaged: string[] = [];
      for (let type = 0; type < 256; type += 1) {
        if (known.has(type)) continue;
        const failure = await failureOf(() => read([ENCODED, Buffer.from([type, 0, 0, 0, 0])]));
        if (failure !== 'ARCHIVE_DAMAGED') notDamaged.push(`0x${type.toString(16)}: ${failure}`);
      }
      expect(notDamaged).toEqual([]);
    });

    it('refuses a length over MAX_RECORD_BYTES with ARCHIVE_DAMAGED, even with the whole payload there', async () => {
      const oversize = Buffer.concat([Buffer.from([RecordType.DATA]), Buffer.alloc(4), Buffer.alloc(MAX_RECORD_BYTES + 1)]);
      oversize.writeUInt32BE(MAX_RECORD_BYTES + 1, 1);
      expect(await failureOf(() => read([ENCODED, oversize]))).toBe('ARCHIVE_DAMAGED');
    });

    it('refuses a stream ending inside a record with ARCHIVE_DAMAGED, at every such length', async () => {
      const boundaries = new Set<number>([0]);
      let offset = 0;
      for (const record of RECORDS) boundaries.add((offset += 5 + record.payload.length));
      const wrong: string[] = [];
      for (let length = 0; length <= ENCODED.length; length += 1) {
        const failure = await failureOf(() => read(piecesOf(ENCODED.subarray(0, length), 3)));
        const expected = boundaries.has(length) ? 'read' : 'ARCHIVE_DAMAGED';
        if (failure !== expected) wrong.push(`${length}: ${failure}, expected ${expected}`);
      }
      expect(wrong).toEqual([]);
    });

    it('parses a JSON record, and refuses one that is not JSON with ARCHIVE_DAMAGED', () => {
      expect(parseJsonRecord(RECORDS[1], 'table record')).toEqual({ name: 'users', columns: ['id', 'email'] });
      expect(() => parseJsonRecord({ type: RecordType.TABLE, payload: Buffer.from('{"name":') }, 'table record')).toThrow(BackupError);
      expect(() => parseJsonRecord({ type: RecordType.TABLE, payload: Buffer.from('{"name":') }, 'table record')).toThrow(
        'its table record is not readable',
      );
    });
  });

  describe('countRows', () => {
    it('counts newline-terminated rows', () => {
      expect(countRows(Buffer.alloc(0))).toBe(0);
      expect(countRows(Buffer.from('1\tada\n'))).toBe(1);
      expect(countRows(Buffer.from('1\tada\n2\tbob\n3\t\\N\n'))).toBe(3);
      expect(countRows(Buffer.from('\n\n'))).toBe(2);
    });

    it('does not count a row whose newline has not arrived yet', () => {
      expect(countRows(Buffer.from('1\tada\n2\tbo'))).toBe(1);
      expect(countRows(Buffer.from('2\tbo'))).toBe(0);
    });

    it('does not count a newline inside a value, which COPY text writes escaped as \\n', () => {
      expect(countRows(Buffer.from('1\tline one\\nline two\n'))).toBe(1);
    });

    it('counts each row once however the COPY text is cut into chunks', () => {
      const copyText = Buffer.from('1\tada\n2\tbob\\nsmith\n3\t\\N\n4\t\n');
      const miscounted: number[] = [];
      for (let cut = 0; cut <= copyText.length; cut += 1) {
        if (countRows(copyText.subarray(0, cut)) + countRows(copyText.subarray(cut)) !== 4) miscounted.push(cut);
      }
      expect(miscounted).toEqual([]);
    });
  });
});
