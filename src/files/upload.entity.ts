import { Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { User } from '../accounts/user.entity';
import { bigintAsNumber } from '../db/bigint-column';

/**
 * An upload for a field of a row, from `startUpload` until its last byte arrives and the file is
 * attached, or it expires. Its bytes go straight into its content's chunks as they arrive; the
 * bytes past the last whole chunk wait, sealed, in `tail`. Deleting it (done, expired,
 * terminated, or its account deleted) deletes an unattached content.
 */
@Entity('uploads')
export class Upload {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'text' })
  tableName!: string;

  @Column({ type: 'uuid' })
  rowId!: string;

  @Column({ type: 'text' })
  field!: string;

  @Index()
  @Column({ type: 'uuid' })
  userId!: string;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id' })
  user?: User;

  /** The size declared by startUpload: the tus Upload-Length must match it. */
  @Column({ type: 'bigint', transformer: bigintAsNumber })
  byteSize!: number;

  /** The type the app declared (checked against the field; the bytes decide what is stored). */
  @Column({ type: 'text' })
  declaredType!: string;

  @Column({ type: 'uuid' })
  contentId!: string;

  /** Bytes received and kept (the tus Upload-Offset). */
  @Column({ type: 'bigint', default: 0, transformer: bigintAsNumber })
  receivedBytes!: number;

  /** The bytes past the last whole chunk, sealed (envelope, domain `uploads.tail`). */
  @Column({ type: 'text', nullable: true })
  tail!: string | null;

  /** When the tus creation request arrived (null: the ticket is not used yet). */
  @Column({ type: 'timestamptz', nullable: true })
  createdByClientAt!: Date | null;

  @Index()
  @Column({ type: 'timestamptz' })
  expiresAt!: Date;

  @CreateDateColumn({ type: 'timestamptz', precision: 3 })
  createdAt!: Date;
}
