import { createHash } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import { finished } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import type { PoolClient } from 'pg';
import { DataSource, EntityManager, MigrationExecutor, MigrationInterface, QueryRunner } from 'typeorm';
import type { Keyring } from '../crypto/keyring';
import { createDataSource } from '../db/data-source';
import { tableExists } from '../db/database';
import { notifyEverythingChanged } from '../db/notifications';
import { PostgresChunkStore } from '../files/postgres-chunk-store';
import { ArchiveVisitor, readArchive } from './archive-file';
import type { ArchiveManifest, ArchivePreamble, FileChunksSummary } from './archive-records';
import { BackupError, archiveDamaged, throwIfInterrupted } from './backup-errors';
import { FileChunkSinkFactory, storingSink } from './file-chunks';
import { BACKUP_LOCK_KEY, LOCK_WAIT_MS } from './locked-connection';
import {
  copyTableIn,
  listTables,
  prepareCopySession,
  resetSequences,
  restoreConstraints,
  setAsideConstraints,
  truncateTables,
} from './table-copy';

export interface RestoreProgress {
  /** checking: the whole archive is authenticated first; loading: rows go into the target. */
  readonly phase: 'checking' | 'loading';
  readonly bytesRead: number;
  readonly sizeBytes: number;
  /** Rows read (checking) or loaded (loading) so far, all tables. */
  readonly rows: number;
  /** Rows the archive holds, when known: from the catalogue (`totalRows`), else once the checking pass has read its manifest. */
  readonly totalRows: number | null;
}

export interface RestoreOptions {
  readonly file: string;
  readonly keyring: Keyring;
  /** The database to restore into. */
  readonly targetUrl: string;
  /** The target may hold tables: its data is replaced (the CLI's --yes). Otherwise it must be empty. */
  readonly replace: boolean;
  /** Run inside the restoring transaction, after the rows are in (the audit event of the restore). */
  readonly beforeCommit?: (manager: EntityManager, result: RestoreResult) => Promise<void>;
  readonly onProgress?: (progress: RestoreProgress) => void;
  /** The rows the catalogue says the archive holds (for progress only: the manifest decides). */
  readonly totalRows?: number | null;
  /** What the catalogue says the file is (a restore by id): a file swapped for another archive is refused. */
  readonly expect?: { readonly backupId: string; readonly sha256: string | null };
  /** Stops the restore (rolled back) at the next chunk. */
  readonly signal?: AbortSignal;
  /** Skip the authentication pass (the target is a scratch database that is dropped on failure). */
  readonly trustArchive?: boolean;
  /**
   * Where the file chunks the archive carries go (contents that were kept outside PostgreSQL):
   * the restoring configuration's store. By default the target's file_chunks table, the contents
   * then recorded as in PostgreSQL.
   */
  readonly fileChunks?: FileChunkSinkFactory;
}

export interface RestoreResult {
  readonly schemaVersion: string;
  readonly tables: number;
  readonly rows: number;
  /** Migrations run (up) or undone (down) to bring the target to the archive's schema. */
  readonly migrated: readonly string[];
  /** The archive's tables, row counts and checksums, as authenticated while loading. */
  readonly preamble: ArchivePreamble;
  readonly manifest: ArchiveManifest;
  /** The file chunks put back (absent for an archive without them). */
  readonly fileChunks?: FileChunksSummary;
}

/** TypeORM creates its migrations table in a protected method; a restore needs it inside its own transaction. */
class MigrationsTable extends MigrationExecutor {
  ensure(queryRunner: QueryRunner): Promise<void> {
    return this.createMigrationsTableIfNotExist(queryRunner);
  }
}

function migrationName(migration: MigrationInterface): string {
  return migration.name ?? migration.constructor.name;
}

/**
 * Refuses an archive whose schema this Bastion cannot produce: it must be a point on this
 * Bastion's own migration history.
 */
export function checkArchiveSchema(preamble: ArchivePreamble, known: readonly string[]): void {
  const archived = preamble.migrations;
  const firstDifference = archived.findIndex((name, index) => known[index] !== name);
  if (firstDifference === -1) return;
  if (firstDifference >= known.length) {
    throw new BackupError(
      'NEWER_SCHEMA',
      `the archive is from a newer schema (${preamble.schemaVersion}; this Bastion knows ` +
        `up to ${known[known.length - 1] ?? 'nothing'}): upgrade Bastion, then restore`,
    );
  }
  throw new BackupError(
    'SCHEMA_MISMATCH',
    `the archive's schema history differs from this Bastion's at migration ${archived[firstDifference]}: ` +
      `restore it with the Bastion release that wrote it (${preamble.bastionVersion})`,
  );
}

/**
 * Restores an archive into a database in one transaction: the target is brought to the archive's
 * schema version (migrations up or down), every table is emptied and loaded, sequences continue
 * after the restored rows, and every running instance drops its caches on commit. Unless
 * `trustArchive`, the whole archive is authenticated first, so a damaged, truncated or wrong-key
 * archive is refused before the target is touched; any later failure rolls everything back.
 */
