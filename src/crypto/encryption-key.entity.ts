import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * Every key id that has ever encrypted data here, and whether rows may still use it. Startup
 * refuses a keyring that lacks a key still in use: its rows would become unreadable.
 */
@Entity('encryption_keys')
export class EncryptionKeyRecord {
  @PrimaryColumn({ type: 'text' })
  kid!: string;

  @Column({ type: 'timestamptz' })
  firstUsedAt!: Date;

  /** Set when `bastion keys reencrypt` found no row left on this key, or by `keys forget --force`. */
  @Column({ type: 'timestamptz', nullable: true })
  retiredAt!: Date | null;
}
