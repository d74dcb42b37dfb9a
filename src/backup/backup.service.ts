import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { DataSource } from 'typeorm';
import type { Actor } from '../audit/actor';
import type { AuditLog } from '../audit/audit-log';
import type { Clock } from '../clock';
import type { Config } from '../config';
import type { Keyring } from '../crypto/keyring';
import type { Contents } from '../files/content-io';
import { BASTION_VERSION } from '../project';
import type { Logger } from '../logging';
import { ArchiveWriter, partialNameOf, syncFolder } from './archive-file';
import { ArchivePreamble, describeContents } from './archive-records';
import { BackupError, failureText, throwIfInterrupted } from './backup-errors';
import { countArchivedContents, writeFileChunks } from './file-chunks';
import { Backup, BackupStatus, RESTORABLE } from './backup.entity';
import { RetentionPolicy, prunable } from './retention';
import { BACKUP_LOCK_KEY, LOCK_WAIT_MS, LockedConnection, VERIFY_LOCK_KEY } from './locked-connection';
import type { RestoreProgress } from './restore';
import { EXCLUDED_TABLES, copyTableOut, countRows, listTables, lockTables, prepareCopySession } from './table-copy';
import { verifyArchive } from './verify';

export const ARCHIVE_EXTENSION = '.bbak';

export type BackupTrigger = 'schedule' | 'cli' | 'api';

export interface BackupOptions extends RetentionPolicy {
  readonly dir: string;
  readonly copyDir: string | undefined;
  /** The keyring key archives are encrypted with. */
  readonly keyId: string;
}

/** The options the settings give (BACKUP_DIR, BACKUP_COPY_DIR, BACKUP_KEY_ID, retention). */
export function backupOptionsOf(config: Config, keyring: Keyring): BackupOptions {
  return {
    dir: config.backupDir ?? path.join(config.dataDir, 'backups'),
    copyDir: config.backupCopyDir,
    keyId: config.backupKeyId ?? keyring.currentKid,
    keep: config.backupKeep,
    maxAgeDays: config.backupMaxAgeDays,
  };
}

export interface BackupProgress {
  readonly table: string;
  readonly rows: number;
  /** COPY text bytes read so far, all tables. */
  readonly bytes: number;
  /** Rows in all tables of the snapshot, counted before the first COPY: `rows` ends exactly there. */
  readonly totalRows: number;
  /** After the tables: file contents kept outside PostgreSQL whose chunks are archived so far, out of the snapshot's. */
  readonly fileContents?: { readonly done: number; readonly total: number };
}

/** Watches a backup being written: progress, and a pause before each table (tests write rows there). */
export interface CreateObserver {
  readonly onProgress?: (progress: BackupProgress) => void;
  readonly beforeTable?: (table: string) => Promise<void>;
}

/** A job that has started: its catalogue row now, and its outcome later. */
export interface StartedJob {
  readonly backup: Backup;
  readonly done: Promise<Backup>;
}

function archiveName(createdAt: Date, id: string): string {
  return `bastion-${createdAt
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${id}${ARCHIVE_EXTENSION}`;
}

/**
 * Backups: create (a consistent snapshot, streamed into an encrypted archive), list, verify (by
 * restoring into a scratch database), retention, and the catalogue that records all of it.
 * Restoring is `restoreArchive` (restore.ts), reachable from the CLI only.
 */
export class BackupService {
  private readonly running = new Map<AbortController, Promise<unknown>>();

  constructor(
    private readonly dataSource: DataSource,
    private readonly databaseUrl: string,
    private readonly keyring: Keyring,
    private readonly clock: Clock,
    private readonly audit: AuditLog,
    private readonly logger: Logger,
    readonly options: BackupOptions,
    /** Where file contents are kept: those outside PostgreSQL are read from there into the archive. */
    private readonly fileContents?: Contents,
  ) {}

  fileOf(backup: Pick<Backup, 'fileName'>): string {
    return path.join(this.options.dir, backup.fileName);
  }

  /** The catalogue, newest first (entries whose writer died are marked FAILED first). */
  async list(): Promise<Backup[]> {
    await this.withLock(BACKUP_LOCK_KEY, (locked) => (locked ? this.abandonInterrupted() : Promise.resolve()));
    return this.dataSource.getRepository(Backup).find({ order: { createdAt: 'DESC' } });
  }

