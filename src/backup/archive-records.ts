import type { Readable } from 'node:stream';
import { archiveDamaged } from './backup-errors';

/**
 * The records inside the compressed stream: type (1 byte) ‖ length (uint32 BE) ‖ payload.
 * An archive is: one PREAMBLE, then per table a TABLE record and its DATA records, then (when the
 * preamble announces `fileChunks`) per file content kept outside PostgreSQL a CONTENT record and
 * its CHUNK records, then one MANIFEST, then nothing.
 */
export const RecordType = {
  PREAMBLE: 0x48, // H: schema version and table list (JSON)
  TABLE: 0x54, // T: a table starts (JSON: name, columns)
  DATA: 0x44, // D: COPY text bytes of the current table
  CONTENT: 0x43, // C: a file content's chunks start (JSON: id, chunks)
  CHUNK: 0x4b, // K: one sealed chunk of the current content, as its store holds it; empty: it vanished (see FileChunksSummary)
  MANIFEST: 0x4d, // M: row counts and SHA-256 of every table (JSON)
} as const;
export type RecordTypeCode = (typeof RecordType)[keyof typeof RecordType];

/** No record is larger: a parser never holds more than this, whatever it is fed. */
export const MAX_RECORD_BYTES = 4 * 1024 * 1024;

export interface ArchiveTable {
  readonly name: string;
  readonly columns: readonly string[];
}

/** What opens the stream: enough to refuse an archive before any row is read. */
export interface ArchivePreamble {
  readonly format: 1;
  /** The catalogue id it was written under: a restore by id refuses a file renamed from another backup. */
  readonly backupId?: string;
  readonly createdAt: string;
  readonly bastionVersion: string;
  /** The newest migration applied when the archive was made. */
  readonly schemaVersion: string;
  /** Every applied migration, in order. */
  readonly migrations: readonly string[];
  /** In load order: a table comes after the tables it references. */
  readonly tables: readonly ArchiveTable[];
  /** Tables deliberately left out, with why. */
  readonly excluded: Readonly<Record<string, string>>;
  /**
   * The sealed chunks of the file contents kept outside PostgreSQL (an S3 store) that the
   * snapshot's files and variants name follow the tables; absent in archives written before files
   * could live elsewhere. Contents in PostgreSQL travel in the file_chunks table.
   */
  readonly fileChunks?: true;
}

/** One file content in the archive's file chunks: its id (file_contents.id) and how many chunks follow. */
export interface ArchivedContent {
  readonly id: string;
  readonly chunks: number;
}

/** What the file chunks section holds, counted as it is written (and read). */
export interface FileChunksSummary {
  readonly contents: number;
  readonly chunks: number;
  /** Bytes of sealed chunks. */
  readonly bytes: number;
  /**
   * Contents deleted after the snapshot and removed from their store before the backup read them
   * (a file removed, re-encrypted or moved while it ran): their rows are archived, not their bytes.
   */
  readonly vanished: number;
  /** SHA-256 (hex) of the section's records, framing included, in order. */
  readonly sha256: string;
}

export interface TableSummary {
  readonly name: string;
  readonly rows: number;
  /** COPY text bytes. */
  readonly bytes: number;
  /** SHA-256 (hex) of the table's COPY text, in the order it was written. */
  readonly sha256: string;
}

/** What closes the stream: known only once every row has been written. */
export interface ArchiveManifest {
  readonly tables: readonly TableSummary[];
  /** Present exactly when the preamble announces file chunks. */
  readonly fileChunks?: FileChunksSummary;
}

/** Preamble and manifest together, per table: what the catalogue keeps of an archive. */
export interface ArchiveContents extends Omit<ArchivePreamble, 'tables' | 'fileChunks'> {
  readonly tables: readonly (ArchiveTable & TableSummary)[];
  readonly fileChunks?: FileChunksSummary;
}

export function describeContents(preamble: ArchivePreamble, manifest: ArchiveManifest): ArchiveContents {
  const { fileChunks: announced, ...rest } = preamble;
  return {
    ...rest,
    tables: preamble.tables.map((table, index) => ({ ...table, ...manifest.tables[index] })),
    ...(announced && manifest.fileChunks ? { fileChunks: manifest.fileChunks } : {}),
  };
}

export function encodeRecord(type: RecordTypeCode, payload: Buffer): Buffer {
  if (payload.length > MAX_RECORD_BYTES) throw new Error(`record of ${payload.length} bytes exceeds ${MAX_RECORD_BYTES}`);
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

export function encodeJsonRecord(type: RecordTypeCode, value: unknown): Buffer {
  return encodeRecord(type, Buffer.from(JSON.stringify(value), 'utf8'));
}

export interface ArchiveRecord {
  readonly type: RecordTypeCode;
  readonly payload: Buffer;
}

const KNOWN_TYPES = new Set<number>(Object.values(RecordType));

/** Splits a plaintext stream into records; any malformed framing is ARCHIVE_DAMAGED. */
export async function* readRecords(plaintext: Readable): AsyncGenerator<ArchiveRecord> {
  let buffered: Buffer = Buffer.alloc(0);
  for await (const chunk of plaintext as AsyncIterable<Buffer>) {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    let offset = 0;
    while (buffered.length - offset >= 5) {
      const type = buffered[offset];
      if (!KNOWN_TYPES.has(type)) throw archiveDamaged(`unknown record type 0x${type.toString(16)}`);
      const length = buffered.readUInt32BE(offset + 1);
      if (length > MAX_RECORD_BYTES) throw archiveDamaged(`a record claims ${length} bytes`);
      if (buffered.length - offset - 5 < length) break;
      yield { type: type as RecordTypeCode, payload: buffered.subarray(offset + 5, offset + 5 + length) };
      offset += 5 + length;
    }
    buffered = buffered.subarray(offset);
  }
  if (buffered.length > 0) throw archiveDamaged('it ends inside a record');
}

export function parseJsonRecord<T>(record: ArchiveRecord, what: string): T {
  try {
    return JSON.parse(record.payload.toString('utf8')) as T;
  } catch {
    throw archiveDamaged(`its ${what} is not readable`);
  }
}
