import type { ClientBase } from 'pg';
import type { DataSource, EntityManager } from 'typeorm';
import { ChunkMissingError, ChunkStore } from '../files/chunk-store';
import { chunkCountOf } from '../files/content-cipher';
import type { Contents, SealedContent } from '../files/content-io';
import { S3StoreError } from '../files/s3-chunk-store';
import type { ArchiveWriter } from './archive-file';
import type { ArchivedContent } from './archive-records';
import { BackupError, throwIfInterrupted } from './backup-errors';
import { NAMED_BY_A_FILE } from '../files/content-references';

/**
 * The contents an archive carries the chunks of: those kept outside PostgreSQL (the file_chunks
 * table carries the others) that a file or a variant names. An upload still arriving is left: its
 * chunks are still being written, and it expires within a day.
 */
const ARCHIVED_CONTENTS = `c.store <> 'postgres' AND ${NAMED_BY_A_FILE}`;

/** Contents fetched per round trip from the snapshot's cursor. */
const CONTENTS_PER_FETCH = 200;

/** A store's failure as the catalogue and the CLI say it: S3StoreError's message names the bucket and the cause, never a credential. */
export function storeFailure(error: unknown): unknown {
  return error instanceof S3StoreError ? new BackupError('FILE_STORE', error.message) : error;
}

/** How many contents the archive will carry the chunks of (in the backup's snapshot), for progress. */
export async function countArchivedContents(client: ClientBase): Promise<number> {
  const { rows } = await client.query<{ contents: number }>(
    `SELECT count(*)::int AS contents FROM file_contents c WHERE ${ARCHIVED_CONTENTS}`,
  );
  return rows[0].contents;
}

/**
 * Writes the file chunks section: for each content the snapshot's files and variants name outside
 * PostgreSQL, in id order, its sealed chunks read from the store as they are (nothing is opened:
 * they are ciphertext, and the archive is encrypted again), a chunk at a time. `client` is in the
 * backup's snapshot; `live` sees the database now. A content deleted since the snapshot may be gone
 * from its store too: its chunks are written as vanished, and the manifest counts it. A content
 * still in use whose chunk is missing means the store lost it: the backup fails, saying which.
 */
export async function writeFileChunks(input: {
  readonly client: ClientBase;
  readonly writer: ArchiveWriter;
  readonly contents: Contents | undefined;
  readonly live: DataSource;
  readonly signal: AbortSignal;
  readonly onContent?: (done: number) => void;
}): Promise<void> {
  const { client, writer, contents, live, signal } = input;
  // One query in the snapshot, read a batch at a time: a cursor is allowed in a read-only transaction, where a temporary table is not.
  await client.query(
    `DECLARE bastion_archived_contents NO SCROLL CURSOR FOR
       SELECT c.id, c.store, c.byte_size::text AS byte_size, c.chunk_bytes FROM file_contents c WHERE ${ARCHIVED_CONTENTS} ORDER BY c.id`,
  );
  let done = 0;
  for (;;) {
    const { rows } = await client.query<{ id: string; store: string; byte_size: string; chunk_bytes: number }>(
      `FETCH ${CONTENTS_PER_FETCH} FROM bastion_archived_contents`,
    );
    if (rows.length === 0) break;
    if (!contents)
      throw new BackupError(
        'FILE_STORE',
        'file contents are kept outside PostgreSQL, but this process has no file store (STORAGE_URL) to read them from',
      );
    for (const row of rows) {
      throwIfInterrupted(signal);
      await writeContent(writer, contents, live, signal, {
        id: row.id,
        store: row.store,
        byteSize: Number(row.byte_size),
        chunkBytes: row.chunk_bytes,
      });
      done += 1;
      input.onContent?.(done);
    }
  }
  await client.query('CLOSE bastion_archived_contents');
}

async function writeContent(
  writer: ArchiveWriter,
  contents: Contents,
  live: DataSource,
  signal: AbortSignal,
  content: SealedContent,
): Promise<void> {
  const chunks = chunkCountOf(content.byteSize, content.chunkBytes);
  await writer.startContent({ id: content.id, chunks });
  let index = 0;
  try {
    for await (const sealed of contents.readSealed(content)) {
      throwIfInterrupted(signal);
      await writer.chunk(sealed);
      index += 1;
    }
  } catch (error) {
    if (!(error instanceof ChunkMissingError)) throw storeFailure(error);
    const [still] = await live.query<unknown[]>('SELECT 1 FROM file_contents WHERE id = $1', [content.id]);
    if (still)
      throw new BackupError(
        'FILE_STORE',
        `chunk ${error.chunkIndex} of file content ${content.id} is missing from the ${content.store} store, though files still use it: ` +
          'the store lost it (recover it from the bucket’s versioning or replication, or remove the file), then take the backup again',
      );
    for (; index < chunks; index += 1) await writer.chunk(null);
  }
}

/** Where a restore puts the file chunks an archive carries. */
export interface FileChunkSink {
  startContent(content: ArchivedContent): Promise<void>;
  /** null: the chunk had vanished from the store before the backup read it. */
  chunk(sealed: Buffer | null, content: ArchivedContent, index: number): Promise<void>;
  endContent(content: ArchivedContent): Promise<void>;
}

/** Makes the sink a restore uses, from its target database and its transaction (which the chunks' rows should join). */
export type FileChunkSinkFactory = (target: DataSource, manager: EntityManager) => FileChunkSink;

/**
 * Puts the chunks into `store` (the restoring configuration's, STORAGE_URL) and points each
 * content's row there, inside the restore's transaction: file_chunks rows commit or roll back with
 * the rest. An object store cannot join it: objects written by a restore that then fails stay, under
 * content ids nothing names (or rewritten to the same bytes, when restoring over the same bucket).
 */
export function storingSink(store: ChunkStore, manager: EntityManager): FileChunkSink {
  return {
    startContent: async () => undefined,
    chunk: async (sealed, content, index) => {
      if (sealed === null) return;
      await store.put(content.id, index, sealed, manager).catch((error: unknown) => {
        throw storeFailure(error);
      });
    },
    endContent: async (content) => {
      await manager.query('UPDATE file_contents SET store = $1 WHERE id = $2', [store.kind, content.id]);
    },
  };
}
