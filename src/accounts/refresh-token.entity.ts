import { Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Session } from './session.entity';

/**
 * One member of a session's refresh-token family. Only the SHA-256 of the token is stored; a
 * token is valid while neither used (rotated) nor revoked.
 */
@Entity('refresh_tokens')
export class RefreshToken {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Index()
  @Column({ type: 'uuid' })
  sessionId!: string;

  @ManyToOne(() => Session, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'session_id' })
  session?: Session;

  @Index({ unique: true })
  @Column({ type: 'text' })
  tokenHash!: string;

  /** The token this one replaced. */
  @Column({ type: 'uuid', nullable: true })
  parentId!: string | null;

  @CreateDateColumn({ type: 'timestamptz' })
  createdAt!: Date;

  /** Set when this token was exchanged for its successor. */
  @Column({ type: 'timestamptz', nullable: true })
  usedAt!: Date | null;

  /** Set when a grace-window retry superseded this token before it was ever used. */
  @Column({ type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;
}
