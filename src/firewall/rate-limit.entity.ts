import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

export const RATE_LIMIT_TABLE = 'rate_limits';

/**
 * The counters of rate-limiter-flexible's PostgreSQL store (its own table layout), shared by
 * every instance. Created by a migration (UNLOGGED), not by the library; expired rows are pruned
 * by the maintenance job.
 */
@Entity(RATE_LIMIT_TABLE)
export class RateLimitCounter {
  @PrimaryColumn({ type: 'varchar', length: 255 })
  key!: string;

  @Column({ type: 'integer', default: 0 })
  points!: number;

  /** Milliseconds since the epoch when the window ends (indexed for the maintenance job's pruning). */
  @Index('IDX_rate_limits_expire')
  @Column({ type: 'bigint', nullable: true })
  expire!: string | null;
}
