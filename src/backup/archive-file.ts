import { createHash } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable, pipeline as pipelineCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import type { Keyring } from '../crypto/keyring';
import {
  ArchiveDecryptor,
  ArchiveEncryptor,
  ArchiveHeader,
  MAX_HEADER_BYTES,
  archiveKey,
  newArchiveHeader,
  parseArchiveHeader,
} from './archive-crypto';
import {
  ArchiveManifest,
  ArchivePreamble,
  ArchiveTable,
  ArchivedContent,
  FileChunksSummary,
  RecordType,
  RecordTypeCode,
  TableSummary,
  encodeJsonRecord,
  encodeRecord,
  parseJsonRecord,
  readRecords,
} from './archive-records';
import { BackupError, archiveDamaged } from './backup-errors';

/**
 * zlib level 1: COPY text still compresses ~3× (2.9× on the bench's 500k posts), and deflate stays well above the 50 MB/s a
 * backup must sustain on one core (level 6 does not; see README "Decisions").
 */
const COMPRESSION_LEVEL = 1;
/** COPY data is cut into records of at most this size. */
const DATA_RECORD_BYTES = 256 * 1024;

/** What a finished archive file is. */
export interface WrittenArchive {
  readonly sizeBytes: number;
  /** SHA-256 (hex) of the whole file: the catalogue's fingerprint, checked before each verification. */
  readonly sha256: string;
}