  async get(id: string): Promise<Backup | null> {
    return this.dataSource.getRepository(Backup).findOneBy({ id });
  }

  async create(actor: Actor, trigger: BackupTrigger, observe: CreateObserver = {}): Promise<Backup> {
    return (await this.startCreate(actor, trigger, observe)).done;
  }

  /**
   * Takes the backup lock (IN_PROGRESS when another backup runs anywhere), records a CREATING
   * entry, and returns; the archive is written by `done`.
   */
  async startCreate(actor: Actor, trigger: BackupTrigger, observe: CreateObserver = {}): Promise<StartedJob> {
    const started = await this.startCreateUnless(actor, trigger, observe, null);
    return started!;
  }

  /**
   * As startCreate; but with `recentSince`, returns null (and does nothing) when a backup of the
   * same trigger was taken since then: checked under the lock, so instances whose timers fire
   * together take one backup between them.
   */
  async startCreateUnless(
    actor: Actor,
    trigger: BackupTrigger,
    observe: CreateObserver,
    recentSince: Date | null,
  ): Promise<StartedJob | null> {
    // The lock lives as long as this connection: a killed process releases it, and its CREATING entry is then known to be dead.
    const connection = await LockedConnection.acquire(this.databaseUrl, 'bastion-backup', BACKUP_LOCK_KEY, LOCK_WAIT_MS);
    if (!connection)
      throw new BackupError('IN_PROGRESS', 'another backup is being created (on this or another instance): wait for it to finish');
    let backup: Backup;
    try {
      if (
        recentSince &&
        (
          await this.dataSource.query<unknown[]>(
            "SELECT 1 FROM backups WHERE trigger = $1 AND created_at > $2 AND status <> 'failed' LIMIT 1",
            [trigger, recentSince],
          )
        ).length > 0
      ) {
        await connection.close();
        return null;
      }
      await this.abandonInterrupted();
      const createdAt = this.clock.now();
      const id = randomUUID();
      backup = await this.dataSource.getRepository(Backup).save(
        Object.assign(new Backup(), {
          id,
          createdAt,
          status: BackupStatus.CREATING,
          schemaVersion: '',
          keyId: this.options.keyId,
          fileName: archiveName(createdAt, id),
          host: os.hostname(),
          trigger,
        }),
      );
    } catch (error) {
      await connection.close();
      throw error;
    }
    return { backup, done: this.track(connection, (signal) => this.writeArchive(connection, backup, actor, signal, observe)) };
  }

  /** Runs a job that holds `connection`'s lock, stoppable by `stop()`; the lock goes when the job ends. */
  private track(connection: LockedConnection, job: (signal: AbortSignal) => Promise<Backup>): Promise<Backup> {
    const abort = new AbortController();
    const done = job(abort.signal).finally(() => {
      this.running.delete(abort);
      return connection.close();
    });
    this.running.set(
      abort,
      done.catch(() => undefined),
    );
    return done;
  }

