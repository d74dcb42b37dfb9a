import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';
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
