import { Field, ID, ObjectType, registerEnumType } from 'type-graphql';
import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { Encrypted } from '../crypto/encrypted-column';

export enum UserStatus {
  ACTIVE = 'active',
  SUSPENDED = 'suspended',
}

registerEnumType(UserStatus, {
  name: 'UserStatus',
  description: 'Whether the account may sign in.',
  valuesConfig: {
    ACTIVE: { description: 'Normal: the account can sign in and use its sessions.' },
    SUSPENDED: { description: 'Suspended by an admin: every session ended, sign-in and refresh are refused until reactivated.' },
  },
});

@ObjectType({ description: 'An account. Only its owner (and admins) can read it.' })
@Entity('users')
export class User {
  @Field(() => ID, { description: 'Stable identifier (UUID). Identify users by this, never by email.' })
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Field({ description: 'Email address, as the user typed it at sign-up. Stored encrypted.' })
  @Encrypted({ blindIndex: { normalize: 'email', unique: true } })
  email!: string;

  /** Blind index of `email`, kept in step automatically; lookups go through it. */
  emailIndex!: string;

  @Column({ type: 'timestamptz', nullable: true })
  emailVerifiedAt!: Date | null;

  /** argon2id PHC string; never leaves the server. */
  @Column({ type: 'text' })
  passwordHash!: string;

  @Field(() => UserStatus, { description: 'ACTIVE, or SUSPENDED by an admin (setUserStatus).' })
  @Column({ type: 'text', default: UserStatus.ACTIVE })
  status!: UserStatus;

  @Field({ description: 'When the account was created.' })
  @CreateDateColumn({ type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ type: 'timestamptz' })
  updatedAt!: Date;

  @Field({ description: 'Whether the user proved they own the email address.' })
  get emailVerified(): boolean {
    return this.emailVerifiedAt !== null;
  }
}
