import { createHash, createHmac } from 'node:crypto';
import { EntityManager, MoreThan } from 'typeorm';
import type { Clock } from '../clock';
import { AUDIT_OUTCOMES, AuditEvent, AuditJson, AuditMetadata, AuditOutcome } from './audit-event.entity';
import { isUuid } from '../db/uuid';

export interface AuditEventInput {
  /** snake_case, past tense: `sign_in_succeeded`, `grant_added`. */
  readonly action: string;
  readonly outcome: AuditOutcome;
  readonly actorId?: string | null;
  readonly targetType?: string | null;
  readonly targetId?: string | null;
  readonly ipAddress?: string | null;
  readonly userAgent?: string | null;
  readonly requestId?: string | null;
  readonly metadata?: AuditMetadata;
}

/** Every column the hash covers: all but `id` (assigned by the database) and `hash` itself. */
export type AuditChainFields = Omit<AuditEvent, 'id' | 'hash'>;

/**
 * The chain's keys: one HMAC key per data key id (the keyring derives them). Without the key,
 * someone who can write the table can still break the chain, but not write one that verifies.
 */
export interface AuditChainKeys {
  /** The key id new events are chained under. */
  readonly currentKid: string;
  auditChainKey(kid: string): Buffer | undefined;
}

/** A point of the chain: an event's id and hash (what `audit log head` prints for anchoring elsewhere). */
export interface AuditChainPosition {
  readonly id: string;
  readonly hash: string;
}

export interface AuditChainReport {
  readonly ok: boolean;
  /** Rows examined, including the first broken one. */
  readonly checked: number;
  readonly firstBrokenId: string | null;
  /**
   * Asked to find an anchored head: the log still holds it unchanged (`found`), holds another
   * hash at its id (`changed`), lacks it (`missing`: truncated), or retention pruned it (`pruned`:
   * a chained checkpoint says so, and everything after it verified).
   */
  readonly head?: 'found' | 'changed' | 'missing' | 'pruned';
}

/** The `previousHash` of the first row. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * The advisory lock that serialises appends across every instance: "bstaudit" in ASCII, so it is
 * recognisable in pg_locks and cannot collide with a small lock number chosen elsewhere.
 */
export const AUDIT_CHAIN_LOCK_KEY = '7094141799968827764';

const SNAKE_CASE_ACTION = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/;
const SECRET_LOOKING_KEY = /password|token|secret|code|otp|key/i;
/**
 * The append-only, hash-chained security event log. Every state change's audit row is written
 * through `append` in the transaction that makes the change, so both commit or neither does.
 */
export class AuditLog {
  constructor(
    private readonly clock: Clock,
    private readonly keys: AuditChainKeys,
  ) {}

  /**
   * Writes one event in the caller's transaction (`manager` from `dataSource.transaction`). Call it
   * last before commit: the chain lock it takes is held until the transaction ends, so every other
   * append on every instance waits for the rest of this transaction. Given a manager outside a
   * transaction (an event with no state change, such as a failed sign-in), it opens its own.
   */
  async append(manager: EntityManager, input: AuditEventInput): Promise<AuditEvent> {
    const fields = this.chainFieldsOf(input);
    if (manager.queryRunner?.isTransactionActive) return appendLocked(manager, fields, this.keys);
    return manager.transaction((transactionManager) => appendLocked(transactionManager, fields, this.keys));
  }

