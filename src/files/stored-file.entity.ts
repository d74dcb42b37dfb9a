import { Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { User } from '../accounts/user.entity';
import { bigintAsNumber } from '../db/bigint-column';
import { FileContent } from './file-content.entity';

/**
 * A file attached to a field of a model's row (`profiles`, row, `avatar`). Deleting the row
 * deletes it (the model's files trigger), deleting it deletes its contents (the files trigger), and
 * deleting the account that uploaded it deletes it (foreign key): no content outlives its owner.
 */
@Entity('files')
@Index(['tableName', 'rowId', 'field'])
export class StoredFile {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'text' })
  tableName!: string;

  @Column({ type: 'uuid' })
  rowId!: string;

  @Column({ type: 'text' })
  field!: string;

  /** Indexed: the delete triggers and key rotation find a content's file by it. */
  @Index()
  @Column({ type: 'uuid' })
  contentId!: string;

  @ManyToOne(() => FileContent)
  @JoinColumn({ name: 'content_id' })
  content?: FileContent;

  /** Whose quota it counts against. */
  @Index()
  @Column({ type: 'uuid' })
  uploadedBy!: string;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'uploaded_by' })
  uploader?: User;

  /** Read from the bytes, never from the client's claim. */
  @Column({ type: 'text' })
  contentType!: string;

  @Column({ type: 'bigint', transformer: bigintAsNumber })
  byteSize!: number;

  @Column({ type: 'text' })
  sha256!: string;

  @CreateDateColumn({ type: 'timestamptz', precision: 3 })
  createdAt!: Date;
}
