import { Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Encrypted } from '../crypto/encrypted-column';

export type OutboxStatus = 'pending' | 'sent' | 'failed';

/**
 * An email waiting to be sent, written in the same transaction as the change that causes it.
 * Recipient and body are encrypted: they hold an address and a live token.
 */
@Entity('outbox')
@Index(['status', 'createdAt'])
export class OutboxMessage {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  /** The account it concerns: deleting the account deletes its unsent mail. */
  @Column({ type: 'uuid', nullable: true })
  userId!: string | null;

  // Named, not imported: mail sits below accounts, yet the key is a real foreign key to users.
  @ManyToOne('User', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id' })
  user?: unknown;

  @Encrypted()
  recipient!: string;

  @Column({ type: 'text' })
  subject!: string;

  @Encrypted()
  body!: string;

  @Column({ type: 'text', default: 'pending' })
  status!: OutboxStatus;

  @Column({ type: 'integer', default: 0 })
  attempts!: number;

  @Column({ type: 'text', nullable: true })
  lastError!: string | null;

  @CreateDateColumn({ type: 'timestamptz' })
  createdAt!: Date;

  @Column({ type: 'timestamptz', nullable: true })
  sentAt!: Date | null;
}