  /**
   * Retention: deletes the events older than `cutoff` and appends a checkpoint event
   * (`audit_log_pruned`) recording the hash the remaining chain continues from, so verification
   * still covers every row that is left. Call inside a transaction (the maintenance job's).
   */
  async prune(manager: EntityManager, cutoff: Date): Promise<number> {
    if (!manager.queryRunner?.isTransactionActive)
      throw new Error('AuditLog.prune needs a transaction: the deletion and its checkpoint commit together');
    // The chain lock first: no append may slip in between choosing the rows and the checkpoint.
    await manager.query('SELECT pg_advisory_xact_lock($1::bigint)', [AUDIT_CHAIN_LOCK_KEY]);
    // Up to the first event that is not old, by position: an instance with a wrong clock cannot make a recent event look old.
    const [last] = await manager.query<{ id: string; hash: string }[]>(
      `SELECT id::text AS id, hash FROM audit_events
        WHERE id < coalesce((SELECT min(id) FROM audit_events WHERE at >= $1), 9223372036854775807)
        ORDER BY audit_events.id DESC LIMIT 1`,
      [cutoff],
    );
    if (!last) return 0;
    // Everything up to the newest old event, so the chain left is one unbroken run. Through the
    // migration's SECURITY DEFINER function: the server's role may not DELETE audit events itself.
    const [{ rows }] = await manager.query<{ rows: number }[]>('SELECT bastion_prune_audit_events($1, $2) AS rows', [last.id, cutoff]);
    await this.append(manager, {
      action: 'audit_log_pruned',
      outcome: 'success',
      metadata: { prunedThroughId: last.id, continuesFromHash: last.hash, rows, cutoff: cutoff.toISOString() },
    });
    return rows;
  }

  private chainFieldsOf(input: AuditEventInput): Omit<AuditChainFields, 'previousHash'> {
    if (!SNAKE_CASE_ACTION.test(input.action))
      throw new Error(`Audit action "${input.action}" is not snake_case (e.g. "sign_in_succeeded")`);
    if (!AUDIT_OUTCOMES.includes(input.outcome))
      throw new Error(`Audit outcome "${String(input.outcome)}" is not one of ${AUDIT_OUTCOMES.join(', ')}`);
    // PostgreSQL accepts other spellings of a uuid but returns the canonical lower-case one; the hash must see what comes back.
    if (input.actorId != null && !isUuid(input.actorId)) throw new Error(`Audit actorId "${input.actorId}" is not a uuid`);
    const metadata = input.metadata ?? {};
    rejectSecretLookingKeys(metadata, 'metadata');
    return {
      at: this.clock.now(),
      action: input.action,
      outcome: input.outcome,
      actorId: input.actorId?.toLowerCase() ?? null,
      targetType: input.targetType ?? null,
      targetId: input.targetId ?? null,
      ipAddress: input.ipAddress ?? null,
      userAgent: input.userAgent ?? null,
      requestId: input.requestId ?? null,
      // Hash exactly what jsonb will give back: undefined members dropped, Dates as strings.
      metadata: JSON.parse(JSON.stringify(metadata)) as AuditMetadata,
      keyId: this.keys.currentKid,
    };
  }

  /**
   * Chains rows written before the chain was keyed (`key_id` null) under the current key, once:
   * the whole chain is recomputed in id order (the first row keeps what it continues from), then a
   * checkpoint event (`audit_log_rechained`) records the old head and whether the old chain was
   * intact, so re-keying cannot hide an earlier edit. Returns the rows re-chained (0: nothing to do).
   */
  async rechainLegacy(manager: EntityManager): Promise<number> {
    if (!manager.queryRunner?.isTransactionActive) return manager.transaction((inner) => this.rechainLegacy(inner));
    await manager.query('SELECT pg_advisory_xact_lock($1::bigint)', [AUDIT_CHAIN_LOCK_KEY]);
    const [legacy] = await manager.query<unknown[]>('SELECT 1 FROM audit_events WHERE key_id IS NULL LIMIT 1');
    if (!legacy) return 0;
    const before = await verifyAuditChain(manager, this.keys, { acceptLegacy: true });
    const [oldHead] = await manager.query<AuditChainPosition[]>(
      'SELECT id::text AS id, hash FROM audit_events ORDER BY audit_events.id DESC LIMIT 1',
    );
    let rows = 0;
    let previousHash: string | undefined;
    for await (const row of eventsInOrder(manager, '0')) {
      const event = Object.assign(row, { previousHash: previousHash ?? row.previousHash, keyId: this.keys.currentKid });
      event.hash = keyedHash(event, this.keys) as string;
      await manager.query('UPDATE audit_events SET previous_hash = $2, key_id = $3, hash = $4 WHERE id = $1', [
        event.id,
        event.previousHash,
        event.keyId,
        event.hash,
      ]);
      previousHash = event.hash;
      rows += 1;
    }
    await this.append(manager, {
      action: 'audit_log_rechained',
      outcome: before.ok ? 'success' : 'failure',
      metadata: {
        rows,
        kid: this.keys.currentKid,
        oldHeadId: oldHead.id,
        oldHeadHash: oldHead.hash,
        oldChainBrokenAt: before.firstBrokenId,
      },
    });
    return rows;
  }
}