export async function restoreArchive(options: RestoreOptions): Promise<RestoreResult> {
  const { file, keyring } = options;
  if (options.expect?.sha256 && (await fileSha256(file)) !== options.expect.sha256) {
    throw archiveDamaged(
      `the file is not the archive the catalogue recorded for backup ${options.expect.backupId} (its SHA-256 differs): it was replaced or modified`,
    );
  }
  // Raw SQL and migrations only: the target needs no entities.
  const target = createDataSource({ url: options.targetUrl, poolSize: 1, entities: [] });
  await target.initialize();
  const known = target.migrations.map(migrationName);
  const queryRunner = target.createQueryRunner();
  try {
    const client = (await queryRunner.connect()) as PoolClient;
    // Cheap refusals first: one query, before the archive is read end to end.
    const [{ tables }] = (await queryRunner.query("SELECT count(*)::int AS tables FROM pg_tables WHERE schemaname = 'public'")) as {
      tables: number;
    }[];
    if (tables > 0 && !options.replace) {
      throw new BackupError(
        'TARGET_NOT_EMPTY',
        'the target database already holds tables: pass --yes to replace its data, or restore into a new database',
      );
    }
    const opening = await readPreamble(file, keyring);
    if (options.expect && opening.backupId && opening.backupId !== options.expect.backupId) {
      throw archiveDamaged(`the file holds backup ${opening.backupId}, not ${options.expect.backupId}: it was renamed`);
    }
    checkArchiveSchema(opening, known);
    let totalRows = options.totalRows ?? null;
    const checking: ArchiveVisitor = {
      progress: (bytesRead, sizeBytes, rows) => options.onProgress?.({ phase: 'checking', bytesRead, sizeBytes, rows, totalRows }),
    };
    let preamble = opening;
    if (!options.trustArchive) {
      const checked = await readArchive(file, keyring, checking);
      preamble = checked.preamble;
      totalRows ??= checked.manifest.tables.reduce((sum, table) => sum + table.rows, 0);
    }
    const names = preamble.tables.map((table) => table.name);
    await queryRunner.startTransaction();
    // Restored rows are not changes anyone subscribed to: the realtime triggers stay quiet (Realtime migration).
    await queryRunner.query("SELECT set_config('bastion.record_changes', 'off', true)");
    if (options.replace) {
      // A backup of this database running now would archive tables half-emptied by the TRUNCATE below.
      await queryRunner.query(`SET LOCAL lock_timeout = ${LOCK_WAIT_MS}`);
      await queryRunner.query('SELECT pg_advisory_xact_lock($1)', [BACKUP_LOCK_KEY]).catch((error: Error & { code?: string }) => {
        throw error.code === '55P03'
          ? new BackupError('IN_PROGRESS', 'a backup of the target database is being created: wait for it to finish, then restore')
          : error;
      });
      await queryRunner.query('SET LOCAL lock_timeout = 0');
    }
    const migrated = await migrateTo(target, queryRunner, preamble, known);
    await prepareCopySession(client);
    await matchTables(client, preamble);
    const setAside = await setAsideConstraints(client, names);
    await truncateTables(client, names);

    const sink = (options.fileChunks ?? ((database, manager) => storingSink(new PostgresChunkStore(database), manager)))(
      target,
      queryRunner.manager,
    );
    let rows = 0;
    let input: Writable | undefined;
    // Heard from the moment the COPY starts: an error emitted with nobody listening would end the process.
    let inputError: Error | undefined;
    const failed = () => inputError ?? (input?.destroyed ? new Error('the COPY into the target stopped') : undefined);
    const loader: ArchiveVisitor = {
      startTable: (table) => {
        inputError = undefined;
        input = copyTableIn(client, table);
        input.on('error', (error) => (inputError ??= error));
      },
      data: async (chunk) => {
        throwIfInterrupted(options.signal);
        const before = failed();
        if (before) throw before;
        if (!input!.write(chunk)) await once(input!, 'drain');
      },
      endTable: async (_table, summary) => {
        input!.end();
        await finished(input!);
        input = undefined;
        rows += summary.rows;
      },
      startContent: (content) => sink.startContent(content),
      chunk: (sealed, content, index) => {
        throwIfInterrupted(options.signal);
        return sink.chunk(sealed, content, index);
      },
      endContent: (content) => sink.endContent(content),
      progress: (bytesRead, sizeBytes, rowsRead) =>
        options.onProgress?.({ phase: 'loading', bytesRead, sizeBytes, rows: rowsRead, totalRows }),
    };
    let manifest: ArchiveManifest;
    try {
      ({ manifest } = await readArchive(file, keyring, loader));
    } finally {
      try {
        if (input && !input.destroyed) input.destroy();
      } catch {
        // The connection is already gone; the rollback below says the rest.
      }
    }
    await restoreConstraints(client, setAside);
    await resetSequences(client, names);
    // Uploads under way when the backup was taken are not resumed: their clients have moved on, and
    // a resumed one could seal a chunk position its store already holds. Deleting them deletes what
    // they stored (the files trigger).
    if (names.includes('uploads')) await queryRunner.query('DELETE FROM uploads');
    await assertKeysAvailable(queryRunner, keyring);
    const result: RestoreResult = {
      schemaVersion: preamble.schemaVersion,
      tables: preamble.tables.length,
      rows,
      migrated,
      preamble,
      manifest,
      ...(manifest.fileChunks ? { fileChunks: manifest.fileChunks } : {}),
    };
    await options.beforeCommit?.(queryRunner.manager, result);
    // Caches of sessions, roles and IP rules on every running instance describe the data just replaced.
    await notifyEverythingChanged(queryRunner.manager);
    await queryRunner.commitTransaction();
    return result;
  } catch (error) {
    if (queryRunner.isTransactionActive) await queryRunner.rollbackTransaction().catch(() => undefined);
    throw error;
  } finally {
    await queryRunner.release();
    await target.destroy();
  }
}

