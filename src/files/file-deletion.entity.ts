import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/**
 * A deleted content whose chunks live outside PostgreSQL (S3): queued by the file_contents
 * trigger in the deleting transaction, removed from the store by the maintenance job (idempotent,
 * so a crash between the two only repeats a delete).
 */
@Entity('file_deletions')
export class FileDeletion {
  @PrimaryColumn('uuid')
  contentId!: string;

  @Column({ type: 'text' })
  store!: string;

  /** Chunks that may exist (from its size). */
  @Column({ type: 'integer' })
  chunkCount!: number;

  @CreateDateColumn({ type: 'timestamptz' })
  queuedAt!: Date;
}
