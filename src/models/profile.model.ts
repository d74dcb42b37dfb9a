import { IsISO8601, IsUrl, Length, Matches, MaxLength } from 'class-validator';
import { Field, ID, ObjectType } from 'type-graphql';
import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { Encrypted } from '../crypto/encrypted-column';
import { defineModel } from '../data/define-model';

/** A user's public face in the app: one per account. Phone and birth date are encrypted and private. */
@ObjectType({
  description: "A user's profile (one per account). Name, bio and avatar are public; phone and birth date only for the owner and admins.",
})
@Entity('profiles')
export class Profile {
  @Field(() => ID, { description: 'Stable identifier.' })
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Field(() => ID, { nullable: true, description: 'The account it belongs to (User.id).' })
  @Index({ unique: true })
  @Column({ type: 'uuid' })
  userId!: string;

  @Field({ nullable: true, description: 'Name shown to others, 1–50 characters.' })
  @Length(1, 50)
  @Column({ type: 'text' })
  displayName!: string;

  @Field(() => String, { nullable: true, description: 'A few words about the user, up to 500 characters.' })
  @MaxLength(500)
  @Column({ type: 'text', nullable: true })
  bio!: string | null;

  @Field(() => String, { nullable: true, description: 'https URL of the avatar image.' })
  @IsUrl({ protocols: ['https'], require_protocol: true })
  @MaxLength(2000)
  @Column({ type: 'text', nullable: true })
  avatarUrl!: string | null;

  @Field(() => String, {
    nullable: true,
    description: 'Phone number in E.164 form (+447700900123). Encrypted at rest; filterable by exact value, only where you may read it.',
  })
  @Matches(/^\+[1-9]\d{6,14}$/, { message: 'must be in E.164 form, e.g. +447700900123' })
  @Encrypted({ nullable: true, blindIndex: {} })
  phone!: string | null;

  /** Blind index of `phone`, kept in step automatically. */
  phoneIndex!: string | null;

  @Field(() => String, { nullable: true, description: 'Birth date, YYYY-MM-DD. Encrypted at rest.' })
  @IsISO8601({ strict: true, strictSeparator: true })
  @Length(10, 10, { message: 'must be a date in YYYY-MM-DD form' })
  @Encrypted({ nullable: true })
  birthDate!: string | null;

  @Field({ nullable: true, description: 'When it was created.' })
  @CreateDateColumn({ type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @Field({ nullable: true, description: 'When it last changed.' })
  @UpdateDateColumn({ type: 'timestamptz', precision: 3 })
  updatedAt!: Date;
}

const PUBLIC_FIELDS = ['id', 'userId', 'displayName', 'bio', 'avatarUrl', 'avatar', 'createdAt', 'updatedAt'];

export const profileModel = defineModel(Profile, {
  owner: 'userId',
  writable: ['displayName', 'bio', 'avatarUrl', 'phone', 'birthDate'],
  filterable: ['userId', 'displayName', 'phone'],
  sortable: ['createdAt', 'displayName'],
  files: {
    avatar: {
      description:
        'The profile picture, public like the name: JPEG, PNG or WebP up to 5 MB, re-encoded without its metadata (GPS included).',
      maxBytes: 5 * 1024 * 1024,
      types: ['image/jpeg', 'image/png', 'image/webp'],
      variants: ['THUMB_256'],
    },
  },
  defaults: [
    { role: 'anonymous', action: 'read', scope: 'all', fields: PUBLIC_FIELDS },
    { role: 'user', action: 'read', scope: 'own' },
    { role: 'user', action: 'create', scope: 'own' },
    { role: 'user', action: 'update', scope: 'own' },
    { role: 'user', action: 'delete', scope: 'own' },
    { role: 'admin', action: 'read', scope: 'all' },
    { role: 'admin', action: 'delete', scope: 'all' },
  ],
});