  private async writeArchive(
    connection: LockedConnection,
    backup: Backup,
    actor: Actor,
    signal: AbortSignal,
    observe: CreateObserver,
  ): Promise<Backup> {
    const { client } = connection;
    const file = this.fileOf(backup);
    let writer: ArchiveWriter | undefined;
    try {
      writer = await ArchiveWriter.create(file, this.keyring, this.options.keyId);
      await prepareCopySession(client);
      // One snapshot for every table: rows committed during the backup are in none of them or all of
      // them. The tables are locked (ACCESS SHARE, as pg_dump does) before the snapshot is taken, so a
      // TRUNCATE or DDL cannot slip in between the snapshot and a table's COPY.
      const lockable = await listTables(client);
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await lockTables(
        client,
        lockable.map((table) => table.name),
      );
      const tables = await listTables(client);
      const migrations = (await client.query<{ name: string }>('SELECT name FROM migrations ORDER BY id')).rows.map((row) => row.name);
      // Counted in the snapshot, only when someone watches: the planner's estimate (reltuples) is
      // -1 for a table never analysed, which made a bar jump from 98 % (49/50) to 100 % (141/141).
      const snapshotRows = observe.onProgress ? await countRows(client, tables) : 0;
      // Every archive of a schema with files has the section, empty when every content is in PostgreSQL (file_chunks holds those).
      const fileChunks = ['file_contents', 'files', 'file_variants'].every((name) => tables.some((table) => table.name === name));
      const snapshotContents = observe.onProgress && fileChunks ? await countArchivedContents(client) : 0;
      const preamble: ArchivePreamble = {
        format: 1,
        backupId: backup.id,
        createdAt: backup.createdAt.toISOString(),
        bastionVersion: BASTION_VERSION,
        schemaVersion: migrations[migrations.length - 1] ?? '',
        migrations,
        tables,
        excluded: EXCLUDED_TABLES,
        ...(fileChunks ? { fileChunks: true as const } : {}),
      };
      await writer.preamble(preamble);
      for (const table of tables) {
        await observe.beforeTable?.(table.name);
        await writer.startTable(table);
        for await (const chunk of copyTableOut(client, table) as AsyncIterable<Buffer>) {
          throwIfInterrupted(signal);
          await writer.data(chunk);
          observe.onProgress?.({ table: table.name, rows: writer.rows, bytes: writer.bytes, totalRows: snapshotRows });
        }
      }
      if (fileChunks) {
        const tablesDone = { table: 'file_contents', rows: writer.rows, bytes: writer.bytes, totalRows: snapshotRows };
        observe.onProgress?.({ ...tablesDone, fileContents: { done: 0, total: snapshotContents } });
        await writeFileChunks({
          client,
          writer,
          contents: this.fileContents,
          live: this.dataSource,
          signal,
          onContent: (done) => observe.onProgress?.({ ...tablesDone, fileContents: { done, total: snapshotContents } }),
        });
      }
      await client.query('COMMIT');
      const written = await writer.finish();
      writer = undefined;
      const totalRows = written.manifest.tables.reduce((sum, table) => sum + table.rows, 0);
      const completed = await this.dataSource.transaction(async (manager) => {
        await manager.update(
          Backup,
          { id: backup.id },
          {
            status: BackupStatus.COMPLETE,
            completedAt: this.clock.now(),
            sizeBytes: written.sizeBytes,
            sha256: written.sha256,
            tables: tables.length,
            rows: totalRows,
            schemaVersion: preamble.schemaVersion,
            manifest: describeContents(preamble, written.manifest),
          },
        );
        await this.audit.append(manager, {
          action: 'backup_created',
          outcome: 'success',
          targetType: 'backup',
          targetId: backup.id,
          metadata: {
            trigger: backup.trigger,
            sizeBytes: written.sizeBytes,
            tables: tables.length,
            rows: totalRows,
            kid: this.options.keyId,
            ...(written.manifest.fileChunks ? { fileContents: written.manifest.fileChunks.contents } : {}),
          },
          ...actor,
        });
        return manager.findOneByOrFail(Backup, { id: backup.id });
      });
      return await this.copyToSecondLocation(completed, actor);
    } catch (error) {
      // Not ROLLBACK: a COPY left mid-stream never answers it. Cutting the connection rolls back and frees the lock.
      connection.sever();
      await writer?.abort().catch(() => undefined);
      await this.recordFailure(backup, actor, error);
      throw error;
    }
  }

  private async recordFailure(backup: Backup, actor: Actor, error: unknown): Promise<void> {
    this.logger.error({ err: error, backupId: backup.id }, 'backup failed');
    const text = failureText(error);
    await this.dataSource
      .transaction(async (manager) => {
        await manager.update(Backup, { id: backup.id }, { status: BackupStatus.FAILED, error: text, completedAt: this.clock.now() });
        await this.audit.append(manager, {
          action: 'backup_failed',
          outcome: 'failure',
          targetType: 'backup',
          targetId: backup.id,
          metadata: { trigger: backup.trigger, error: text },
          ...actor,
        });
      })
      .catch((recordError: unknown) =>
        this.logger.error({ err: recordError, backupId: backup.id }, 'backup failure could not be recorded'),
      );
  }

