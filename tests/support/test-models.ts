import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Encrypted } from '../../src/crypto/encrypted-column';

/** A test-only model with every kind of encrypted column. */
@Entity('secret_notes')
export class SecretNote {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Encrypted({ blindIndex: { normalize: 'email', unique: true } })
  email!: string;

  /** Set automatically from `email`. */
  emailIndex!: string;

  @Encrypted({ nullable: true })
  phone!: string | null;

  @Encrypted({ kind: 'json', nullable: true })
  profile!: { city: string; tags: string[] } | null;

  @Column({ type: 'text' })
  label!: string;
}
