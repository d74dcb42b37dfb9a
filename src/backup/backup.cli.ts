import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import type { Command } from 'commander';
import type { DataSource } from 'typeorm';
import { Actor, CLI_ACTOR } from '../audit/actor';
import { AuditLog } from '../audit/audit-log';
import { type Clock, systemClock } from '../clock';
import type { Config } from '../config';
import { activeKeyring } from '../crypto/active-keyring';
import { Database, databaseNameOf, databaseUrlFor, describeUrl, dropDatabase, tableExists } from '../db/database';
import type { ChunkStore } from '../files/chunk-store';
import { PostgresChunkStore } from '../files/postgres-chunk-store';
import { S3ChunkStore } from '../files/s3-chunk-store';
import { describeStorage } from '../files/storage-url';
import { ProgressBar } from '../progress-bar';
import type { CommandTools } from '../feature';
import { BackupError } from './backup-errors';
import { Backup, BackupStatus } from './backup.entity';
import { ARCHIVE_EXTENSION, BackupService, backupOptionsOf } from './backup.service';
import { storingSink } from './file-chunks';
import { type RestoreProgress, restoreArchive } from './restore';

/** The services the backup commands use. */
type BackupCommandServices = { readonly backups: BackupService; readonly clock: Clock };

const MB = 1024 * 1024;
const megabytes = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;

function age(from: Date, now: Date): string {
  const minutes = Math.max(0, Math.floor((now.getTime() - from.getTime()) / 60_000));
  if (minutes < 120) return `${minutes}m`;
  if (minutes < 48 * 60) return `${Math.floor(minutes / 60)}h`;
  return `${Math.floor(minutes / 1440)}d`;
}

/** A rate from a start moment; wall-clock time, for the operator's eyes only. */
function rateSince(startedAt: number, bytes: number): string {
  const seconds = Math.max((Date.now() - startedAt) / 1000, 0.001);
  return `${(bytes / MB / seconds).toFixed(1)} MB/s`;
}

/**
 * The archive a reference names: a path to an archive file, or a backup id (or its first 8+
 * characters) looked up in the catalogue, else among the file names in BACKUP_DIR, so a restore
 * works when the database that held the catalogue is gone.
 */
async function resolveArchive(
  reference: string,
  database: Database,
  folder: string,
): Promise<{ file: string; id: string | null; sha256: string | null }> {
  if (reference.endsWith(ARCHIVE_EXTENSION) && fs.existsSync(reference)) return { file: path.resolve(reference), id: null, sha256: null };
  if (!/^[0-9a-f-]{8,36}$/i.test(reference))
    throw new BackupError('NOT_FOUND', `"${reference}" is neither an archive file nor a backup id`);
  const prefix = reference.toLowerCase();
  const catalogued = (await tableExists(database.dataSource, 'backups'))
    ? await database.dataSource.query<{ id: string; file_name: string; sha256: string | null }[]>(
        'SELECT id::text AS id, file_name, sha256 FROM backups WHERE id::text LIKE $1',
        [`${prefix}%`],
      )
    : [];
  const candidates =
    catalogued.length > 0
      ? catalogued.map((row) => ({ id: row.id, file: path.join(folder, row.file_name), sha256: row.sha256 }))
      : (fs.existsSync(folder) ? fs.readdirSync(folder) : [])
          .map((name) => ({ name, id: /-([0-9a-f-]{36})\.bbak$/.exec(name)?.[1] }))
          .filter((entry): entry is { name: string; id: string } => entry.id?.startsWith(prefix) === true)
          .map((entry) => ({ id: entry.id, file: path.join(folder, entry.name), sha256: null }));
  if (candidates.length === 0) throw new BackupError('NOT_FOUND', `no backup ${reference} in the catalogue or in ${folder}`);
  if (candidates.length > 1) throw new BackupError('NOT_FOUND', `${reference} matches ${candidates.length} backups: give more of the id`);
  return candidates[0];
}