async function appendLocked(
  manager: EntityManager,
  fields: Omit<AuditChainFields, 'previousHash'>,
  keys: AuditChainKeys,
): Promise<AuditEvent> {
  const [{ isolation }] = await manager.query<{ isolation: string }[]>(
    "SELECT pg_advisory_xact_lock($1::bigint) AS locked, current_setting('transaction_isolation') AS isolation",
    [AUDIT_CHAIN_LOCK_KEY],
  );
  // A repeatable-read snapshot predates the lock, so it could miss the last append and fork the chain.
  if (isolation !== 'read committed') throw new Error(`AuditLog.append needs a READ COMMITTED transaction, not ${isolation.toUpperCase()}`);

  // Plain SQL rather than repository.save: the lock is held from here to commit, so every append on
  // every instance waits for this, and save's bookkeeping cost more than the queries themselves.
  const [last] = await manager.query<{ hash: string }[]>('SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1');
  const event = Object.assign(new AuditEvent(), fields, { previousHash: last?.hash ?? GENESIS_HASH });
  const hash = keyedHash(event, keys);
  if (hash === null) throw new Error(`The keyring has no key "${event.keyId}" to chain the audit log with`);
  event.hash = hash;
  const [{ id }] = await manager.query<{ id: string }[]>(
    `INSERT INTO audit_events (at, action, outcome, actor_id, target_type, target_id, ip_address, user_agent, request_id, metadata, previous_hash, key_id, hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13) RETURNING id::text AS id`,
    [
      event.at,
      event.action,
      event.outcome,
      event.actorId,
      event.targetType,
      event.targetId,
      event.ipAddress,
      event.userAgent,
      event.requestId,
      JSON.stringify(event.metadata),
      event.previousHash,
      event.keyId,
      event.hash,
    ],
  );
  event.id = id;
  return event;
}

/**
 * The one serialisation the hash is taken over: JSON of every chained column under sorted keys
 * (nested metadata keys too, since jsonb reorders them), `at` as an ISO-8601 UTC string. A row
 * from before the chain was keyed has no `keyId` member, so its old SHA-256 can still be checked.
 */
export function canonicalAuditPayload(event: AuditChainFields): string {
  const payload: { [column in keyof AuditChainFields]?: AuditJson } = {
    at: event.at.toISOString(),
    action: event.action,
    outcome: event.outcome,
    actorId: event.actorId,
    targetType: event.targetType,
    targetId: event.targetId,
    ipAddress: event.ipAddress,
    userAgent: event.userAgent,
    requestId: event.requestId,
    metadata: event.metadata,
    previousHash: event.previousHash,
  };
  if (event.keyId !== null) payload.keyId = event.keyId;
  return canonicalJson(payload);
}

/** The hash a row must carry: HMAC-SHA-256 under the chain key of its `keyId`; null without a key id or its key. */
export function auditEventHash(event: AuditChainFields, keys: AuditChainKeys): string | null {
  return keyedHash(event, keys);
}

/** The plain SHA-256 rows carried before the chain was keyed (checked only while re-chaining them). */
function legacyHash(event: AuditChainFields): string {
  return createHash('sha256').update(canonicalAuditPayload(event), 'utf8').digest('hex');
}

