import { appTables } from '../support/test-tables';
import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import {
  SignJWT,
  base64url,
  errors,
  createLocalJWKSet,
  generateKeyPair,
  jwtVerify,
  type CryptoKey,
  type JWTHeaderParameters,
  type KeyObject,
} from 'jose';
import { DataSource } from 'typeorm';
import { AccessTokenError, AccessTokenFailure, AccessTokens } from '../../src/accounts/access-tokens';
import { SigningKey } from '../../src/accounts/signing-key.entity';
import { SigningKeysService } from '../../src/accounts/signing-keys.service';
import { FrozenClock } from '../../src/clock';
import { installKeyring } from '../../src/crypto/active-keyring';
import { createDataSource } from '../../src/db/data-source';
import { lockWaiters } from '../support/eventually';
import { TestDatabase, createTestDatabase } from '../support/test-database';
import { testKeyring } from '../support/test-keys';

const TTL_SECONDS = 900;
const TOLERANCE_SECONDS = 5;
const RETIREMENT_SECONDS = TTL_SECONDS + 60;
const OPTIONS = { issuer: 'https://auth.bastion.test', audience: 'bastion-api', ttlSeconds: TTL_SECONDS };
const CLAIMS = { userId: 'user-7', sessionId: 'session-7', roles: ['user', 'editor'], aal: 2, amr: ['pwd', 'otp'] } as const;
const seconds = (count: number) => count * 1000;

