import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { Client } from 'pg';
import type { Keyring } from '../crypto/keyring';
import { databaseNameOf, databaseUrlFor, dropDatabase } from '../db/database';
import type { Logger } from '../logging';
import { TableDigest } from './archive-file';
import type { ArchiveTable, TableSummary } from './archive-records';
import { BackupError, failureText, throwIfInterrupted } from './backup-errors';
import type { Backup } from './backup.entity';
import { RestoreProgress, fileSha256, restoreArchive } from './restore';
import { copyTableOut, prepareCopySession } from './table-copy';
import { FileContentsCheck } from './verify-files';

export interface VerificationOutcome {
  readonly ok: boolean;
  /** What matched, or what differed: stored in the catalogue as `verification`. */
  readonly text: string;
}

const SCRATCH_PREFIX = 'bastion_verify_';

/**
 * Scratch databases are named after the database they verify for, so cleaning up after a killed
 * verification never touches another deployment's on the same server (advisory locks are per
 * database).
 */
export function scratchPrefix(databaseUrl: string): string {
  const database = databaseNameOf(databaseUrl);
  return `${SCRATCH_PREFIX}${createHash('sha256').update(database).digest('hex').slice(0, 8)}_`;
}

/** Re-reads a restored table from the database: its rows and the SHA-256 of its COPY text. */
async function summarize(client: Client, table: ArchiveTable, signal?: AbortSignal): Promise<TableSummary> {
  const digest = new TableDigest(table);
  for await (const chunk of copyTableOut(client, table) as AsyncIterable<Buffer>) {
    throwIfInterrupted(signal);
    digest.update(chunk);
  }
  return digest.summary();
}

/**
 * Proves an archive restorable: the file is the one written (SHA-256), it restores into a
 * scratch database on the same server, every table read back from there has the manifest's
 * row count and checksum, and every file content its files name decrypts to its recorded SHA-256
 * (those in file_chunks read back; those the archive carries for an object store as they stream
 * by, never stored). The scratch database is dropped whatever happens. `client` holds the
 * verification lock, so scratch databases left by a killed verification are dropped first.
 */
export async function verifyArchive(input: {
  client: Client;
  databaseUrl: string;
  keyring: Keyring;
  file: string;
  backup: Backup;
  logger: Logger;
  signal?: AbortSignal;
  onProgress?: (progress: RestoreProgress) => void;
}): Promise<VerificationOutcome> {
  const { client, backup } = input;
  const prefix = scratchPrefix(input.databaseUrl);
  const leftovers = (await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [prefix]))
    .rows;
  for (const { datname } of leftovers) await dropDatabase(client, datname);

  if (!fs.existsSync(input.file)) return { ok: false, text: `the archive file is missing: ${input.file} (written on host ${backup.host})` };
  if ((await fileSha256(input.file)) !== backup.sha256)
    return {
      ok: false,
      text: "the archive file is not the one that was written (its SHA-256 differs from the catalogue's): it was replaced or modified",
    };

  const scratch = `${prefix}${backup.id.replace(/-/g, '')}`;
  try {
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(scratch)}`);
  } catch (error) {
    input.logger.error({ err: error }, 'backup verification: cannot create the scratch database');
    if ((error as { code?: string }).code === '42501')
      return {
        ok: false,
        text: 'cannot create a scratch database to restore into: the database role needs CREATEDB (see README "Backups")',
      };
    return { ok: false, text: `cannot create a scratch database to restore into: ${failureText(error)}` };
  }
  try {
    const scratchUrl = databaseUrlFor(input.databaseUrl, scratch);
    const files = new FileContentsCheck(input.keyring);
    let restored;
    try {
      restored = await restoreArchive({
        file: input.file,
        keyring: input.keyring,
        targetUrl: scratchUrl,
        replace: false,
        trustArchive: true,
        signal: input.signal,
        onProgress: input.onProgress,
        totalRows: backup.rows,
        fileChunks: (_target, manager) => files.sink(manager),
        beforeCommit: (manager) => files.findUnarchived(manager),
      });
    } catch (error) {
      if (error instanceof BackupError) return { ok: false, text: `restoring failed: ${error.message}` };
      throw error;
    }
    const reader = new Client({ connectionString: scratchUrl, application_name: 'bastion-backup-verify' });
    reader.on('error', () => undefined); // surfaces through the query that meets it
    await reader.connect();
    const differences: string[] = [];
    try {
      await prepareCopySession(reader);
      for (const [index, expected] of restored.manifest.tables.entries()) {
        const actual = await summarize(reader, restored.preamble.tables[index], input.signal);
        if (actual.rows !== expected.rows)
          differences.push(`${expected.name}: ${actual.rows} rows restored, the manifest says ${expected.rows}`);
        else if (actual.sha256 !== expected.sha256)
          differences.push(`${expected.name}: the restored rows differ from the archived ones (SHA-256)`);
      }
    } finally {
      await reader.end();
    }
    if (differences.length > 0)
      return { ok: false, text: `${differences.length} table(s) differ after restoring: ${differences.join('; ')}` };
    await files.checkRestored(scratchUrl, input.signal);
    const contents = files.describe();
    if (!contents.ok) return { ok: false, text: `restored ${restored.tables} tables and ${restored.rows} rows, but ${contents.text}` };
    return {
      ok: true,
      text:
        `restored ${restored.tables} tables and ${restored.rows} rows into a scratch database; every table's row count and SHA-256 match the manifest` +
        (contents.text ? `; ${contents.text}` : ''),
    };
  } finally {
    await dropDatabase(client, scratch).catch((error: unknown) =>
      input.logger.warn({ err: error, database: scratch }, 'backup verification: the scratch database could not be dropped'),
    );
  }
}