function keyedHash(event: AuditChainFields, keys: AuditChainKeys): string | null {
  const key = event.keyId === null ? undefined : keys.auditChainKey(event.keyId);
  return key ? createHmac('sha256', key).update(canonicalAuditPayload(event), 'utf8').digest('hex') : null;
}

function canonicalJson(value: AuditJson): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const members = Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`);
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The log is append-only and kept for years: a secret written there could never be taken back. */
function rejectSecretLookingKeys(value: unknown, path: string): void {
  if (Array.isArray(value)) {
    value.forEach((item, index) => rejectSecretLookingKeys(item, `${path}[${index}]`));
    return;
  }
  if (value === null || typeof value !== 'object') return;
  for (const [key, item] of Object.entries(value)) {
    if (SECRET_LOOKING_KEY.test(key)) {
      throw new Error(
        `Audit ${path} key "${key}" looks like a secret (password, token, secret, code, otp, key): secrets must never enter the audit log`,
      );
    }
    rejectSecretLookingKeys(item, `${path}.${key}`);
  }
}

/**
 * The hash the first remaining row must link to: the genesis, or what the newest pruning
 * checkpoint recorded, if the first row is exactly where that pruning left off (after its
 * boundary, and not older than its cutoff).
 */
async function startOfChain(manager: EntityManager): Promise<string> {
  const [first] = await manager.query<{ id: string; at: Date; previous_hash: string }[]>(
    // By the bigint column, not the text alias (ORDER BY prefers an output name): as text, "9" sorts after "10".
    'SELECT id::text AS id, at, previous_hash FROM audit_events ORDER BY audit_events.id ASC LIMIT 1',
  );
  if (!first || first.previous_hash === GENESIS_HASH) return GENESIS_HASH;
  const [checkpoint] = await manager.query<{ metadata: { continuesFromHash?: string; prunedThroughId?: string; cutoff?: string } }[]>(
    "SELECT metadata FROM audit_events WHERE action = 'audit_log_pruned' ORDER BY id DESC LIMIT 1",
  );
  const recorded = checkpoint?.metadata;
  const fits =
    recorded !== undefined &&
    recorded.continuesFromHash === first.previous_hash &&
    BigInt(recorded.prunedThroughId ?? '0') < BigInt(first.id) &&
    new Date(first.at).getTime() >= Date.parse(recorded.cutoff ?? '');
  return fits ? first.previous_hash : GENESIS_HASH;
}

/** The newest event: the position to anchor elsewhere (`bastion audit log head`). Null for an empty log. */
export async function auditChainHead(manager: EntityManager): Promise<(AuditChainPosition & { at: Date }) | null> {
  const [head] = await manager.query<(AuditChainPosition & { at: Date })[]>(
    'SELECT id::text AS id, hash, at FROM audit_events ORDER BY audit_events.id DESC LIMIT 1',
  );
  return head ?? null;
}

export interface VerifyOptions {
  readonly batchSize?: number;
  /** An anchored head (`id:hash`): the report says whether the log still holds it unchanged. */
  readonly head?: AuditChainPosition;
  /** Accept rows from before the chain was keyed (only while re-chaining them). */
  readonly acceptLegacy?: boolean;
}

/**
 * Recomputes every row's keyed hash and checks each links to the row before it, in id order and
 * in batches (the table only grows, so rows appended meanwhile are simply checked too). Stops at
 * the first broken row: after an edit that is the edited row; after a deletion, the row that
 * followed. A row whose key the keyring no longer has counts as broken. Removing rows from the
 * end cannot be seen from the chain alone: anchor the head elsewhere and pass it as `head`. After
 * retention pruned the oldest rows, the first row left must continue from the hash an
 * `audit_log_pruned` checkpoint recorded (that checkpoint is itself a chained row, checked in its turn).
 */
export async function verifyAuditChain(
  manager: EntityManager,
  keys: AuditChainKeys,
  options: VerifyOptions = {},
): Promise<AuditChainReport> {
  const walked = await walkChain(manager, keys, { afterId: '0', previousHash: await startOfChain(manager) }, options);
  const report = walked.report;
  if (!options.head) return report;
  const head = walked.head ?? (await headBeforeChain(manager, options.head));
  return { ...report, ok: report.ok && (head === 'found' || head === 'pruned'), head };
}

/**
 * Verifies only what was appended after `from`, a position an earlier verification reached (the
 * self-audit's, recorded): `from` must still be in the log with the same hash. Returns where this
 * verification reached, to record for the next one. A `from` that retention has since pruned
 * starts over from the beginning.
 */
export async function verifyAuditChainSince(
  manager: EntityManager,
  keys: AuditChainKeys,
  from: AuditChainPosition | null,
  options: { batchSize?: number } = {},
): Promise<{ report: AuditChainReport; reached: AuditChainPosition | null }> {
  let start = { afterId: '0', previousHash: await startOfChain(manager) };
  if (from) {
    const [row] = await manager.query<{ hash: string }[]>('SELECT hash FROM audit_events WHERE id = $1', [from.id]);
    if (row && row.hash !== from.hash) return { report: { ok: false, checked: 1, firstBrokenId: from.id }, reached: null };
    const [first] = await manager.query<{ id: string }[]>('SELECT min(id)::text AS id FROM audit_events');
    const pruned = first.id !== null && BigInt(first.id) > BigInt(from.id);
    if (!row && !pruned) return { report: { ok: false, checked: 0, firstBrokenId: from.id }, reached: null };
    if (row) start = { afterId: from.id, previousHash: from.hash };
  }
  const walked = await walkChain(manager, keys, start, options);
  return { report: walked.report, reached: walked.report.ok ? (walked.last ?? from) : null };
}

async function walkChain(
  manager: EntityManager,
  keys: AuditChainKeys,
  start: { afterId: string; previousHash: string },
  options: VerifyOptions,
): Promise<{ report: AuditChainReport; last: AuditChainPosition | null; head?: 'found' | 'changed' }> {
  let expectedPreviousHash = start.previousHash;
  let checked = 0;
  let last: AuditChainPosition | null = null;
  let head: 'found' | 'changed' | undefined;
  for await (const row of eventsInOrder(manager, start.afterId, options.batchSize)) {
    checked += 1;
    const expected = row.keyId === null && options.acceptLegacy ? legacyHash(row) : keyedHash(row, keys);
    if (row.previousHash !== expectedPreviousHash || expected === null || expected !== row.hash)
      return { report: { ok: false, checked, firstBrokenId: row.id }, last, head };
    if (options.head?.id === row.id) head = row.hash === options.head.hash ? 'found' : 'changed';
    expectedPreviousHash = row.hash;
    last = { id: row.id, hash: row.hash };
  }
  return { report: { ok: true, checked, firstBrokenId: null }, last, head };
}

/** An anchored head the walk did not meet: before the first row left (pruned by retention) or gone. */
async function headBeforeChain(manager: EntityManager, head: AuditChainPosition): Promise<'pruned' | 'missing'> {
  const [checkpoint] = await manager.query<{ metadata: { prunedThroughId?: string } }[]>(
    "SELECT metadata FROM audit_events WHERE action = 'audit_log_pruned' ORDER BY id DESC LIMIT 1",
  );
  const prunedThrough = checkpoint?.metadata.prunedThroughId;
  return prunedThrough !== undefined && /^\d+$/.test(head.id) && BigInt(head.id) <= BigInt(prunedThrough) ? 'pruned' : 'missing';
}

/** Every event after `afterId`, oldest first, read in batches so memory stays flat. */
async function* eventsInOrder(manager: EntityManager, afterId: string, batchSize = 1000): AsyncGenerator<AuditEvent> {
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`verifyAuditChain batchSize must be a positive integer, not ${batchSize}`);
  const repository = manager.getRepository(AuditEvent);
  for (;;) {
    const batch = await repository.find({ where: { id: MoreThan(afterId) }, order: { id: 'ASC' }, take: batchSize });
    yield* batch;
    if (batch.length < batchSize) return;
    afterId = batch[batch.length - 1].id;
  }
}
