import type { DataSource, EntityManager } from 'typeorm';
import type { Clock } from '../clock';
import type { Logger } from '../logging';
import type { Stores } from './content-io';
import { UNREFERENCED } from './content-references';

/** A content no file, variant or upload names, younger than this, may still be on its way to being attached. */
const ORPHAN_GRACE_MS = 60 * 60 * 1000;
/** Store deletions done per maintenance run (each is a few requests to the store). */
const DELETIONS_PER_RUN = 500;

/** The statement that makes a table's files trigger: what a model with file fields needs in a migration (README "Files"). */
export function fileTriggerSql(table: string): string {
  return (
    `CREATE TRIGGER bastion_delete_row_files AFTER DELETE ON "${table}" REFERENCING OLD TABLE AS old_rows ` +
    'FOR EACH STATEMENT EXECUTE FUNCTION bastion_delete_row_files()'
  );
}

/**
 * A model with file fields whose table lacks the files trigger would leave a deleted row's files
 * (and their contents) behind: the server refuses to start, naming the statement to add.
 */
export async function checkFileTriggers(dataSource: DataSource, tables: readonly string[]): Promise<void> {
  if (tables.length === 0) return;
  const rows: { table: string }[] = await dataSource.query(
    `SELECT c.relname AS table FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
      WHERE p.proname = 'bastion_delete_row_files' AND NOT t.tgisinternal AND t.tgenabled <> 'D'`,
  );
  const missing = tables.filter((table) => !rows.some((row) => row.table === table));
  if (missing.length > 0)
    throw new Error(
      `Models with file fields need the files trigger (README "Files"); add to a migration:\n  ${missing.map(fileTriggerSql).join(';\n  ')}`,
    );
}

/**
 * Contents nothing names (a process that died between storing a re-encoded image and attaching
 * it): deleted after an hour, their chunks with them (or queued, for an object store).
 */
export async function pruneOrphanContents(manager: EntityManager, clock: Clock): Promise<number> {
  // TypeORM answers a DELETE with [rows, count].
  const [, deleted]: [unknown, number] = await manager.query(
    `DELETE FROM file_contents c WHERE c.created_at < $1
        AND ${UNREFERENCED}`,
    [new Date(clock.now().getTime() - ORPHAN_GRACE_MS)],
  );
  return deleted;
}

/** Chunks of deleted contents in an object store: removed there, then their queue rows (a crash between repeats a delete, which is harmless). */
export async function pruneStoreDeletions(manager: EntityManager, stores: Stores, logger: Logger): Promise<number> {
  const queued: { content_id: string; store: string; chunk_count: number }[] = await manager.query(
    'SELECT content_id, store, chunk_count FROM file_deletions ORDER BY queued_at LIMIT $1 FOR UPDATE SKIP LOCKED',
    [DELETIONS_PER_RUN],
  );
  const done: string[] = [];
  // Each store on its own: one that fails, or is not configured here, keeps its rows queued for the
  // next run (the self-audit reports them), and must not roll back the rest of the maintenance job.
  for (const kind of new Set(queued.map((row) => row.store))) {
    const batch = queued.filter((row) => row.store === kind);
    const store = stores.all.find((candidate) => candidate.kind === kind);
    if (!store) {
      logger.warn({ store: kind, contents: batch.length }, 'files: deletions queued for a store this instance is not configured for');
      continue;
    }
    try {
      await store.remove(batch.map((row) => ({ contentId: row.content_id, chunkCount: row.chunk_count })));
      done.push(...batch.map((row) => row.content_id));
    } catch (error) {
      logger.warn(
        { err: error, store: kind, contents: batch.length },
        'files: removing deleted contents from the store failed; retried next run',
      );
    }
  }
  if (done.length > 0) await manager.query('DELETE FROM file_deletions WHERE content_id = ANY($1::uuid[])', [done]);
  return done.length;
}
