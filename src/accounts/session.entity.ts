import { Field, ID, Int, ObjectType } from 'type-graphql';
import { Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { User } from './user.entity';

/** Authentication methods a session was proven with (RFC 8176 names). */
export type AuthenticationMethod = 'pwd' | 'totp' | 'recovery_code';

@ObjectType({ description: 'One signed-in device. Ending it signs that device out at its next request.' })
@Entity('sessions')
@Index(['userId', 'revokedAt'])
export class Session {
  @Field(() => ID, { description: 'Session id; pass it to revokeSession (an admin: to adminRevokeSessions).' })
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'uuid' })
  userId!: string;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id' })
  user?: User;

  @Field(() => Int, { description: 'Authentication assurance level: 1 password, 2 password and second factor.' })
  @Column({ type: 'smallint' })
  aal!: 1 | 2;

  @Column({ type: 'text', array: true })
  amr!: AuthenticationMethod[];

  @Field({ description: 'When the device signed in.' })
  @CreateDateColumn({ type: 'timestamptz' })
  createdAt!: Date;

  @Field({ description: 'When the device last refreshed its tokens.' })
  @Column({ type: 'timestamptz' })
  lastUsedAt!: Date;

  /** Refreshing never moves this: the session's hard end. */
  @Column({ type: 'timestamptz' })
  absoluteExpiresAt!: Date;

  @Field(() => String, { nullable: true, description: 'Network address the session signed in from.' })
  @Column({ type: 'text', nullable: true })
  ipAddress!: string | null;

  @Field(() => String, { nullable: true, description: "The device's User-Agent at sign-in." })
  @Column({ type: 'text', nullable: true })
  userAgent!: string | null;

  @Column({ type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;

  /** Why it ended: sign_out, sign_out_everywhere, revoked, password_changed, refresh_token_reused, … */
  @Column({ type: 'text', nullable: true })
  revokedReason!: string | null;
}
