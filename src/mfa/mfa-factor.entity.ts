import { Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { User } from '../accounts/user.entity';
import { Encrypted } from '../crypto/encrypted-column';

export type MfaFactorStatus = 'unverified' | 'verified';

/** A TOTP authenticator of one user. The seed is encrypted; it leaves the server only at enrolment. */
@Entity('mfa_factors')
@Index(['userId', 'status'])
// One working factor per account, whatever races two confirmations run.
@Index('mfa_factors_one_verified_per_user', ['userId'], { unique: true, where: "status = 'verified'" })
export class MfaFactor {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'uuid' })
  userId!: string;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id' })
  user?: User;

  /** Base32 TOTP seed (160 bits). */
  @Encrypted()
  secret!: string;

  @Column({ type: 'text' })
  status!: MfaFactorStatus;

  /** The last accepted TOTP time step: a code of this step or earlier never works again (RFC 6238 §5.2). */
  @Column({
    type: 'bigint',
    nullable: true,
    transformer: { to: (value: number | null) => value, from: (value: string | null) => (value === null ? null : Number(value)) },
  })
  lastUsedStep!: number | null;

  @CreateDateColumn({ type: 'timestamptz' })
  createdAt!: Date;

  @Column({ type: 'timestamptz', nullable: true })
  verifiedAt!: Date | null;
}
