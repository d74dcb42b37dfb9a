import type { DataSource, EntityManager } from 'typeorm';
import { ChunkMissingError, ChunkStore } from './chunk-store';

/** Chunks read per statement: a download holds at most this many in memory. */
const CHUNKS_PER_READ = 4;

/**
 * The default store: chunks as rows of `file_chunks`. Every instance sees every file with no
 * other service, a deleted content's chunks go in the same transaction (foreign key cascade), and
 * backups carry them like any table.
 */
export class PostgresChunkStore implements ChunkStore {
  readonly kind = 'postgres' as const;

  constructor(private readonly dataSource: DataSource) {}

  async put(contentId: string, chunkIndex: number, sealed: Buffer, transaction?: EntityManager): Promise<void> {
    await (transaction ?? this.dataSource.manager).query(
      'INSERT INTO file_chunks (content_id, chunk_index, data) VALUES ($1, $2, $3) ' +
        'ON CONFLICT (content_id, chunk_index) DO UPDATE SET data = EXCLUDED.data',
      [contentId, chunkIndex, sealed],
    );
  }

  async *read(contentId: string, first: number, last: number): AsyncIterable<Buffer> {
    for (let from = first; from <= last; from += CHUNKS_PER_READ) {
      const to = Math.min(last, from + CHUNKS_PER_READ - 1);
      const rows: { chunk_index: number; data: Buffer }[] = await this.dataSource.query(
        'SELECT chunk_index, data FROM file_chunks WHERE content_id = $1 AND chunk_index BETWEEN $2 AND $3 ORDER BY chunk_index',
        [contentId, from, to],
      );
      for (let index = from; index <= to; index += 1) {
        const row = rows[index - from];
        if (row?.chunk_index !== index) throw new ChunkMissingError(contentId, index);
        yield row.data;
      }
    }
  }

  async remove(contents: readonly { readonly contentId: string; readonly chunkCount: number }[]): Promise<void> {
    if (contents.length === 0) return;
    await this.dataSource.query('DELETE FROM file_chunks WHERE content_id = ANY($1::uuid[])', [
      contents.map((content) => content.contentId),
    ]);
  }

  async probe(): Promise<void> {
    await this.dataSource.query('SELECT 1 FROM file_chunks LIMIT 1');
  }

  async close(): Promise<void> {}
}