  /** BACKUP_COPY_DIR: the archive copied (temporary name, fsync, rename) and compared with the original's SHA-256. */
  private async copyToSecondLocation(backup: Backup, actor: Actor): Promise<Backup> {
    const copyDir = this.options.copyDir;
    if (!copyDir) return backup;
    const target = path.join(copyDir, backup.fileName);
    const temporary = partialNameOf(target);
    try {
      await fs.promises.mkdir(copyDir, { recursive: true, mode: 0o700 });
      const hash = createHash('sha256');
      const source = fs.createReadStream(this.fileOf(backup));
      source.on('data', (chunk) => hash.update(chunk));
      await pipeline(source, fs.createWriteStream(temporary, { flags: 'wx', mode: 0o600 }));
      const handle = await fs.promises.open(temporary, 'r+');
      await handle.sync().finally(() => handle.close());
      if (hash.digest('hex') !== backup.sha256)
        throw new BackupError('ARCHIVE_DAMAGED', 'the copy differs from the archive it was made from');
      await fs.promises.rename(temporary, target);
      await syncFolder(copyDir);
      await this.dataSource.getRepository(Backup).update({ id: backup.id }, { copyPath: target, copyError: null });
      return { ...backup, copyPath: target, copyError: null };
    } catch (error) {
      await fs.promises.rm(temporary, { force: true }).catch(() => undefined);
      const text = failureText(error);
      this.logger.error({ err: error, backupId: backup.id }, 'backup: copying the archive to BACKUP_COPY_DIR failed');
      await this.dataSource.transaction(async (manager) => {
        await manager.update(Backup, { id: backup.id }, { copyError: text });
        await this.audit.append(manager, {
          action: 'backup_copy_failed',
          outcome: 'failure',
          targetType: 'backup',
          targetId: backup.id,
          metadata: { error: text },
          ...actor,
        });
      });
      return { ...backup, copyError: text };
    }
  }

  /** Call holding the backup lock: a CREATING entry is then one whose writer died. */
  private async abandonInterrupted(): Promise<void> {
    await this.dataSource.getRepository(Backup).update(
      { status: BackupStatus.CREATING },
      {
        status: BackupStatus.FAILED,
        error: 'interrupted: the process writing it stopped before it finished',
        completedAt: this.clock.now(),
      },
    );
    for (const folder of [this.options.dir, this.options.copyDir].filter((folder): folder is string => Boolean(folder))) {
      const names = await fs.promises.readdir(folder).catch(() => [] as string[]);
      for (const name of names) {
        if (/^\.bastion-.*\.bbak\.partial$/.test(name)) await fs.promises.rm(path.join(folder, name), { force: true });
      }
    }
  }

  /** Restores an archive into a scratch database and compares it with its manifest; records the result. */
  async verify(id: string, actor: Actor, onProgress?: (progress: RestoreProgress) => void): Promise<Backup> {
    return (await this.startVerify(id, actor, onProgress)).done;
  }

  async startVerify(id: string, actor: Actor, onProgress?: (progress: RestoreProgress) => void): Promise<StartedJob> {
    return (await this.startVerifyUnless(id, actor, null, onProgress))!;
  }

  /** The archive file is on this machine (or BACKUP_DIR is shared with the one that wrote it). */
  isHere(backup: Backup): boolean {
    return backup.host === os.hostname() || fs.existsSync(this.fileOf(backup));
  }

  /** As startVerify; with `recentSince`, null when the archive was verified since then (checked under the lock). */
  async startVerifyUnless(
    id: string,
    actor: Actor,
    recentSince: Date | null,
    onProgress?: (progress: RestoreProgress) => void,
  ): Promise<StartedJob | null> {
    const backup = await this.get(id);
    if (!backup) throw new BackupError('NOT_FOUND', `no backup has id ${id}`);
    if (!RESTORABLE.includes(backup.status) && backup.status !== BackupStatus.VERIFY_FAILED) {
      throw new BackupError('NOT_FOUND', `backup ${id} is ${backup.status.toUpperCase()}: there is no archive to verify`);
    }
    if (!this.isHere(backup)) {
      throw new BackupError(
        'FILE_MISSING',
        `backup ${id} was written on host ${backup.host}, and its file is not in ` +
          `${this.options.dir} here: verify it there, or give every instance one shared BACKUP_DIR`,
      );
    }
    const connection = await LockedConnection.acquire(this.databaseUrl, 'bastion-backup-verify', VERIFY_LOCK_KEY, LOCK_WAIT_MS);
    if (!connection)
      throw new BackupError('IN_PROGRESS', 'another backup is being verified (on this or another instance): wait for it to finish');
    try {
      const current = await this.get(id);
      if (recentSince && current?.verifiedAt && current.verifiedAt > recentSince) {
        await connection.close();
        return null;
      }
    } catch (error) {
      await connection.close();
      throw error;
    }
    return { backup, done: this.track(connection, (signal) => this.runVerification(connection, backup, actor, signal, onProgress)) };
  }

