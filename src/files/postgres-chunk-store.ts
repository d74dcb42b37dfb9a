import type { DataSource, EntityManager } from 'typeorm';
import { ChunkMissingError, ChunkStore } from './chunk-store';

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

  /**
   * Claims chunk `chunkIndex` of an upload and writes it, in one statement: the upload's offset
   * moves from `from` to `to` only where it still is `from`, and the chunk is written only then.
   * A second request for the same upload waits on the row, then finds the offset moved: false.
   */
  async putClaimingUpload(
    claim: { readonly uploadId: string; readonly from: number; readonly to: number },
    contentId: string,
    chunkIndex: number,
    sealed: Buffer,
  ): Promise<boolean> {
    const written: unknown[] = await this.dataSource.query(
      'WITH claimed AS (UPDATE uploads SET received_bytes = $3, tail = NULL WHERE id = $1 AND received_bytes = $2 RETURNING id) ' +
        'INSERT INTO file_chunks (content_id, chunk_index, data) SELECT $4, $5, $6 FROM claimed ' +
        'ON CONFLICT (content_id, chunk_index) DO UPDATE SET data = EXCLUDED.data RETURNING chunk_index',
      [claim.uploadId, claim.from, claim.to, contentId, chunkIndex, sealed],
    );
    return written.length === 1;
  }

  /**
   * One chunk per statement, the next one already asked for while this one is passed on: a
   * download holds two chunks, and the hex text pg reads a bytea as (twice its size) is garbage at
   * once, so memory stays flat whatever the file's size.
   */
  async *read(contentId: string, first: number, last: number): AsyncIterable<Buffer> {
    const fetch = (index: number): Promise<{ data: Buffer }[]> =>
      this.dataSource.query('SELECT data FROM file_chunks WHERE content_id = $1 AND chunk_index = $2', [contentId, index]);
    let next = first <= last ? fetch(first) : undefined;
    for (let index = first; index <= last; index += 1) {
      const rows = await next!;
      next = index < last ? fetch(index + 1) : undefined;
      // A stopped reader leaves at most one statement running: its answer is dropped.
      next?.catch(() => undefined);
      if (rows.length === 0) throw new ChunkMissingError(contentId, index);
      yield rows[0].data;
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
