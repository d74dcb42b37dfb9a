import { Field, Float, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Check, Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { bigintAsNumber } from '../db/bigint-column';
import type { ArchiveContents } from './archive-records';

export enum BackupStatus {
  CREATING = 'creating',
  COMPLETE = 'complete',
  FAILED = 'failed',
  VERIFIED = 'verified',
  VERIFY_FAILED = 'verify_failed',
}

/** An archive that can be restored: written completely, and not (yet) proven otherwise. */
export const RESTORABLE: readonly BackupStatus[] = [BackupStatus.COMPLETE, BackupStatus.VERIFIED];

registerEnumType(BackupStatus, {
  name: 'BackupStatus',
  description: 'Where a backup stands.',
  valuesConfig: {
    CREATING: { description: 'Being written; no file under its name yet.' },
    COMPLETE: { description: 'Written, synced and renamed into place; not yet proven restorable.' },
    FAILED: { description: 'Writing it failed or was interrupted; there is no archive (see error).' },
    VERIFIED: { description: 'Restored into a scratch database and found equal to its manifest (see verifiedAt).' },
    VERIFY_FAILED: { description: 'The last verification failed; verification says what differed.' },
  },
});

/** The catalogue: one row per archive, what it holds, and how its last verification went. */
@ObjectType({ description: 'An encrypted, compressed archive of every table, taken from one consistent snapshot.' })
@Entity('backups')
@Index(['createdAt'])
@Check('backups_status', `"status" IN ('creating', 'complete', 'failed', 'verified', 'verify_failed')`)
export class Backup {
  @Field(() => ID, { description: 'Pass it to verifyBackup, or to `bastion backup restore`. Also part of the file name.' })
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Field({ description: 'When the snapshot was taken.' })
  @Column({ type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @Field(() => Float, { description: 'Size of the archive file in bytes (0 until it is complete).' })
  @Column({ type: 'bigint', default: 0, transformer: bigintAsNumber })
  sizeBytes!: number;

  @Field(() => Int, { description: 'Tables in the archive.' })
  @Column({ type: 'integer', default: 0 })
  tables!: number;

  @Field(() => Float, { description: 'Rows in the archive, all tables together.' })
  @Column({ type: 'bigint', default: 0, transformer: bigintAsNumber })
  rows!: number;

  @Field({ description: 'The newest database migration the archive was taken at; a restore brings the target to it.' })
  @Column({ type: 'text' })
  schemaVersion!: string;

  @Field(() => BackupStatus, { description: 'Where it stands.' })
  @Column({ type: 'text' })
  status!: BackupStatus;

  @Field(() => Date, { nullable: true, description: 'When it was last proven restorable; null if never.' })
  @Column({ type: 'timestamptz', precision: 3, nullable: true })
  verifiedAt!: Date | null;

  @Field(() => String, {
    nullable: true,
    description: 'What the last verification found: the tables and rows that matched, or what differed.',
  })
  @Column({ type: 'text', nullable: true })
  verification!: string | null;

  @Field(() => String, { nullable: true, description: 'Why it FAILED; null otherwise.' })
  @Column({ type: 'text', nullable: true })
  error!: string | null;

  @Field({
    description:
      'The key id it is encrypted with (BACKUP_KEY_ID). Restoring needs that key, and the column keys for the encrypted values inside.',
  })
  @Column({ type: 'text' })
  keyId!: string;

  /** The archive's file name inside BACKUP_DIR. */
  @Column({ type: 'text' })
  fileName!: string;

  /** The machine whose BACKUP_DIR holds the file. */
  @Column({ type: 'text' })
  host!: string;

  /** SHA-256 of the whole file, as written. */
  @Column({ type: 'text', nullable: true })
  sha256!: string | null;

  /** Where BACKUP_COPY_DIR holds the second copy; null when there is none. */
  @Column({ type: 'text', nullable: true })
  copyPath!: string | null;

  /** Why the second copy failed. */
  @Column({ type: 'text', nullable: true })
  copyError!: string | null;

  /** schedule, cli or api. */
  @Column({ type: 'text' })
  trigger!: string;

  @Column({ type: 'timestamptz', precision: 3, nullable: true })
  completedAt!: Date | null;

  /** The archive's preamble and manifest: schema version, tables, row counts, checksums. */
  @Column({ type: 'jsonb', nullable: true })
  manifest!: ArchiveContents | null;
}