  private async runVerification(
    connection: LockedConnection,
    backup: Backup,
    actor: Actor,
    signal: AbortSignal,
    onProgress?: (progress: RestoreProgress) => void,
  ): Promise<Backup> {
    let outcome: { ok: boolean; text: string };
    try {
      outcome = await verifyArchive({
        client: connection.client,
        databaseUrl: this.databaseUrl,
        keyring: this.keyring,
        file: this.fileOf(backup),
        backup,
        logger: this.logger,
        signal,
        onProgress,
      });
    } catch (error) {
      // Whatever stopped it, the archive was not proven restorable: that is the finding, recorded like any other.
      this.logger.error({ err: error, backupId: backup.id }, 'backup verification failed');
      outcome = { ok: false, text: `verification could not finish: ${failureText(error)}` };
    }
    const verifiedAt = this.clock.now();
    return this.dataSource.transaction(async (manager) => {
      await manager.update(
        Backup,
        { id: backup.id },
        outcome.ok
          ? { status: BackupStatus.VERIFIED, verifiedAt, verification: outcome.text }
          : { status: BackupStatus.VERIFY_FAILED, verification: outcome.text },
      );
      await this.audit.append(manager, {
        action: outcome.ok ? 'backup_verified' : 'backup_verify_failed',
        outcome: outcome.ok ? 'success' : 'failure',
        targetType: 'backup',
        targetId: backup.id,
        metadata: { result: outcome.text },
        ...actor,
      });
      return manager.findOneByOrFail(Backup, { id: backup.id });
    });
  }

  /** Retention: deletes the archives (and their copies) the policy no longer keeps, and their entries. */
  async prune(actor: Actor): Promise<Backup[]> {
    const entries = await this.list();
    // Another machine's archive (an unshared BACKUP_DIR) is that machine's to delete.
    const doomed = (prunable(entries, this.options, this.clock.now()) as Backup[]).filter(
      (backup) => backup.status === BackupStatus.FAILED || this.isHere(backup),
    );
    if (doomed.length === 0) return [];
    for (const backup of doomed) {
      await fs.promises.rm(this.fileOf(backup), { force: true });
      if (backup.copyPath) await fs.promises.rm(backup.copyPath, { force: true });
    }
    await this.dataSource.transaction(async (manager) => {
      await manager.delete(
        Backup,
        doomed.map((backup) => backup.id),
      );
      await this.audit.append(manager, {
        action: 'backups_pruned',
        outcome: 'success',
        targetType: 'backup',
        metadata: {
          removed: doomed.length,
          ids: doomed.map((backup) => backup.id),
          keep: this.options.keep,
          maxAgeDays: this.options.maxAgeDays ?? null,
        },
        ...actor,
      });
    });
    return doomed;
  }

  /**
   * Shutdown: archives being written in this process stop, become FAILED, and lose their temporary
   * file; verifications stop and are recorded as unfinished.
   */
  async stop(): Promise<void> {
    for (const abort of this.running.keys()) abort.abort();
    await Promise.all(this.running.values());
  }

  private async withLock<T>(key: string, work: (locked: boolean) => Promise<T>): Promise<T> {
    const runner = this.dataSource.createQueryRunner();
    try {
      const [{ locked }] = (await runner.query('SELECT pg_try_advisory_lock($1) AS locked', [key])) as { locked: boolean }[];
      try {
        return await work(locked);
      } finally {
        if (locked) await runner.query('SELECT pg_advisory_unlock($1)', [key]);
      }
    } finally {
      await runner.release();
    }
  }
}
