import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * Failed sign-in counters, in PostgreSQL so they hold across instances. Keys are built from the
 * email's blind index (never the email), alone and with the client IP.
 */
@Entity('login_throttles')
export class LoginThrottle {
  @PrimaryColumn({ type: 'text' })
  key!: string;

  /** Attempts since the last success; an attempt counts before its password is checked. */
  @Column({ type: 'integer', default: 0 })
  failures!: number;

  @Column({ type: 'timestamptz', nullable: true })
  lockedUntil!: Date | null;

  @Column({ type: 'timestamptz' })
  updatedAt!: Date;
}