describe('access tokens and signing keys on real PostgreSQL', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  let clock: FrozenClock;
  let keys: SigningKeysService;
  let tokens: AccessTokens;

  beforeAll(async () => {
    installKeyring(testKeyring());
    database = await createTestDatabase();
    dataSource = createDataSource({ url: database.url, poolSize: 4, ...appTables(SigningKey) });
    await dataSource.initialize();
    await dataSource.synchronize(); // signing_keys is not in the migrations yet
  });
  afterAll(async () => {
    await dataSource.destroy();
    await database.drop();
  });
  beforeEach(async () => {
    await dataSource.query('TRUNCATE signing_keys');
    clock = new FrozenClock('2026-03-01T12:00:00.000Z');
    keys = new SigningKeysService(dataSource, clock, { accessTokenTtlSeconds: TTL_SECONDS });
    tokens = new AccessTokens(keys, clock, OPTIONS);
    await keys.ensureCurrentKey();
  });

  const rawRows = (): Promise<Record<string, unknown>[]> => dataSource.query('SELECT * FROM signing_keys ORDER BY created_at, kid');
  const currentKeyCount = async () =>
    Number((await dataSource.query("SELECT count(*) AS count FROM signing_keys WHERE status = 'current'"))[0].count);

  async function rejected(token: string, verifier: AccessTokens = tokens): Promise<AccessTokenError> {
    const outcome = await verifier.verify(token).then(
      () => undefined,
      (error: unknown) => error,
    );
    if (!(outcome instanceof AccessTokenError))
      throw new Error(`expected an AccessTokenError, got ${outcome === undefined ? 'an accepted token' : inspect(outcome)}`);
    return outcome;
  }
  const rejection = async (token: string, verifier: AccessTokens = tokens): Promise<AccessTokenFailure> =>
    (await rejected(token, verifier)).reason;

  /** What made jose (or the claim check) refuse: pins each case to the defence it exercises. */
  function causeOf(error: AccessTokenError): string {
    const { cause } = error;
    if (cause instanceof errors.JOSEError) return `${cause.code}: ${cause.message}`;
    return cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
  }

  interface Forgery {
    readonly header?: Partial<JWTHeaderParameters>;
    readonly claims?: Record<string, unknown>;
    readonly omit?: readonly string[];
    readonly key?: CryptoKey | KeyObject | Uint8Array;
  }

  /** A token built by hand, valid unless told otherwise (a test below proves the defaults verify). */
  async function forge({ header = {}, claims = {}, omit = [], key }: Forgery = {}): Promise<string> {
    const signing = await keys.signingKey();
    const now = Math.floor(clock.now().getTime() / 1000);
    const payload: Record<string, unknown> = {
      iss: OPTIONS.issuer,
      aud: OPTIONS.audience,
      sub: 'user-1',
      sid: 'session-1',
      roles: ['user'],
      aal: 1,
      amr: ['pwd'],
      iat: now,
      exp: now + TTL_SECONDS,
      jti: randomUUID(),
      ...claims,
    };
    for (const claim of omit) delete payload[claim];
    return new SignJWT(payload)
      .setProtectedHeader({ alg: 'EdDSA', kid: signing.kid, typ: 'at+jwt', ...header })
      .sign(key ?? signing.privateKey);
  }

  it('round-trips a token whose times come from the injected clock', async () => {
    const signed = await tokens.sign(CLAIMS);
    const verified = await tokens.verify(signed.token);
    expect(verified).toEqual({ ...CLAIMS, jti: signed.jti, expiresAt: new Date('2026-03-01T12:15:00.000Z') });
    expect(signed.expiresAt).toEqual(new Date('2026-03-01T12:15:00.000Z'));
    expect(signed.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect((await tokens.sign(CLAIMS)).jti).not.toBe(signed.jti);
  });

  it('stores the private key encrypted: the raw row holds an envelope, never the JWK', async () => {
    const [raw] = await rawRows();
    const privateJwk = (await dataSource.getRepository(SigningKey).findOneByOrFail({ kid: String(raw.kid) })).privateJwk;
    expect(privateJwk.d).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const dump = JSON.stringify(raw);
    expect(dump).not.toContain('"d":');
    expect(dump).not.toContain(privateJwk.d);
    expect(raw.private_jwk).toEqual(expect.stringMatching(/^v1\./));
    expect(raw).toMatchObject({ algorithm: 'EdDSA', status: 'current', retiring_since: null, retired_at: null });
  });

  it('publishes only the public members of the current key', async () => {
    const jwks = await keys.publicJwks();
    const { kid } = await keys.signingKey();
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).not.toHaveProperty('d');
    expect(Object.keys(jwks.keys[0]).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x']);
    expect(jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', kid, alg: 'EdDSA', use: 'sig' });
  });

  it('strips unexpected members from a stored public key, and refuses one that holds a private member', async () => {
    await dataSource.query(`UPDATE signing_keys SET public_jwk = public_jwk || '{"x5u": "https://attacker.example/cert"}'`);
    expect(Object.keys((await keys.publicJwks()).keys[0]).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x']);
    await dataSource.query(`UPDATE signing_keys SET public_jwk = public_jwk || '{"d": "bGVha2Vk"}'`);
    await expect(keys.publicJwks()).rejects.toThrow(/holds a private member/);
  });

  it('is verifiable by a plain jose client from the published JWKS alone', async () => {
    const signed = await tokens.sign(CLAIMS);
    const { kid } = await keys.signingKey();
    const { payload, protectedHeader } = await jwtVerify(signed.token, createLocalJWKSet(await keys.publicJwks()), {
      algorithms: ['EdDSA'],
      issuer: OPTIONS.issuer,
      audience: OPTIONS.audience,
      typ: 'at+jwt',
      currentDate: clock.now(),
    });
    expect(protectedHeader).toEqual({ alg: 'EdDSA', kid, typ: 'at+jwt' });
    const issuedAt = Date.parse('2026-03-01T12:00:00.000Z') / 1000;
    expect(payload).toEqual({
      iss: OPTIONS.issuer,
      aud: OPTIONS.audience,
      sub: 'user-7',
      sid: 'session-7',
      roles: ['user', 'editor'],
      aal: 2,
      amr: ['pwd', 'otp'],
      iat: issuedAt,
      exp: issuedAt + TTL_SECONDS,
      jti: signed.jti,
    });
  });

  it('accepts a hand-built token with the default forgery settings (the control for every rejection below)', async () => {
    await expect(tokens.verify(await forge())).resolves.toMatchObject({ userId: 'user-1', sessionId: 'session-1', aal: 1 });
  });

  const invalidTokens: [description: string, cause: string, make: () => Promise<string>][] = [
    [
      'signed by another Ed25519 key under the same kid',
      'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
      async () => forge({ key: (await generateKeyPair('EdDSA')).privateKey }),
    ],
    [
      'alg none (unsecured)',
      'ERR_JOSE_ALG_NOT_ALLOWED',
      async () => {
        const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid: (await keys.signingKey()).kid }));
        const body = (await forge()).split('.')[1];
        return `${header}.${body}.`;
      },
    ],
    [
      'HS256 with the public key bytes as the secret',
      'ERR_JOSE_ALG_NOT_ALLOWED',
      async () => {
        const [published] = (await keys.publicJwks()).keys;
        return forge({ header: { alg: 'HS256' }, key: base64url.decode(String(published.x)) });
      },
    ],
    [
      'HS256 with the published JWK text as the secret',
      'ERR_JOSE_ALG_NOT_ALLOWED',
      async () => {
        const [published] = (await keys.publicJwks()).keys;
        return forge({ header: { alg: 'HS256' }, key: new TextEncoder().encode(JSON.stringify(published)) });
      },
    ],
    [
      'for another audience',
      'unexpected "aud"',
      async () => (await new AccessTokens(keys, clock, { ...OPTIONS, audience: 'other-api' }).sign(CLAIMS)).token,
    ],
    [
      'from another issuer',
      'unexpected "iss"',
      async () => (await new AccessTokens(keys, clock, { ...OPTIONS, issuer: 'https://evil.test' }).sign(CLAIMS)).token,
    ],
    ['typ JWT (an ID token or any other JWT)', 'unexpected "typ"', () => forge({ header: { typ: 'JWT' } })],
    ['without typ', 'unexpected "typ"', () => forge({ header: { typ: undefined } })],
    ['without exp', 'missing required "exp"', () => forge({ omit: ['exp'] })],
    ['without iat', 'missing required "iat"', () => forge({ omit: ['iat'] })],
    ['without sub', 'missing required "sub"', () => forge({ omit: ['sub'] })],
    ['without jti', 'missing required "jti"', () => forge({ omit: ['jti'] })],
    ['without sid', 'missing required "sid"', () => forge({ omit: ['sid'] })],
    ['without amr', 'wrong types', () => forge({ omit: ['amr'] })],
    ['with an unknown kid', 'ERR_JWKS_NO_MATCHING_KEY', () => forge({ header: { kid: 'no-such-key' } })],
    ['without a kid', 'ERR_JWKS_NO_MATCHING_KEY', () => forge({ header: { kid: undefined } })],
    ['with roles as a string', 'wrong types', () => forge({ claims: { roles: 'admin' } })],
    ['with aal 3', 'wrong types', () => forge({ claims: { aal: 3 } })],
    ['with aal "2"', 'wrong types', () => forge({ claims: { aal: '2' } })],
    ['with a numeric sid', 'wrong types', () => forge({ claims: { sid: 42 } })],
    ['with a numeric sub', 'wrong types', () => forge({ claims: { sub: 42 } })],
    ['with exp as a string', '"exp" claim must be a number', () => forge({ claims: { exp: '9999999999' } })],
    [
      'expired and signed by another key',
      'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
      async () => forge({ claims: { exp: 1_000 }, key: (await generateKeyPair('EdDSA')).privateKey }),
    ],
    [
      'with a tampered payload',
      'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
      async () => {
        const [header, , signature] = (await forge()).split('.');
        const claims = {
          iss: OPTIONS.issuer,
          aud: OPTIONS.audience,
          sub: 'admin',
          sid: 's',
          roles: ['admin'],
          aal: 2,
          amr: ['pwd'],
          iat: 1,
          exp: 9_999_999_999,
          jti: 'j',
        };
        return `${header}.${base64url.encode(JSON.stringify(claims))}.${signature}`;
      },
    ],
    ['garbage', 'ERR_JWS_INVALID', async () => 'garbage'],
    ['empty', 'ERR_JWS_INVALID', async () => ''],
    ['three empty segments', 'ERR_JWS_INVALID', async () => '..'],
  ];

  it.each(invalidTokens)('rejects a token %s as invalid (%s)', async (_description, cause, make) => {
    const error = await rejected(await make());
    expect(error.reason).toBe('invalid');
    expect(error.message).toBe('access token invalid');
    expect(causeOf(error)).toContain(cause);
  });

  it('reports an expired token as expired, only once the clock tolerance has passed', async () => {
    const signed = await tokens.sign(CLAIMS);
    clock.advance(seconds(TTL_SECONDS + TOLERANCE_SECONDS - 1));
    await expect(tokens.verify(signed.token)).resolves.toMatchObject({ jti: signed.jti });
    clock.advance(seconds(1));
    expect(await rejection(signed.token)).toBe('expired');
  });

  it('rotates with overlap, then retires the old key once its tokens have expired', async () => {
    const oldKid = (await keys.signingKey()).kid;
    const beforeRotation = await tokens.sign(CLAIMS);

    clock.advance(seconds(60));
    const rotated = await keys.rotate();
    expect(rotated.kid).not.toBe(oldKid);
    expect(rotated.status).toBe('current');
    await expect(tokens.verify(beforeRotation.token)).resolves.toMatchObject({ jti: beforeRotation.jti });
    const afterRotation = await tokens.sign(CLAIMS);
    expect((await keys.signingKey()).kid).toBe(rotated.kid);
    await expect(tokens.verify(afterRotation.token)).resolves.toMatchObject({ jti: afterRotation.jti });
    expect((await keys.publicJwks()).keys.map((jwk) => jwk.kid).sort()).toEqual([oldKid, rotated.kid].sort());
    const plainClient = createLocalJWKSet(await keys.publicJwks());
    for (const token of [beforeRotation.token, afterRotation.token]) {
      await expect(jwtVerify(token, plainClient, { algorithms: ['EdDSA'], currentDate: clock.now() })).resolves.toBeDefined();
    }
    const rows = await rawRows();
    expect(rows.map((row) => [row.kid, row.status, row.retiring_since])).toEqual([
      [oldKid, 'retiring', new Date('2026-03-01T12:01:00.000Z')],
      [rotated.kid, 'current', null],
    ]);

    clock.advance(seconds(RETIREMENT_SECONDS));
    expect(await keys.retireExpired()).toBe(0);
    expect(await rejection(beforeRotation.token)).toBe('expired');
    clock.advance(seconds(1));
    expect(await keys.retireExpired()).toBe(1);
    expect(await keys.retireExpired()).toBe(0);

    expect(await rejection(beforeRotation.token)).toBe('invalid');
    expect((await keys.publicJwks()).keys.map((jwk) => jwk.kid)).toEqual([rotated.kid]);
    const [retired] = await rawRows();
    expect(retired).toMatchObject({ kid: oldKid, status: 'retired', retired_at: clock.now() });
    const fresh = await tokens.sign(CLAIMS);
    await expect(tokens.verify(fresh.token)).resolves.toMatchObject({ jti: fresh.jti });
  });

  it('publishes a next key before it signs, then lets it take over by itself (TOK-4)', async () => {
    const oldKid = (await keys.signingKey()).kid;
    const published = await keys.publishNext();
    expect(published.kid).not.toBe(oldKid);
    expect(published.signsFrom).toEqual(new Date(clock.now().getTime() + 360_000));
    expect(await keys.publishNext()).toEqual(published); // idempotent
    // Published and trusted at once, but not yet signing: verifiers have time to fetch it.
    expect((await keys.publicJwks()).keys.map((jwk) => jwk.kid).sort()).toEqual([oldKid, published.kid].sort());
    const beforeTakeover = await tokens.sign(CLAIMS);
    clock.advance(seconds(359));
    expect((await keys.signingKey()).kid).toBe(oldKid);

    // Due at 360 s; taken over at this instance's next key reload (its cache lives 30 s).
    clock.advance(seconds(31));
    expect((await keys.signingKey()).kid).toBe(published.kid);
    const afterTakeover = await tokens.sign(CLAIMS);
    await expect(tokens.verify(afterTakeover.token)).resolves.toMatchObject({ jti: afterTakeover.jti });
    // The old key's tokens still verify: it is retiring, published until they have all expired.
    await expect(tokens.verify(beforeTakeover.token)).resolves.toMatchObject({ jti: beforeTakeover.jti });
    const statuses = Object.fromEntries((await rawRows()).map((row) => [row.kid, row.status]));
    expect(statuses).toEqual({ [oldKid]: 'retiring', [published.kid]: 'current' });
    expect(await currentKeyCount()).toBe(1);
  });

  it('lets another instance keep signing with its cached key for up to 30 s after a rotation, which still verifies', async () => {
    const otherInstance = new SigningKeysService(dataSource, clock, { accessTokenTtlSeconds: TTL_SECONDS });
    const otherTokens = new AccessTokens(otherInstance, clock, OPTIONS);
    const oldKid = (await otherInstance.signingKey()).kid;
    const rotated = await keys.rotate();

    clock.advance(seconds(30) - 1);
    expect((await otherInstance.signingKey()).kid).toBe(oldKid);
    const fromStaleInstance = await otherTokens.sign(CLAIMS);
    await expect(tokens.verify(fromStaleInstance.token)).resolves.toMatchObject({ jti: fromStaleInstance.jti });

    clock.advance(1);
    expect((await otherInstance.signingKey()).kid).toBe(rotated.kid);
  });

  it("reloads the verification keys on another instance's new kid, at most once per 5 s", async () => {
    const otherInstance = new SigningKeysService(dataSource, clock, { accessTokenTtlSeconds: TTL_SECONDS });
    const otherTokens = new AccessTokens(otherInstance, clock, OPTIONS);
    await expect(otherTokens.verify((await tokens.sign(CLAIMS)).token)).resolves.toBeDefined(); // caches the first key

    await keys.rotate();
    const secondKeyToken = await tokens.sign(CLAIMS);
    await expect(otherTokens.verify(secondKeyToken.token)).resolves.toMatchObject({ jti: secondKeyToken.jti });

    await keys.rotate();
    const thirdKeyToken = await tokens.sign(CLAIMS);
    clock.advance(seconds(5) - 1);
    expect(await rejection(thirdKeyToken.token, otherTokens)).toBe('invalid');
    expect(await rejection(await forge({ header: { kid: 'forged' } }), otherTokens)).toBe('invalid');
    clock.advance(1);
    await expect(otherTokens.verify(thirdKeyToken.token)).resolves.toMatchObject({ jti: thirdKeyToken.jti });
  });

  /**
   * Starts `racers` while a table lock holds each of them at its first statement on signing_keys,
   * waits until all are blocked in PostgreSQL, then lets them go: the overlap is certain, not a
   * matter of timing (otherwise the first often commits before the second has a connection).
   */
  async function race<T>(racers: (() => Promise<T>)[]): Promise<T[]> {
    const gate = dataSource.createQueryRunner();
    await gate.connect();
    try {
      await gate.startTransaction();
      await gate.query('LOCK TABLE signing_keys IN ACCESS EXCLUSIVE MODE');
      const running = Promise.allSettled(racers.map((racer) => racer()));
      await lockWaiters(dataSource, racers.length);
      await gate.rollbackTransaction();
      const outcomes = await running;
      return outcomes.map((outcome) => {
        if (outcome.status === 'rejected') throw outcome.reason;
        return outcome.value;
      });
    } finally {
      if (gate.isTransactionActive) await gate.rollbackTransaction();
      await gate.release();
    }
  }

  it('creates exactly one current key when two instances start at the same moment', async () => {
    await dataSource.query('TRUNCATE signing_keys');
    expect(await rawRows()).toHaveLength(0);
    const instances = [1, 2].map(() => new SigningKeysService(dataSource, clock, { accessTokenTtlSeconds: TTL_SECONDS }));
    await race(instances.map((instance) => () => instance.ensureCurrentKey()));
    expect(await currentKeyCount()).toBe(1);
    expect(await rawRows()).toHaveLength(1);
    const kids = await Promise.all(instances.map(async (instance) => (await instance.signingKey()).kid));
    expect(new Set(kids).size).toBe(1);
  });

  it('keeps exactly one current key when two rotations race', async () => {
    const otherInstance = new SigningKeysService(dataSource, clock, { accessTokenTtlSeconds: TTL_SECONDS });
    await race([() => keys.rotate(), () => otherInstance.rotate()]);
    expect(await currentKeyCount()).toBe(1);
    expect((await rawRows()).map((row) => row.status).sort()).toEqual(['current', 'retiring', 'retiring']);
  });

  it('has the database refuse a second current key, even from a writer that skips the lock', async () => {
    const [{ kid, ...row }] = await rawRows();
    const insertSecondCurrent = dataSource.query(
      'INSERT INTO signing_keys (kid, algorithm, public_jwk, private_jwk, status, created_at) VALUES ($1, $2, $3, $4, $5, $6)',
      [`${String(kid)}-copy`, row.algorithm, row.public_jwk, row.private_jwk, 'current', row.created_at],
    );
    await expect(insertSecondCurrent).rejects.toThrow(/signing_keys_one_current/);
    expect(await currentKeyCount()).toBe(1);
  });

  it('refuses a token lifetime longer than the one the keys are retired for, or than 15 minutes', () => {
    const shortLivedKeys = new SigningKeysService(dataSource, clock, { accessTokenTtlSeconds: 300 });
    expect(() => new AccessTokens(shortLivedKeys, clock, { ...OPTIONS, ttlSeconds: 300 })).not.toThrow();
    expect(() => new AccessTokens(shortLivedKeys, clock, { ...OPTIONS, ttlSeconds: 301 })).toThrow(/exceeds the signing keys/);
    const longLivedKeys = new SigningKeysService(dataSource, clock, { accessTokenTtlSeconds: 3600 });
    expect(() => new AccessTokens(longLivedKeys, clock, { ...OPTIONS, ttlSeconds: 901 })).toThrow(/from 1 to 900/);
  });
});