/** The column keys the restored rows need must be in this keyring, or the server would refuse to start on them. */
async function assertKeysAvailable(queryRunner: QueryRunner, keyring: Keyring): Promise<void> {
  if (!(await tableExists(queryRunner, 'encryption_keys'))) return;
  const inUse = ((await queryRunner.query('SELECT kid FROM "public"."encryption_keys" WHERE retired_at IS NULL')) as { kid: string }[]).map(
    (row) => row.kid,
  );
  const missing = inUse.filter((kid) => !keyring.has(kid));
  if (missing.length > 0) {
    throw new BackupError(
      'UNKNOWN_KEY',
      `the archive's rows are encrypted with column key(s) ${missing.join(', ')}, which ` +
        `this keyring (BASTION_ENCRYPTION_KEYS) lacks: add them from escrow, then restore`,
    );
  }
}

export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Only the preamble (the first record): enough to check the schema of an archive about to be read in full. */
async function readPreamble(file: string, keyring: Keyring): Promise<ArchivePreamble> {
  const stop = new Error('preamble read');
  let found: ArchivePreamble | undefined;
  await readArchive(file, keyring, {
    preamble: (preamble) => {
      found = preamble;
      throw stop;
    },
  }).catch((error: unknown) => {
    if (error !== stop) throw error;
  });
  return found!;
}

/** Runs `down` or `up` of migrations, inside the caller's transaction, until the target's schema is the archive's. */
async function migrateTo(
  target: DataSource,
  queryRunner: QueryRunner,
  preamble: ArchivePreamble,
  known: readonly string[],
): Promise<string[]> {
  await new MigrationsTable(target, queryRunner).ensure(queryRunner);
  const applied = ((await queryRunner.query('SELECT name FROM migrations ORDER BY id')) as { name: string }[]).map((row) => row.name);
  const unknown = applied.find((name, index) => known[index] !== name);
  if (unknown)
    throw new BackupError(
      'SCHEMA_MISMATCH',
      `the target database has migration ${unknown}, which this Bastion does not know: restore with the Bastion release that manages it`,
    );
  const migrations = target.migrations;
  const done: string[] = [];
  for (let index = applied.length - 1; index >= preamble.migrations.length; index -= 1) {
    await migrations[index].down(queryRunner);
    done.push(`down ${known[index]}`);
  }
  for (let index = applied.length; index < preamble.migrations.length; index += 1) {
    await migrations[index].up(queryRunner);
    done.push(`up ${known[index]}`);
  }
  // The archive's own migrations rows replace these when the tables are loaded.
  return done;
}

/** The target, at the archive's schema version, must have exactly the archive's tables and columns. */
async function matchTables(client: PoolClient, preamble: ArchivePreamble): Promise<void> {
  const present = new Map((await listTables(client)).map((table) => [table.name, new Set(table.columns)]));
  for (const table of preamble.tables) {
    const columns = present.get(table.name);
    if (!columns)
      throw new BackupError(
        'SCHEMA_MISMATCH',
        `the archive holds table "${table.name}", which the target's schema (${preamble.schemaVersion}) lacks`,
      );
    const missing = table.columns.filter((column) => !columns.has(column));
    if (missing.length > 0)
      throw new BackupError(
        'SCHEMA_MISMATCH',
        `table "${table.name}" in the target lacks column(s) ${missing.join(', ')} that the archive holds`,
      );
    present.delete(table.name);
  }
  if (present.size > 0)
    throw new BackupError(
      'SCHEMA_MISMATCH',
      `the target has table(s) ${[...present.keys()].join(', ')} that the archive does not: they are not Bastion's (created outside its migrations)`,
    );
}
