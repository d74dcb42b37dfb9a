import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

export type AuditOutcome = 'success' | 'failure' | 'denied';

export const AUDIT_OUTCOMES: readonly AuditOutcome[] = ['success', 'failure', 'denied'];

/** What jsonb stores and gives back unchanged; anything else would not survive the round trip the hash relies on. */
export type AuditJson = string | number | boolean | null | AuditJson[] | { [key: string]: AuditJson };

export type AuditMetadata = { [key: string]: AuditJson };

/**
 * One security event. Append-only and chained: each row holds the keyed hash of the row before it,
 * so an edit or a deletion anywhere breaks the chain at that point, and only the key holder can
 * write a chain that verifies (see audit-log.ts).
 */
@Entity('audit_events')
@Index(['at'])
@Index(['action'])
export class AuditEvent {
  /** bigint, so a string: event counts outgrow a JavaScript number's exact integers long before bigint. */
  @PrimaryGeneratedColumn('identity', { type: 'bigint' })
  id!: string;

  @Column({ type: 'timestamptz' })
  at!: Date;

  /** snake_case, past tense: `sign_in_succeeded`, `recovery_code_used`. */
  @Column({ type: 'text' })
  action!: string;

  @Column({ type: 'text' })
  outcome!: AuditOutcome;

  @Column({ type: 'uuid', nullable: true })
  actorId!: string | null;

  @Column({ type: 'text', nullable: true })
  targetType!: string | null;

  @Column({ type: 'text', nullable: true })
  targetId!: string | null;

  @Column({ type: 'text', nullable: true })
  ipAddress!: string | null;

  @Column({ type: 'text', nullable: true })
  userAgent!: string | null;

  @Column({ type: 'text', nullable: true })
  requestId!: string | null;

  @Column({ type: 'jsonb' })
  metadata!: AuditMetadata;

  /** The `hash` of the row before this one; 64 zeros for the first row. */
  @Column({ type: 'text' })
  previousHash!: string;

  /** The data key id whose audit-chain key made `hash`; null only on rows written before the chain was keyed. */
  @Column({ type: 'text', nullable: true })
  keyId!: string | null;

  /** HMAC-SHA-256 (hex), under the key `keyId` names, of `canonicalAuditPayload(this)`, which covers `previousHash` and `keyId`. */
  @Column({ type: 'text' })
  hash!: string;
}