/** The temporary name of an archive being written: hidden, and never ends in the archive extension. */
export function partialNameOf(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.partial`);
}

/**
 * Writes one archive: records in, compressed, encrypted in chunks, into a hidden temporary file
 * that becomes `file` only once it is complete and on disk (fsync, rename, fsync of the folder).
 * A crash at any point leaves no file that looks complete.
 */
export class ArchiveWriter {
  /**
   * 64 KiB output chunks and a 1 MiB input buffer (Node's zlib passes stream options through; its
   * types do not list them): COPY keeps arriving while zlib compresses in the thread pool, instead of
   * the two taking turns at every 16 KiB. Measured on the bench's create: median 51 MB/s against 41.
   */
  private readonly deflate = zlib.createDeflate({
    level: COMPRESSION_LEVEL,
    chunkSize: 64 * 1024,
    writableHighWaterMark: 1024 * 1024,
  } as zlib.ZlibOptions);
  private readonly done: Promise<void>;
  private failure: Error | undefined;
  private sizeBytes = 0;
  private readonly hash = createHash('sha256');
  private table: TableDigest | undefined;
  private readonly summaries: TableSummary[] = [];
  /** Set when the preamble announces file chunks. */
  private fileChunks: FileChunksDigest | undefined;
  private content: { readonly announced: ArchivedContent; written: number } | undefined;
  /** Rows and COPY bytes written so far, all tables (for progress). */
  rows = 0;
  bytes = 0;

  private constructor(
    readonly file: string,
    private readonly temporary: string,
    header: ArchiveHeader,
    key: Buffer,
    output: fs.WriteStream,
  ) {
    const tap = new PassThrough();
    tap.on('data', (chunk: Buffer) => {
      this.hash.update(chunk);
      this.sizeBytes += chunk.length;
    });
    this.hash.update(header.bytes);
    this.sizeBytes = header.bytes.length;
    output.write(header.bytes);
    this.done = pipeline(this.deflate, new ArchiveEncryptor(key, header), tap, output);
    this.done.catch((error: Error) => {
      this.failure = error;
    });
  }

  static async create(file: string, keyring: Keyring, kid: string): Promise<ArchiveWriter> {
    const { header, key } = newArchiveHeader(keyring, kid);
    const temporary = partialNameOf(file);
    await fs.promises.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const output = fs.createWriteStream(temporary, { flags: 'wx', mode: 0o600 });
    await once(output, 'open');
    return new ArchiveWriter(file, temporary, header, key, output);
  }

  async preamble(preamble: ArchivePreamble): Promise<void> {
    if (preamble.fileChunks) this.fileChunks = new FileChunksDigest();
    await this.write(encodeJsonRecord(RecordType.PREAMBLE, preamble));
  }

  async startTable(table: ArchiveTable): Promise<void> {
    this.endTable();
    this.table = new TableDigest(table);
    await this.write(encodeJsonRecord(RecordType.TABLE, table));
  }

  /** COPY text of the current table, as it comes. Returns once the pipeline has room for more. */
  async data(chunk: Buffer): Promise<void> {
    const table = this.table;
    if (!table) throw new Error('data before a table');
    const rowsBefore = table.rows;
    table.update(chunk);
    this.rows += table.rows - rowsBefore;
    this.bytes += chunk.length;
    for (let offset = 0; offset < chunk.length; offset += DATA_RECORD_BYTES) {
      await this.write(encodeRecord(RecordType.DATA, chunk.subarray(offset, offset + DATA_RECORD_BYTES)));
    }
  }

  /** A file content's sealed chunks follow, after the last table (`chunk`, `announced.chunks` times). */
  async startContent(announced: ArchivedContent): Promise<void> {
    if (!this.fileChunks) throw new Error('file chunks the preamble did not announce');
    this.endTable();
    this.endContent();
    const payload = Buffer.from(JSON.stringify(announced), 'utf8');
    this.fileChunks.update(RecordType.CONTENT, payload);
    this.content = { announced, written: 0 };
    await this.write(encodeRecord(RecordType.CONTENT, payload));
  }

  /** The current content's next sealed chunk as its store holds it; null: it vanished from the store (see FileChunksSummary). */
  async chunk(sealed: Buffer | null): Promise<void> {
    const content = this.content;
    if (!content || content.written >= content.announced.chunks) throw new Error('a chunk outside its content');
    const payload = sealed ?? Buffer.alloc(0);
    this.fileChunks!.update(RecordType.CHUNK, payload);
    content.written += 1;
    await this.write(encodeRecord(RecordType.CHUNK, payload));
  }

  /** Closes the stream with the manifest, and makes the file durable under its final name. */
  async finish(): Promise<WrittenArchive & { manifest: ArchiveManifest }> {
    this.endTable();
    this.endContent();
    const manifest: ArchiveManifest = { tables: this.summaries, ...(this.fileChunks ? { fileChunks: this.fileChunks.summary() } : {}) };
    await this.write(encodeJsonRecord(RecordType.MANIFEST, manifest));
    this.deflate.end();
    await this.done;
    const handle = await fs.promises.open(this.temporary, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(this.temporary, this.file);
    await syncFolder(path.dirname(this.file));
    return { sizeBytes: this.sizeBytes, sha256: this.hash.digest('hex'), manifest };
  }

  /** Stops writing and removes the temporary file. */
  async abort(): Promise<void> {
    this.deflate.destroy(new Error('aborted'));
    await this.done.catch(() => undefined);
    await fs.promises.rm(this.temporary, { force: true });
  }

  private endTable(): void {
    if (!this.table) return;
    this.summaries.push(this.table.summary());
    this.table = undefined;
  }

  private endContent(): void {
    const content = this.content;
    if (!content) return;
    if (content.written !== content.announced.chunks)
      throw new Error(`content ${content.announced.id}: ${content.written} of ${content.announced.chunks} chunks written`);
    this.content = undefined;
  }

  private async write(bytes: Buffer): Promise<void> {
    this.throwIfFailed();
    if (this.deflate.write(bytes)) return;
    await Promise.race([once(this.deflate, 'drain'), this.done.then(() => Promise.reject(new Error('the archive stream ended early')))]);
    this.throwIfFailed();
  }

  /** The stream may fail while a write waits for it to drain. */
  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }
}

/** COPY text format ends every row with a newline and escapes the ones inside values. */
export function countRows(chunk: Buffer): number {
  let rows = 0;
  for (let index = chunk.indexOf(10); index !== -1; index = chunk.indexOf(10, index + 1)) rows += 1;
  return rows;
}

/**
 * One table's COPY text as it streams by: its rows, bytes and SHA-256. Writing an archive, reading
 * one, and reading a restored table back all summarise the same way, so their summaries compare.
 */
export class TableDigest {
  rows = 0;
  bytes = 0;
  private readonly hash = createHash('sha256');

  constructor(readonly table: ArchiveTable) {}

  update(chunk: Buffer): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.rows += countRows(chunk);
  }

  summary(): TableSummary {
    return { name: this.table.name, rows: this.rows, bytes: this.bytes, sha256: this.hash.digest('hex') };
  }
}

/**
 * The file chunks section as it streams by: its counts and the SHA-256 of its records (framing
 * included), summarised alike when writing and reading, so the two compare.
 */
export class FileChunksDigest {
  private contents = 0;
  private chunks = 0;
  private bytes = 0;
  private vanished = 0;
  private currentVanished = false;
  private readonly hash = createHash('sha256');

  update(type: RecordTypeCode, payload: Buffer): void {
    const head = Buffer.alloc(5);
    head[0] = type;
    head.writeUInt32BE(payload.length, 1);
    this.hash.update(head).update(payload);
    if (type === RecordType.CONTENT) {
      this.contents += 1;
      this.currentVanished = false;
    } else if (payload.length > 0) {
      this.chunks += 1;
      this.bytes += payload.length;
    } else if (!this.currentVanished) {
      this.vanished += 1;
      this.currentVanished = true;
    }
  }

  summary(): FileChunksSummary {
    return { contents: this.contents, chunks: this.chunks, bytes: this.bytes, vanished: this.vanished, sha256: this.hash.digest('hex') };
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A rename is durable only once the folder holding it is synced (POSIX). */
export async function syncFolder(folder: string): Promise<void> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(folder, 'r');
    await handle.sync();
  } catch {
    // Some platforms (Windows) cannot open or sync a folder; the rename is as durable as they allow.
  } finally {
    await handle?.close();
  }
}

/** Reads an archive's header and checks the key, without reading further. */
export async function readArchiveHeader(
  file: string,
  keyring: Keyring,
): Promise<{ header: ArchiveHeader; key: Buffer; sizeBytes: number }> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new BackupError('FILE_MISSING', `the archive file ${file} does not exist`);
    throw error;
  }
  try {
    const start = Buffer.alloc(MAX_HEADER_BYTES);
    const { bytesRead } = await handle.read(start, 0, start.length, 0);
    const header = parseArchiveHeader(start.subarray(0, bytesRead));
    const { size } = await handle.stat();
    return { header, key: archiveKey(keyring, header), sizeBytes: size };
  } finally {
    await handle.close();
  }
}

/** What a reader of an archive is told, in stream order; each may return a promise to slow the reading down. */
export interface ArchiveVisitor {
  preamble?(preamble: ArchivePreamble): Promise<void> | void;
  startTable?(table: ArchiveTable): Promise<void> | void;
  data?(chunk: Buffer, table: ArchiveTable): Promise<void> | void;
  /** The table's rows have all been seen; they are checked against the manifest at the end. */
  endTable?(table: ArchiveTable, summary: TableSummary): Promise<void> | void;
  /** A file content's chunks follow (after every table). */
  startContent?(content: ArchivedContent): Promise<void> | void;
  /** Its chunk `index`, sealed as its store held it; null when it had vanished from the store before the backup read it. */
  chunk?(sealed: Buffer | null, content: ArchivedContent, index: number): Promise<void> | void;
  endContent?(content: ArchivedContent): Promise<void> | void;
  /**
   * After each chunk of rows is handled (for progress): archive bytes read so far, and rows seen so
   * far in all tables, counted as the table digests count them (one COPY line is one row).
   */
  progress?(bytesRead: number, sizeBytes: number, rows: number): void;
}

/**
 * Reads a whole archive, streaming: decrypts and authenticates every chunk, inflates, and checks
 * the structure, each table's row count and SHA-256 against the manifest. Throws BackupError
 * (ARCHIVE_DAMAGED, WRONG_KEY, …) on anything amiss; until it returns, nothing read is known to
 * be complete.
 */
export async function readArchive(
  file: string,
  keyring: Keyring,
  visitor: ArchiveVisitor = {},
): Promise<{ preamble: ArchivePreamble; manifest: ArchiveManifest; sizeBytes: number }> {
  const { header, key, sizeBytes } = await readArchiveHeader(file, keyring);
  const source = fs.createReadStream(file, { start: header.bytes.length, highWaterMark: 256 * 1024 });
  let bytesRead = header.bytes.length;
  source.on('data', (chunk) => {
    bytesRead += chunk.length;
  });
  const plaintext = pipelineCallback(source, new ArchiveDecryptor(key, header), zlib.createInflate(), () => undefined) as Readable;

  let preamble: ArchivePreamble | undefined;
  let manifest: ArchiveManifest | undefined;
  const seen: TableSummary[] = [];
  let current: TableDigest | undefined;
  let rowsOfEndedTables = 0;
  const fileChunks = new FileChunksDigest();
  let content: { readonly announced: ArchivedContent; index: number } | undefined;
  let lastContentId = '';
  const endContent = async () => {
    if (!content) return;
    const { announced, index } = content;
    if (index !== announced.chunks) throw archiveDamaged(`file content ${announced.id} has ${index} of its ${announced.chunks} chunks`);
    content = undefined;
    await visitor.endContent?.(announced);
  };
  const endTable = async () => {
    if (!current) return;
    const summary = current.summary();
    seen.push(summary);
    rowsOfEndedTables += summary.rows;
    const table = current.table;
    current = undefined;
    await visitor.endTable?.(table, summary);
  };
  try {
    for await (const record of readRecords(plaintext)) {
      if (manifest) throw archiveDamaged('records follow the manifest');
      switch (record.type) {
        case RecordType.PREAMBLE:
          if (preamble) throw archiveDamaged('it has two preambles');
          preamble = parseJsonRecord<ArchivePreamble>(record, 'preamble');
          if (!Array.isArray(preamble.tables) || !Array.isArray(preamble.migrations) || typeof preamble.schemaVersion !== 'string')
            throw archiveDamaged('its preamble is incomplete');
          await visitor.preamble?.(preamble);
          break;
        case RecordType.TABLE: {
          if (!preamble) throw archiveDamaged('a table comes before the preamble');
          if (lastContentId !== '') throw archiveDamaged('a table follows the file chunks');
          await endTable();
          const announced = parseJsonRecord<ArchiveTable>(record, 'table record');
          const table = preamble.tables[seen.length];
          if (!table || table.name !== announced.name)
            throw archiveDamaged(`table "${announced.name}" is not the one the preamble lists next`);
          current = new TableDigest(table);
          await visitor.startTable?.(table);
          break;
        }
        case RecordType.DATA:
          if (!current) throw archiveDamaged('rows come before their table');
          current.update(record.payload);
          await visitor.data?.(record.payload, current.table);
          visitor.progress?.(bytesRead, sizeBytes, rowsOfEndedTables + current.rows);
          break;
        case RecordType.CONTENT: {
          if (!preamble) throw archiveDamaged('a file content comes before the preamble');
          if (!preamble.fileChunks) throw archiveDamaged('it holds file chunks its preamble does not announce');
          await endTable();
          if (seen.length !== preamble.tables.length) throw archiveDamaged('file chunks come before the last table');
          await endContent();
          const announced = parseJsonRecord<ArchivedContent>(record, 'file content record');
          if (
            typeof announced.id !== 'string' ||
            !UUID.test(announced.id) ||
            !Number.isSafeInteger(announced.chunks) ||
            announced.chunks < 1
          )
            throw archiveDamaged('a file content record is malformed');
          // In id order, as written: each content is there once.
          if (announced.id <= lastContentId) throw archiveDamaged(`file content ${announced.id} is out of order`);
          lastContentId = announced.id;
          fileChunks.update(RecordType.CONTENT, record.payload);
          content = { announced: { id: announced.id, chunks: announced.chunks }, index: 0 };
          await visitor.startContent?.(content.announced);
          break;
        }
        case RecordType.CHUNK: {
          if (!content) throw archiveDamaged('a file chunk comes before its content');
          const { announced } = content;
          if (content.index >= announced.chunks)
            throw archiveDamaged(`file content ${announced.id} has more than its ${announced.chunks} chunks`);
          fileChunks.update(RecordType.CHUNK, record.payload);
          const index = content.index;
          content.index += 1;
          await visitor.chunk?.(record.payload.length === 0 ? null : record.payload, announced, index);
          visitor.progress?.(bytesRead, sizeBytes, rowsOfEndedTables);
          break;
        }
        case RecordType.MANIFEST:
          if (!preamble) throw archiveDamaged('the manifest comes before the preamble');
          await endTable();
          await endContent();
          manifest = parseJsonRecord<ArchiveManifest>(record, 'manifest');
          break;
      }
    }
  } catch (error) {
    source.destroy();
    if (error instanceof BackupError) throw error;
    if ((error as { code?: string }).code?.startsWith('Z_')) throw archiveDamaged('its compressed stream is corrupt');
    throw error;
  }
  if (!preamble || !manifest) throw archiveDamaged('it ends before its manifest');
  compareWithManifest(preamble, manifest, seen);
  compareFileChunks(preamble, manifest, fileChunks.summary());
  return { preamble, manifest, sizeBytes };
}

function compareFileChunks(preamble: ArchivePreamble, manifest: ArchiveManifest, actual: FileChunksSummary): void {
  const expected = manifest.fileChunks;
  if (!preamble.fileChunks) {
    if (expected) throw archiveDamaged('its manifest accounts for file chunks its preamble does not announce');
    return;
  }
  if (!expected) throw archiveDamaged('its manifest does not account for its file chunks');
  if (
    expected.contents !== actual.contents ||
    expected.chunks !== actual.chunks ||
    expected.vanished !== actual.vanished ||
    expected.sha256 !== actual.sha256
  )
    throw archiveDamaged(
      `its file chunks hold ${actual.contents} contents in ${actual.chunks} chunks (SHA-256 ${actual.sha256.slice(0, 12)}…), ` +
        `the manifest says ${expected.contents} in ${expected.chunks} (${expected.sha256?.slice(0, 12)}…)`,
    );
}

function compareWithManifest(preamble: ArchivePreamble, manifest: ArchiveManifest, seen: readonly TableSummary[]): void {
  if (!Array.isArray(manifest.tables) || manifest.tables.length !== preamble.tables.length || seen.length !== preamble.tables.length) {
    throw archiveDamaged(`the manifest lists ${manifest.tables?.length ?? 0} tables, the archive holds ${seen.length}`);
  }
  manifest.tables.forEach((expected: TableSummary, index: number) => {
    const actual = seen[index];
    if (expected.name !== actual.name || expected.rows !== actual.rows || expected.sha256 !== actual.sha256) {
      throw archiveDamaged(
        `table "${actual.name}" holds ${actual.rows} rows (SHA-256 ${actual.sha256.slice(0, 12)}…), ` +
          `the manifest says ${expected.rows} (${expected.sha256?.slice(0, 12)}…)`,
      );
    }
  });
}
