import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/**
 * A committed change of a subscribed model's row, written by the model's change trigger (the
 * Realtime migration) in the changing transaction. The NOTIFY names it; `before` keeps only the
 * columns that place the row (owner, named filters, filterable fields), so an instance can tell
 * who could read the row before an update or a delete. Pruned by the maintenance job.
 */
@Entity('realtime_events')
export class RealtimeEvent {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id!: string;

  @Column({ type: 'text' })
  model!: string;

  @Column({ type: 'uuid' })
  rowId!: string;

  @Column({ type: 'text' })
  kind!: string;

  @Column({ type: 'jsonb', nullable: true })
  before!: Record<string, unknown> | null;

  @Index('IDX_realtime_events_created_at')
  @CreateDateColumn({ type: 'timestamptz' })
  createdAt!: Date;

  /** The writing transaction (txid_current()): how a writer publishing to Redis finds its own events before COMMIT. */
  @Index('IDX_realtime_events_tx')
  @Column({ type: 'bigint', default: () => 'txid_current()' })
  tx!: string;
}
