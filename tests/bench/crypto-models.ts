import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Encrypted } from '../../src/crypto/encrypted-column';

/** Two encrypted columns, as a typical app model has (an email and a phone number). */
@Entity('bench_encrypted_rows')
export class EncryptedRow {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Encrypted()
  email!: string;

  @Encrypted()
  phone!: string;

  @Column({ type: 'text' })
  label!: string;
}

/** The same row in plain text: the baseline. */
@Entity('bench_plain_rows')
export class PlainRow {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'text' })
  email!: string;

  @Column({ type: 'text' })
  phone!: string;

  @Column({ type: 'text' })
  label!: string;
}
