import { Check, Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { Encrypted } from '../crypto/encrypted-column';

/** next: published, not yet signing; current: signing; retiring: published until its tokens expire. */
export type SigningKeyStatus = 'next' | 'current' | 'retiring' | 'retired';

/** The only signing algorithm: Ed25519 (docs/security.md#tok-1; ASVS 5.0 Appendix C disallows RS256). */
export type SigningAlgorithm = 'EdDSA';

/** What may be published in the JWKS for a key; nothing else ever leaves the database. */
export interface PublicSigningJwk {
  readonly kty: 'OKP';
  readonly crv: 'Ed25519';
  readonly x: string;
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly use: 'sig';
}

export interface PrivateSigningJwk {
  readonly kty: 'OKP';
  readonly crv: 'Ed25519';
  readonly x: string;
  readonly d: string;
}

/**
 * An access-token signing key. Lifecycle: 'current' (signs and verifies) → 'retiring' (verifies
 * only, still published, until every token it signed has expired) → 'retired' (neither).
 */
@Entity('signing_keys')
// The advisory lock in SigningKeysService serialises writers; this index makes two current keys
// impossible even for a writer that forgets the lock.
@Index('signing_keys_one_current', ['status'], { unique: true, where: "status = 'current'" })
@Index('signing_keys_one_next', ['status'], { unique: true, where: "status = 'next'" })
@Check('signing_keys_status_valid', "status IN ('next', 'current', 'retiring', 'retired')")
export class SigningKey {
  /** Random, and only ever used to select from our own key set (never in SQL text or a path: docs/security.md#tok-2). */
  @PrimaryColumn({ type: 'text' })
  kid!: string;

  @Column({ type: 'text' })
  algorithm!: SigningAlgorithm;

  @Column({ type: 'jsonb' })
  publicJwk!: PublicSigningJwk;

  /** Encrypted at rest: anyone holding it can mint tokens for any user. */
  @Encrypted({ kind: 'json' })
  privateJwk!: PrivateSigningJwk;

  @Column({ type: 'text' })
  status!: SigningKeyStatus;

  @Column({ type: 'timestamptz' })
  createdAt!: Date;

  @Column({ type: 'timestamptz', nullable: true })
  retiringSince!: Date | null;

  @Column({ type: 'timestamptz', nullable: true })
  retiredAt!: Date | null;
}
