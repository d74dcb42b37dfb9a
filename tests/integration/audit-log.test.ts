import { appTables } from '../support/test-tables';
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { AuditEvent } from '../../src/audit/audit-event.entity';
import {
  AuditEventInput,
  AuditLog,
  GENESIS_HASH,
  auditChainHead,
  auditEventHash,
  canonicalAuditPayload,
  verifyAuditChain,
  verifyAuditChainSince,
} from '../../src/audit/audit-log';
import { FrozenClock } from '../../src/clock';
import { createDataSource } from '../../src/db/data-source';
import { TestDatabase, createTestDatabase } from '../support/test-database';
import { testKeyring } from '../support/test-keys';

const repeat64 = (character: string) => character.repeat(64);

describe('the audit log on real PostgreSQL', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  const clock = new FrozenClock('2026-03-01T09:00:00.000Z');
  const keyring = testKeyring();
  const audit = new AuditLog(clock, keyring);
  const events = () => dataSource.getRepository(AuditEvent);
  const signIn = (overrides: Partial<AuditEventInput> = {}): AuditEventInput => ({
    action: 'sign_in_succeeded',
    outcome: 'success',
    actorId: randomUUID(),
    ipAddress: '203.0.113.7',
    userAgent: 'BastionTestApp/1.0',
    requestId: randomUUID(),
    metadata: { method: 'password' },
    ...overrides,
  });
  const appendInTransaction = (input: AuditEventInput) => dataSource.transaction((manager) => audit.append(manager, input));
  const appendThree = async () => [
    await appendInTransaction(signIn()),
    await appendInTransaction(signIn({ action: 'mfa_challenge_failed', outcome: 'failure' })),
    await appendInTransaction(signIn({ action: 'grant_added', targetType: 'Role', targetId: 'editor' })),
  ];

  beforeAll(async () => {
    database = await createTestDatabase();
    dataSource = createDataSource({ url: database.url, poolSize: 10, ...appTables(AuditEvent) });
    await dataSource.initialize();
    await dataSource.synchronize(); // audit_events is not in a migration yet
  });
  afterAll(async () => {
    await dataSource.destroy();
    await database.drop();
  });
  beforeEach(async () => {
    await dataSource.query('TRUNCATE audit_events RESTART IDENTITY');
  });

  it('writes nothing when the caller’s transaction rolls back', async () => {
    let seenInside = 0;
    const attempt = dataSource.transaction(async (manager) => {
      await audit.append(manager, signIn({ action: 'password_changed' }));
      seenInside = await manager.count(AuditEvent);
      throw new Error('the state change failed');
    });
    await expect(attempt).rejects.toThrow('the state change failed');
    expect(seenInside).toBe(1);
    expect(await events().count()).toBe(0);
  });

  it('chains three events from the genesis hash, and they verify', async () => {
    const [first, second, third] = await appendThree();
    expect(first.previousHash).toBe(GENESIS_HASH);
    expect(second.previousHash).toBe(first.hash);
    expect(third.previousHash).toBe(second.hash);

    const stored = await events().find({ order: { id: 'ASC' } });
    expect(stored.map((row) => row.id)).toEqual([first.id, second.id, third.id]);
    for (const row of stored) expect(auditEventHash(row, keyring)).toBe(row.hash);
    expect(stored[1]).toMatchObject({ action: 'mfa_challenge_failed', outcome: 'failure', metadata: { method: 'password' } });

    for (const batchSize of [1, 2, 3, 1000])
      expect(await verifyAuditChain(dataSource.manager, keyring, { batchSize })).toEqual({ ok: true, checked: 3, firstBrokenId: null });
  });

  it('verifies an empty log', async () => {
    expect(await verifyAuditChain(dataSource.manager, keyring)).toEqual({ ok: true, checked: 0, firstBrokenId: null });
  });

  it.each([
    ['metadata', `metadata = '{"method": "recovery_code"}'`],
    ['action', `action = 'sign_in_failed'`],
    ['outcome', `outcome = 'denied'`],
    ['at', `at = at + interval '1 second'`],
    ['actor_id', `actor_id = '${randomUUID()}'`],
    ['target_type', `target_type = 'User'`],
    ['target_id', `target_id = 'someone-else'`],
    ['ip_address', `ip_address = '198.51.100.1'`],
    ['user_agent', `user_agent = 'curl/8.0'`],
    ['request_id', `request_id = NULL`],
    ['previous_hash', `previous_hash = repeat('f', 64)`],
    ['hash', `hash = repeat('e', 64)`],
    ['key_id', `key_id = 'k2'`],
  ])('names the edited row when %s is changed with raw SQL', async (_column, assignment) => {
    const [, middle] = await appendThree();
    await dataSource.query(`UPDATE audit_events SET ${assignment} WHERE id = $1`, [middle.id]);
    expect(await verifyAuditChain(dataSource.manager, keyring, { batchSize: 2 })).toEqual({
      ok: false,
      checked: 2,
      firstBrokenId: middle.id,
    });
  });

  it('names the row after a deleted one', async () => {
    const [, middle, last] = await appendThree();
    await dataSource.query('DELETE FROM audit_events WHERE id = $1', [middle.id]);
    expect(await verifyAuditChain(dataSource.manager, keyring)).toEqual({ ok: false, checked: 2, firstBrokenId: last.id });
  });

  it('names an inserted row, even one that links to its predecessor', async () => {
    const [, , last] = await appendThree();
    const forged = { ...last, metadata: { method: 'forged' }, previousHash: last.hash, hash: repeat64('a') };
    const [{ id }] = await dataSource.query(
      `INSERT INTO audit_events (at, action, outcome, actor_id, target_type, target_id, ip_address, user_agent, request_id, metadata, previous_hash, hash)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12) RETURNING id::text AS id`,
      [
        forged.at,
        forged.action,
        forged.outcome,
        forged.actorId,
        forged.targetType,
        forged.targetId,
        forged.ipAddress,
        forged.userAgent,
        forged.requestId,
        JSON.stringify(forged.metadata),
        forged.previousHash,
        forged.hash,
      ],
    );
    expect(await verifyAuditChain(dataSource.manager, keyring)).toEqual({ ok: false, checked: 4, firstBrokenId: id });
  });

  it('names the first of two rows whose contents were swapped (a reordering)', async () => {
    const [first, second] = await appendThree();
    await dataSource.query(
      `UPDATE audit_events AS target SET action = source.action, outcome = source.outcome, metadata = source.metadata
         FROM audit_events AS source WHERE (target.id, source.id) IN (($1::bigint, $2::bigint), ($2::bigint, $1::bigint))`,
      [first.id, second.id],
    );
    expect(await verifyAuditChain(dataSource.manager, keyring)).toEqual({ ok: false, checked: 1, firstBrokenId: first.id });
  });

  it('names the first row when it is deleted', async () => {
    const [first, second] = await appendThree();
    await dataSource.query('DELETE FROM audit_events WHERE id = $1', [first.id]);
    expect(await verifyAuditChain(dataSource.manager, keyring)).toEqual({ ok: false, checked: 1, firstBrokenId: second.id });
  });

  it('never forks the chain under 20 concurrent appends, each in its own transaction', async () => {
    await Promise.all(Array.from({ length: 20 }, (_, index) => appendInTransaction(signIn({ metadata: { writer: index } }))));
    expect(await events().count()).toBe(20);
    const [{ distinct }] = await dataSource.query('SELECT count(DISTINCT previous_hash)::int AS distinct FROM audit_events');
    expect(distinct).toBe(20);
    expect(await verifyAuditChain(dataSource.manager, keyring, { batchSize: 7 })).toEqual({ ok: true, checked: 20, firstBrokenId: null });
  });

  it.each(['password', 'newPassword', 'accessToken', 'clientSecret', 'recoveryCode', 'OTP', 'apiKey'])(
    'refuses a metadata key that looks like a secret: %s',
    async (key) => {
      await expect(appendInTransaction(signIn({ metadata: { [key]: 'hunter2' } }))).rejects.toThrow(`"${key}"`);
      expect(await events().count()).toBe(0);
    },
  );

  it('refuses a secret-looking key nested inside metadata', async () => {
    await expect(appendInTransaction(signIn({ metadata: { request: { headers: [{ refresh_token: 'x' }] } } }))).rejects.toThrow(
      /metadata\.request\.headers\[0\] key "refresh_token" looks like a secret/,
    );
  });

  it('refuses an action that is not snake_case, and an actor that is not a uuid', async () => {
    await expect(appendInTransaction(signIn({ action: 'SignInSucceeded' }))).rejects.toThrow(/not snake_case/);
    await expect(appendInTransaction(signIn({ actorId: 'user-1' }))).rejects.toThrow(/not a uuid/);
    expect(await events().count()).toBe(0);
  });

  it('takes its timestamps from the injected clock', async () => {
    clock.set('2026-03-01T09:00:00.000Z');
    const first = await appendInTransaction(signIn());
    clock.advance(1_500);
    const second = await appendInTransaction(signIn());
    const stored = await events().find({ order: { id: 'ASC' } });
    expect(stored.map((row) => row.at.toISOString())).toEqual(['2026-03-01T09:00:00.000Z', '2026-03-01T09:00:01.500Z']);
    expect([first.at, second.at].map((at) => at.toISOString())).toEqual(['2026-03-01T09:00:00.000Z', '2026-03-01T09:00:01.500Z']);
  });

  it('hashes what PostgreSQL gives back: jsonb key order, dropped undefined members, an upper-case uuid', async () => {
    const actorId = randomUUID().toUpperCase();
    await appendInTransaction(
      signIn({
        actorId,
        metadata: {
          zeta: 1,
          alpha: { b: 0.1, a: [3, 'x', null, { y: true, x: false }] },
          a_much_longer_name: 'é',
          skipped: undefined as unknown as null,
        },
      }),
    );
    const [row] = await events().find();
    expect(row.actorId).toBe(actorId.toLowerCase());
    expect(row.metadata).toEqual({ zeta: 1, alpha: { b: 0.1, a: [3, 'x', null, { y: true, x: false }] }, a_much_longer_name: 'é' });
    expect(await verifyAuditChain(dataSource.manager, keyring)).toEqual({ ok: true, checked: 1, firstBrokenId: null });
  });

  it('serialises one canonical payload: sorted keys, every chained column, no id or hash', () => {
    const payload = canonicalAuditPayload({
      at: new Date('2026-03-01T09:00:00Z'),
      action: 'grant_added',
      outcome: 'success',
      actorId: null,
      targetType: 'Role',
      targetId: 'editor',
      ipAddress: null,
      userAgent: null,
      requestId: 'r1',
      metadata: { b: 1, a: { d: 2, c: 3 } },
      previousHash: GENESIS_HASH,
      keyId: null,
    });
    expect(payload).toBe(
      '{"action":"grant_added","actorId":null,"at":"2026-03-01T09:00:00.000Z","ipAddress":null,"metadata":{"a":{"c":3,"d":2},"b":1},' +
        `"outcome":"success","previousHash":"${GENESIS_HASH}","requestId":"r1","targetId":"editor","targetType":"Role","userAgent":null}`,
    );
  });

  it('opens its own transaction when given a manager outside one', async () => {
    await audit.append(dataSource.manager, signIn({ action: 'sign_in_failed', outcome: 'failure', actorId: null }));
    await appendInTransaction(signIn());
    expect(await verifyAuditChain(dataSource.manager, keyring)).toEqual({ ok: true, checked: 2, firstBrokenId: null });
  });

  it('refuses a REPEATABLE READ transaction, whose snapshot could miss the last append', async () => {
    const attempt = dataSource.transaction('REPEATABLE READ', (manager: EntityManager) => audit.append(manager, signIn()));
    await expect(attempt).rejects.toThrow(/READ COMMITTED/);
    expect(await events().count()).toBe(0);
  });

  describe('the keyed chain', () => {
    /** Rewrites rows from `fromId` on as someone with write access but no key would: a valid-looking chain by `hashOf`. */
    const rechainByHand = async (fromId: string, hashOf: (payload: string) => string, keyId: string | null) => {
      const rows = await events().find({ order: { id: 'ASC' } });
      let previousHash = GENESIS_HASH;
      for (const row of rows) {
        if (BigInt(row.id) >= BigInt(fromId)) {
          const hash = hashOf(canonicalAuditPayload({ ...row, previousHash, keyId }));
          await dataSource.query('UPDATE audit_events SET previous_hash = $2, key_id = $3, hash = $4 WHERE id = $1', [
            row.id,
            previousHash,
            keyId,
            hash,
          ]);
          previousHash = hash;
        } else previousHash = row.hash;
      }
    };
    const sha256 = (payload: string) => createHash('sha256').update(payload).digest('hex');
    const hmacUnder = (key: Buffer) => (payload: string) => createHmac('sha256', key).update(payload).digest('hex');

    it('hashes with HMAC-SHA-256 under the current key id, not a plain SHA-256', async () => {
      const [first] = await appendThree();
      expect(first.keyId).toBe('k1');
      expect(first.hash).toBe(hmacUnder(keyring.auditChainKey('k1') as Buffer)(canonicalAuditPayload(first)));
      expect(first.hash).not.toBe(sha256(canonicalAuditPayload(first)));
      expect(canonicalAuditPayload(first)).toContain('"keyId":"k1"');
    });

    it.each([
      ['a plain SHA-256 chain', sha256, 'k1'],
      ['a plain SHA-256 chain marked as written before keying', sha256, null],
      ['an HMAC under a key not in the keyring', hmacUnder(Buffer.alloc(32, 7)), 'k1'],
    ])('refuses an edit re-chained without the key: %s', async (_how, hashOf, keyId) => {
      const [, middle] = await appendThree();
      await dataSource.query(`UPDATE audit_events SET metadata = '{"method":"forged"}' WHERE id = $1`, [middle.id]);
      await rechainByHand(middle.id, hashOf, keyId);
      expect(await verifyAuditChain(dataSource.manager, keyring)).toEqual({ ok: false, checked: 2, firstBrokenId: middle.id });
    });

    it('verifies across a key rotation while the keyring holds both keys, and breaks where a key is missing', async () => {
      const [first] = await appendThree();
      const rotated = new AuditLog(clock, testKeyring('k2'));
      const later = await dataSource.transaction((manager) => rotated.append(manager, signIn()));
      expect(later.keyId).toBe('k2');
      expect(await verifyAuditChain(dataSource.manager, testKeyring('k2'))).toEqual({ ok: true, checked: 4, firstBrokenId: null });
      expect(await verifyAuditChain(dataSource.manager, testKeyring('k2', ['k2']))).toEqual({
        ok: false,
        checked: 1,
        firstBrokenId: first.id,
      });
    });

    it('proves an anchored head is still there, and catches a truncation after it', async () => {
      await appendThree();
      const head = await auditChainHead(dataSource.manager);
      if (!head) throw new Error('expected a head');
      await appendInTransaction(signIn());
      expect(await verifyAuditChain(dataSource.manager, keyring, { head })).toEqual({
        ok: true,
        checked: 4,
        firstBrokenId: null,
        head: 'found',
      });

      await dataSource.query('DELETE FROM audit_events WHERE id >= $1', [head.id]);
      expect(await verifyAuditChain(dataSource.manager, keyring)).toEqual({ ok: true, checked: 2, firstBrokenId: null });
      expect(await verifyAuditChain(dataSource.manager, keyring, { head })).toEqual({
        ok: false,
        checked: 2,
        firstBrokenId: null,
        head: 'missing',
      });
      const other = { id: '1', hash: repeat64('c') };
      expect(await verifyAuditChain(dataSource.manager, keyring, { head: other })).toMatchObject({ ok: false, head: 'changed' });
    });

    it('says a head that retention pruned is gone by a chained checkpoint, not by truncation', async () => {
      await appendThree();
      const head = await auditChainHead(dataSource.manager);
      clock.advance(24 * 60 * 60 * 1000);
      await appendInTransaction(signIn());
      await dataSource.transaction((manager) => audit.prune(manager, new Date(clock.now().getTime() - 60_000)));
      expect(await verifyAuditChain(dataSource.manager, keyring, { head: head ?? undefined })).toMatchObject({ ok: true, head: 'pruned' });
    });

    describe('re-chaining events written before the chain was keyed', () => {
      /** Three events as the unkeyed log wrote them: no key id, a plain SHA-256 chain. */
      const legacyThree = async () => {
        await appendThree();
        await rechainByHand('0', sha256, null);
        return events().find({ order: { id: 'ASC' } });
      };

      it('re-chains them under the current key once, with a checkpoint naming the old head', async () => {
        const legacy = await legacyThree();
        expect((await verifyAuditChain(dataSource.manager, keyring)).ok).toBe(false);
        const results = await Promise.all([audit.rechainLegacy(dataSource.manager), audit.rechainLegacy(dataSource.manager)]);
        expect(results.sort()).toEqual([0, 3]);
        const rows = await events().find({ order: { id: 'ASC' } });
        expect(rows.map((row) => row.keyId)).toEqual(['k1', 'k1', 'k1', 'k1']);
        expect(rows[3]).toMatchObject({
          action: 'audit_log_rechained',
          outcome: 'success',
          metadata: { rows: 3, kid: 'k1', oldHeadId: legacy[2].id, oldHeadHash: legacy[2].hash, oldChainBrokenAt: null },
        });
        expect(await verifyAuditChain(dataSource.manager, keyring)).toEqual({ ok: true, checked: 4, firstBrokenId: null });
      });

      it('records that the old chain was already broken, so re-keying cannot hide an edit', async () => {
        const legacy = await legacyThree();
        await dataSource.query(`UPDATE audit_events SET metadata = '{"method":"forged"}' WHERE id = $1`, [legacy[1].id]);
        expect(await audit.rechainLegacy(dataSource.manager)).toBe(3);
        const [checkpoint] = await events().find({ where: { action: 'audit_log_rechained' } });
        expect(checkpoint).toMatchObject({ outcome: 'failure', metadata: { oldChainBrokenAt: legacy[1].id } });
      });
    });

    describe('incremental verification', () => {
      it('checks only what was appended after the recorded position', async () => {
        await appendThree();
        const first = await verifyAuditChainSince(dataSource.manager, keyring, null);
        expect(first.report).toEqual({ ok: true, checked: 3, firstBrokenId: null });
        await appendInTransaction(signIn());
        await appendInTransaction(signIn());
        const next = await verifyAuditChainSince(dataSource.manager, keyring, first.reached);
        expect(next.report).toEqual({ ok: true, checked: 2, firstBrokenId: null });
        expect(next.reached).toEqual(await auditChainHead(dataSource.manager).then((head) => head && { id: head.id, hash: head.hash }));
        const idle = await verifyAuditChainSince(dataSource.manager, keyring, next.reached);
        expect(idle).toEqual({ report: { ok: true, checked: 0, firstBrokenId: null }, reached: next.reached });
      });

      it('fails when the recorded position is gone or changed, and still finds a break after it', async () => {
        const [, middle, last] = await appendThree();
        const position = { id: last.id, hash: last.hash };
        await appendInTransaction(signIn());
        expect((await verifyAuditChainSince(dataSource.manager, keyring, { id: last.id, hash: repeat64('d') })).report).toMatchObject({
          ok: false,
          firstBrokenId: last.id,
        });
        const after = await appendInTransaction(signIn());
        await dataSource.query(`UPDATE audit_events SET metadata = '{"method":"forged"}' WHERE id = $1`, [after.id]);
        expect((await verifyAuditChainSince(dataSource.manager, keyring, position)).report).toEqual({
          ok: false,
          checked: 2,
          firstBrokenId: after.id,
        });
        await dataSource.query('DELETE FROM audit_events WHERE id = $1', [last.id]);
        expect((await verifyAuditChainSince(dataSource.manager, keyring, position)).report).toMatchObject({
          ok: false,
          firstBrokenId: last.id,
        });
        expect(middle.id).not.toBe(last.id);
      });
    });
  });

  describe('retention', () => {
    const prune = (cutoff: Date) => dataSource.transaction((manager) => audit.prune(manager, cutoff));

    it('deletes the old events, appends a checkpoint, and what is left still verifies', async () => {
      const [old1, old2] = await appendThree();
      clock.advance(24 * 60 * 60 * 1000);
      const recent = await appendInTransaction(signIn());
      const cutoff = new Date(clock.now().getTime() - 60_000);
      expect(await prune(cutoff)).toBe(3);
      const left = await events().find({ order: { id: 'ASC' } });
      expect(left.map((row) => row.action)).toEqual(['sign_in_succeeded', 'audit_log_pruned']);
      expect(left[0].id).toBe(recent.id);
      expect(left[1].metadata).toMatchObject({ prunedThroughId: String(Number(old1.id) + 2), rows: 3 });
      expect(await verifyAuditChain(dataSource.manager, keyring)).toEqual({ ok: true, checked: 2, firstBrokenId: null });
      expect(old2.id).not.toBe(recent.id);
      expect(await prune(cutoff)).toBe(0); // nothing older any more
    });

    it('refuses to prune outside a transaction (the deletion and its checkpoint commit together)', async () => {
      await expect(audit.prune(dataSource.manager, new Date())).rejects.toThrow(/transaction/);
    });

    it('still detects a deletion at the start without a matching checkpoint, and an edit after pruning', async () => {
      await appendThree();
      clock.advance(24 * 60 * 60 * 1000);
      await appendThree();
      // Rows deleted by hand (no checkpoint): the first row left does not continue from the genesis.
      const [first] = await events().find({ order: { id: 'ASC' }, take: 1 });
      await dataSource.query('DELETE FROM audit_events WHERE id = $1', [first.id]);
      const report = await verifyAuditChain(dataSource.manager, keyring);
      expect(report.ok).toBe(false);

      await dataSource.query('TRUNCATE audit_events RESTART IDENTITY');
      await appendThree();
      clock.advance(24 * 60 * 60 * 1000);
      const kept = await appendThree();
      await prune(new Date(clock.now().getTime() - 60_000));
      await dataSource.query(`UPDATE audit_events SET metadata = '{"method":"forged"}' WHERE id = $1`, [kept[1].id]);
      expect(await verifyAuditChain(dataSource.manager, keyring)).toEqual({ ok: false, checked: 2, firstBrokenId: kept[1].id });
    });
  });
});