async function withAdminClient<T>(url: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: databaseUrlFor(url, 'postgres') });
  client.on('error', () => undefined); // surfaces through the query that meets it
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Creates the database `url` names when it does not exist; says whether it did. */
async function ensureDatabase(url: string): Promise<boolean> {
  const name = databaseNameOf(url);
  return withAdminClient(url, async (client) => {
    const exists = (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount! > 0;
    if (!exists) await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
    return !exists;
  });
}

/** A restore elsewhere (a drill, an off-site copy) is recorded in the source database's audit log too, when it has one. */
async function recordInSource(
  database: Database,
  actor: Actor,
  restore: { id: string | null; file: string; targetUrl: string; result: { schemaVersion: string; tables: number; rows: number } },
): Promise<void> {
  if (!(await tableExists(database.dataSource, 'audit_events'))) return;
  await new AuditLog(systemClock, activeKeyring()).append(database.dataSource.manager, {
    action: 'backup_restored',
    outcome: 'success',
    targetType: 'backup',
    targetId: restore.id,
    metadata: {
      file: path.basename(restore.file),
      into: describeUrl(restore.targetUrl),
      schemaVersion: restore.result.schemaVersion,
      tables: restore.result.tables,
      rows: restore.result.rows,
    },
    ...actor,
  });
}

function printBackup(say: (line: string) => void, backup: Backup): void {
  say(`backup ${backup.id}: ${backup.status.toUpperCase()}`);
  if (backup.error) say(`  error: ${backup.error}`);
  if (backup.sizeBytes)
    say(
      `  ${backup.tables} tables, ${backup.rows} rows, ${megabytes(backup.sizeBytes)} at schema ${backup.schemaVersion}, key ${backup.keyId}`,
    );
  const fileChunks = backup.manifest?.fileChunks;
  if (fileChunks && fileChunks.contents > 0)
    say(
      `  file contents from the object store: ${fileChunks.contents} (${megabytes(fileChunks.bytes)} of sealed chunks)` +
        (fileChunks.vanished > 0 ? `, ${fileChunks.vanished} deleted while it ran (their bytes are not in it)` : ''),
    );
  if (backup.verification) say(`  verification: ${backup.verification}`);
}

/** The store a restore puts an archive's file chunks in: the one this configuration serves files from (STORAGE_URL). */
function restoringStore(config: Config): { make: (target: DataSource) => ChunkStore; close: () => Promise<void> } {
  let made: ChunkStore | undefined;
  return {
    make: (target) => (made = config.storage.kind === 's3' ? new S3ChunkStore(config.storage) : new PostgresChunkStore(target)),
    close: async () => made?.close(),
  };
}

/**
 * A restore's progress in rows, like create's: out of the archive's row count when known (the
 * catalogue's, or the manifest's after the checking pass), else out of an estimate from the share
 * of the file read so far, held above the rows seen so the bar never says 100 % too early.
 */
function showRows(bar: ProgressBar, progress: RestoreProgress, startedAt: number): void {
  const { rows, totalRows, bytesRead, sizeBytes } = progress;
  const total = totalRows ?? Math.max(rows + 1, Math.round((rows * sizeBytes) / Math.max(bytesRead, 1)));
  if (rows < total) bar.update(rows, total, `${megabytes(bytesRead)} of ${megabytes(sizeBytes)}, ${rateSince(startedAt, bytesRead)}`);
}

/** The final line of a restore's bar: every row, and the whole file. */
function finishRows(bar: ProgressBar, progress: RestoreProgress, startedAt: number): void {
  bar.finish(progress.rows, `${megabytes(progress.sizeBytes)}, ${rateSince(startedAt, progress.sizeBytes)}`);
}

/** `bastion backup …`. */
export function registerBackupCommands(program: Command, cli: CommandTools<BackupCommandServices>): void {
  const backup = program.command('backup').description('Encrypted, verified backups: create, list, verify, restore, prune');

  backup
    .command('create')
    .description('Take a backup now (one consistent snapshot of every table, compressed and encrypted with BACKUP_KEY_ID)')
    .action(() =>
      cli.withServices(async ({ backups }) => {
        const startedAt = Date.now();
        const bar = new ProgressBar('backup');
        const contentsBar = new ProgressBar('backup file contents');
        let contentsSeen = false;
        // Rows, out of the snapshot's exact count; the last chunk is left to finish(), which prints the summary.
        const created = await backups
          .create(CLI_ACTOR, 'cli', {
            onProgress: ({ rows, bytes, totalRows, fileContents }) => {
              if (rows < totalRows) bar.update(rows, totalRows, `${megabytes(bytes)}, ${rateSince(startedAt, bytes)}`);
              // After the tables, contents read from the object store: a bar of their own, once the rows' bar is done.
              if (fileContents && fileContents.total > 0) {
                if (!contentsSeen) bar.finish(rows, `${megabytes(bytes)} of table data, ${rateSince(startedAt, bytes)}`);
                contentsSeen = true;
                contentsBar.update(fileContents.done, fileContents.total);
              }
            },
          })
          .finally(() => {
            bar.abandon();
            contentsBar.abandon();
          });
        const tableBytes = created.manifest?.tables.reduce((sum, table) => sum + table.bytes, 0) ?? 0;
        if (!contentsSeen) bar.finish(created.rows, `${megabytes(tableBytes)} of table data, ${rateSince(startedAt, tableBytes)}`);
        printBackup(cli.say, created);
        cli.say(`  file: ${backups.fileOf(created)}`);
        if (created.copyError)
          throw new BackupError('FILE_MISSING', `the archive is complete, but copying it to BACKUP_COPY_DIR failed: ${created.copyError}`);
      }),
    );

  backup
    .command('list')
    .description('Every backup in the catalogue, newest first: age, size, status')
    .action(() =>
      // Only the catalogue's table: the command loads the database and this feature, not every service.
      cli.withTables({ entities: [Backup], subscribers: [] }, async (database, logger, config) => {
        const clock = systemClock;
        const keyring = activeKeyring();
        const backups = new BackupService(
          database.dataSource,
          database.url,
          keyring,
          clock,
          new AuditLog(clock, keyring),
          logger,
          backupOptionsOf(config, keyring),
        );
        const entries = await backups.list();
        if (entries.length === 0) return cli.say(`no backups yet (archives go to ${backups.options.dir}); run \`bastion backup create\``);
        cli.say(
          `${'ID'.padEnd(36)}  ${'CREATED (UTC)'.padEnd(16)}  ${'AGE'.padStart(4)}  ` +
            `${'SIZE'.padStart(10)}  ${'ROWS'.padStart(10)}  ${'STATUS'.padEnd(13)}  VERIFIED`,
        );
        for (const entry of entries) {
          const verified = entry.verifiedAt ? `${age(entry.verifiedAt, clock.now())} ago` : '-';
          cli.say(
            `${entry.id}  ${entry.createdAt.toISOString().slice(0, 16).replace('T', ' ')}  ${age(entry.createdAt, clock.now()).padStart(4)}  ` +
              `${megabytes(entry.sizeBytes).padStart(10)}  ${String(entry.rows).padStart(10)}  ${entry.status.toUpperCase().padEnd(13)}  ` +
              `${verified}${entry.error ? `  (${entry.error})` : ''}`,
          );
        }
      }),
    );

  backup
    .command('verify <id>')
    .description(
      'Restore a backup into a scratch database, compare every table with its manifest, drop the scratch database; exit 1 when it differs',
    )
    .action((reference: string) =>
      cli.withServices(async ({ backups }, database) => {
        const { id } = await resolveArchive(reference, database, backups.options.dir);
        if (!id) throw new BackupError('NOT_FOUND', 'verify takes a backup id from `bastion backup list`, not a file');
        const startedAt = Date.now();
        const bar = new ProgressBar('verifying');
        let last: RestoreProgress | undefined;
        const verified = await backups
          .verify(id, CLI_ACTOR, (progress) => {
            last = progress;
            showRows(bar, progress, startedAt);
          })
          .finally(() => bar.abandon());
        if (last) finishRows(bar, last, startedAt);
        printBackup(cli.say, verified);
        if (verified.verification && verified.status !== BackupStatus.VERIFIED) process.exitCode = 1;
      }),
    );

  backup
    .command('restore <id>')
    .description(
      'Restore a backup (an id, or an archive file) into a new database (default), into --to, or over the current ' +
        'database with --yes. Refuses a damaged, wrong-key or newer-schema archive before the target changes',
    )
    .option('--to <url>', 'the database to restore into (postgres://…); created when it does not exist')
    .option('--yes', 'replace the data of a database that has tables: the current database when --to is not given')
    .action((reference: string, options: { to?: string; yes?: boolean }) =>
      cli.withDatabase(async (database, _logger, config) => {
        const keyring = activeKeyring();
        const store = restoringStore(config);
        const folder = config.backupDir ?? path.join(config.dataDir, 'backups');
        const { file, id, sha256 } = await resolveArchive(reference, database, folder);
        let targetUrl: string;
        let created = false;
        if (options.to) {
          targetUrl = options.to;
          created = await ensureDatabase(targetUrl);
        } else if (options.yes) {
          targetUrl = database.url;
        } else {
          targetUrl = databaseUrlFor(
            database.url,
            `bastion_restore_${systemClock.now().toISOString().replace(/\D/g, '').slice(0, 14)}_${randomBytes(3).toString('hex')}`,
          );
          created = await ensureDatabase(targetUrl);
        }
        const startedAt = Date.now();
        const bars = { checking: new ProgressBar('checking'), loading: new ProgressBar('restoring') };
        let lastChecked: RestoreProgress | undefined;
        let lastLoaded: RestoreProgress | undefined;
        try {
          const result = await restoreArchive({
            file,
            keyring,
            targetUrl,
            replace: Boolean(options.yes),
            expect: id ? { backupId: id, sha256 } : undefined,
            fileChunks: (target, manager) => storingSink(store.make(target), manager),
            onProgress: (progress) => {
              if (progress.phase === 'loading' && lastChecked) finishRows(bars.checking, lastChecked, startedAt);
              lastChecked = progress.phase === 'checking' ? progress : undefined;
              lastLoaded = progress.phase === 'loading' ? progress : lastLoaded;
              showRows(bars[progress.phase], progress, startedAt);
            },
            beforeCommit: (manager, restored) =>
              new AuditLog(systemClock, activeKeyring())
                .append(manager, {
                  action: 'backup_restored',
                  outcome: 'success',
                  targetType: 'backup',
                  targetId: id,
                  metadata: {
                    file: path.basename(file),
                    schemaVersion: restored.schemaVersion,
                    tables: restored.tables,
                    rows: restored.rows,
                    migrated: [...restored.migrated],
                  },
                  ...CLI_ACTOR,
                })
                .then(() => undefined),
          });
          if (lastLoaded) finishRows(bars.loading, { ...lastLoaded, rows: result.rows }, startedAt);
          const down = result.migrated.filter((step) => step.startsWith('down ')).map((step) => step.slice(5));
          const up = result.migrated.length - down.length;
          const migrated = [up > 0 ? `${up} migration(s) applied` : '', down.length > 0 ? `undone: ${down.join(', ')}` : '']
            .filter(Boolean)
            .join('; ');
          cli.say(
            `restored ${result.tables} tables and ${result.rows} rows at schema ` +
              `${result.schemaVersion} into ${describeUrl(targetUrl)}${migrated ? ` (${migrated})` : ''}`,
          );
          if (result.fileChunks && result.fileChunks.contents > 0) {
            const { contents, chunks, vanished } = result.fileChunks;
            cli.say(
              `put back ${contents} file content(s) (${chunks} sealed chunks) into ${describeStorage(config.storage)}` +
                (vanished > 0 ? `; ${vanished} had been deleted while the backup ran: their files are restored without their bytes` : ''),
            );
          }
          if (targetUrl !== database.url) {
            cli.say(`point DATABASE_URL at that database to serve it; \`bastion migrate\` brings it to this release's schema`);
            await recordInSource(database, CLI_ACTOR, { id, file, targetUrl, result });
          } else if (down.length > 0) {
            cli.say("the archive predates this release's schema: run `bastion migrate` before instances of this release serve again");
          }
        } catch (error) {
          bars.checking.abandon();
          bars.loading.abandon();
          if (created) await withAdminClient(targetUrl, (client) => dropDatabase(client, databaseNameOf(targetUrl))).catch(() => undefined);
          throw error;
        } finally {
          await store.close();
        }
      }),
    );

  backup
    .command('prune')
    .description('Apply retention now (BACKUP_KEEP, BACKUP_MAX_AGE_DAYS): delete the archives it no longer keeps, and their copies')
    .action(() =>
      cli.withServices(async ({ backups }) => {
        const removed = await backups.prune(CLI_ACTOR);
        cli.say(
          removed.length === 0 ? 'nothing to prune' : `pruned ${removed.length} backup(s): ${removed.map((entry) => entry.id).join(', ')}`,
        );
      }),
    );
}
