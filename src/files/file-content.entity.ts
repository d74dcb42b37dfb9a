import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';
import { bigintAsNumber } from '../db/bigint-column';

/**
 * The encrypted bytes of one stored file or variant (or of an upload in progress), as chunks in a
 * store: AES-256-GCM per chunk, the STREAM construction, under a key derived for this content
 * alone from data key `kid` and `salt`. Deleting the row deletes its chunks: the PostgreSQL store's
 * by cascade, another store's by the queue its trigger fills (`file_deletions`).
 */
@Entity('file_contents')
export class FileContent {
  @PrimaryColumn('uuid')
  id!: string;

  /** Where its chunks are: `postgres` or `s3`. */
  @Column({ type: 'text' })
  store!: string;

  @Column({ type: 'text' })
  kid!: string;

  @Column({ type: 'bytea' })
  salt!: Buffer;

  @Column({ type: 'bytea' })
  noncePrefix!: Buffer;

  /** Plaintext bytes per chunk (the last may hold fewer). */
  @Column({ type: 'integer' })
  chunkBytes!: number;

  /** Plaintext bytes in all: known before the first chunk (an upload declares it), so the final chunk is known too. */
  @Column({ type: 'bigint', transformer: bigintAsNumber })
  byteSize!: number;

  /** SHA-256 of the plaintext, hex; null while an upload is still arriving. */
  @Column({ type: 'text', nullable: true })
  sha256!: string | null;

  @CreateDateColumn({ type: 'timestamptz', precision: 3 })
  createdAt!: Date;
}
