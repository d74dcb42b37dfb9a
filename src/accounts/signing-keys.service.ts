import { randomBytes } from 'node:crypto';
import {
  createLocalJWKSet,
  errors,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JWK,
  type JWTVerifyGetKey,
  type KeyObject,
  type LocalJWKSet,
} from 'jose';
import { DataSource, EntityManager, LessThan, LessThanOrEqual, MoreThanOrEqual } from 'typeorm';
import type { AuditLog } from '../audit/audit-log';
import type { Clock } from '../clock';
import { PublicSigningJwk, SigningAlgorithm, SigningKey } from './signing-key.entity';

const ALGORITHM: SigningAlgorithm = 'EdDSA';

/**
 * pg_advisory_xact_lock key for every change to which key is current ("bsigkeys" in ASCII).
 * Several instances booting at once would otherwise each see no key and each create one.
 */
const SIGNING_KEYS_LOCK_ID = '7094129730943023475';

/** How stale this instance's view of the keys may get before it re-reads the database. */
const KEY_CACHE_MAX_AGE_MS = 30_000;

/**
 * The least time between two reloads caused by a kid we do not know. It is one cooldown for all
 * kids, not one per kid: a per-kid limit lets a forger who varies the kid hit the database on
 * every request (and grow a map without bound).
 */
const UNKNOWN_KID_RELOAD_COOLDOWN_MS = 5_000;

/** Tokens may arrive this late after `exp` (verification's clock tolerance plus client skew). */
const RETIREMENT_MARGIN_SECONDS = 60;

/** How long verifiers may cache /.well-known/jwks.json (its Cache-Control max-age). */
export const JWKS_MAX_AGE_SECONDS = 300;

/**
 * A published next key starts signing only after every verifier's cached JWKS has expired and been
 * refetched (docs/security.md#tok-4: publish before signing), plus a margin.
 */
const NEXT_KEY_PUBLISH_DELAY_MS = (JWKS_MAX_AGE_SECONDS + 60) * 1000;

export interface SigningKeysOptions {
  /** The longest access-token lifetime: a retiring key stays published this long (plus a margin). */
  readonly accessTokenTtlSeconds: number;
}

/** No key is current: `ensureCurrentKey()` was not run at boot. */
export class NoCurrentSigningKeyError extends Error {
  constructor() {
    super('No current access-token signing key: call SigningKeysService.ensureCurrentKey() at boot');
    this.name = 'NoCurrentSigningKeyError';
  }
}

/**
 * The key store could not be read while resolving a verification key. Kept apart from token
 * failures so that a database outage is never reported to a client as "your token is invalid".
 */
export class SigningKeysUnavailableError extends Error {
  constructor(cause: unknown) {
    super('access-token verification keys could not be loaded', { cause });
    this.name = 'SigningKeysUnavailableError';
  }
}

interface CachedSigningKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly loadedAtMs: number;
}

interface CachedVerificationKeys {
  readonly keySet: LocalJWKSet;
  readonly kids: ReadonlySet<string>;
  readonly loadedAtMs: number;
}

/**
 * Access-token signing keys (Ed25519) in PostgreSQL: creation, rotation, retirement, the public
 * JWKS, and the in-memory copies each instance signs and verifies with.
 */
export class SigningKeysService {
  readonly accessTokenTtlSeconds: number;

  private readonly signingKeyCache = new SharedLoad<CachedSigningKey>((previous) => this.loadSigningKey(previous));
  private readonly verificationKeysCache = new SharedLoad<CachedVerificationKeys>(() => this.loadVerificationKeys());
  private lastUnknownKidReloadMs: number | undefined;

  constructor(
    private readonly dataSource: DataSource,
    private readonly clock: Clock,
    options: SigningKeysOptions,
    /** Rotations are security events; absent only in tests of the key logic itself. */
    private readonly audit?: AuditLog,
  ) {
    if (!Number.isInteger(options.accessTokenTtlSeconds) || options.accessTokenTtlSeconds <= 0) {
      throw new RangeError(`accessTokenTtlSeconds must be a positive integer, got ${options.accessTokenTtlSeconds}`);
    }
    this.accessTokenTtlSeconds = options.accessTokenTtlSeconds;
  }

  /** At boot: creates the first key unless one is current. Safe when instances start together. */
  async ensureCurrentKey(): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      await lockSigningKeys(manager);
      if (await manager.getRepository(SigningKey).existsBy({ status: 'current' })) return;
      await manager.getRepository(SigningKey).insert(await newSigningKey(this.clock.now()));
    });
    this.invalidateCaches();
  }

  /**
   * Makes a new key current now and the old one 'retiring' (for a suspected compromise: verifiers
   * caching the JWKS may refuse new tokens until they refetch it). The old key stays in the JWKS,
   * so tokens it signed keep verifying until they have all expired. A published next key, if any,
   * is the one promoted.
   */
  async rotate(): Promise<SigningKey> {
    const promoted = await this.dataSource.transaction(async (manager) => {
      await lockSigningKeys(manager);
      const keys = manager.getRepository(SigningKey);
      const now = this.clock.now();
      // Demote first: the partial unique index admits one current key at any instant.
      await keys.update({ status: 'current' }, { status: 'retiring', retiringSince: now });
      const next = await keys.findOneBy({ status: 'next' });
      let promoted: SigningKey;
      if (next) {
        await keys.update({ kid: next.kid }, { status: 'current' });
        promoted = { ...next, status: 'current' as const };
      } else {
        promoted = await newSigningKey(now);
        await keys.insert(promoted);
      }
      await this.audit?.append(manager, {
        action: 'signing_key_rotated',
        outcome: 'success',
        targetType: 'signing_key',
        targetId: promoted.kid,
        metadata: { immediate: true },
      });
      return promoted;
    });
    this.invalidateCaches();
    return promoted;
  }

  /**
   * The planned rotation: publishes a new key in the JWKS now; it becomes current by itself once
   * verifiers have had time to fetch it (the JWKS cache age plus a minute), on whichever instance
   * next reloads its signing key. Idempotent: an already published next key is returned.
   */
  async publishNext(): Promise<{ kid: string; signsFrom: Date }> {
    const next = await this.dataSource.transaction(async (manager) => {
      await lockSigningKeys(manager);
      const keys = manager.getRepository(SigningKey);
      const existing = await keys.findOneBy({ status: 'next' });
      if (existing) return existing;
      const key = await newSigningKey(this.clock.now());
      await keys.insert({ ...key, status: 'next' });
      await this.audit?.append(manager, {
        action: 'signing_key_published',
        outcome: 'success',
        targetType: 'signing_key',
        targetId: key.kid,
        metadata: {},
      });
      return { ...key, status: 'next' as const };
    });
    this.invalidateCaches();
    return { kid: next.kid, signsFrom: new Date(next.createdAt.getTime() + NEXT_KEY_PUBLISH_DELAY_MS) };
  }

  /** Promotes a published next key whose delay has passed; true when it did. */
  private async promoteDueNextKey(): Promise<boolean> {
    const due = new Date(this.clock.now().getTime() - NEXT_KEY_PUBLISH_DELAY_MS);
    const keys = this.dataSource.getRepository(SigningKey);
    if (!(await keys.existsBy({ status: 'next', createdAt: LessThanOrEqual(due) }))) return false;
    return this.dataSource.transaction(async (manager) => {
      await lockSigningKeys(manager);
      // Re-checked under the lock: another instance may have promoted it a moment ago.
      const next = await manager.getRepository(SigningKey).findOneBy({ status: 'next', createdAt: LessThanOrEqual(due) });
      if (!next) return false;
      await manager.getRepository(SigningKey).update({ status: 'current' }, { status: 'retiring', retiringSince: this.clock.now() });
      await manager.getRepository(SigningKey).update({ kid: next.kid }, { status: 'current' });
      return true;
    });
  }

  /** Retires the retiring keys whose tokens have all expired; returns how many. */
  async retireExpired(): Promise<number> {
    const now = this.clock.now();
    const retiringSinceBefore = new Date(now.getTime() - (this.accessTokenTtlSeconds + RETIREMENT_MARGIN_SECONDS) * 1000);
    const result = await this.dataSource
      .getRepository(SigningKey)
      .update({ status: 'retiring', retiringSince: LessThan(retiringSinceBefore) }, { status: 'retired', retiredAt: now });
    this.invalidateCaches();
    return result.affected ?? 0;
  }

  /**
   * The JWKS to publish: the next key (published before it signs), the current key, and the
   * retiring keys whose tokens may still be live, read
   * fresh so a rotation shows at once. A retiring key drops out by itself once its tokens have all
   * expired, even before retireExpired() marks it: verification never trusts it longer than that.
   */
  async publicJwks(): Promise<{ keys: JWK[] }> {
    const cutoff = new Date(this.clock.now().getTime() - (this.accessTokenTtlSeconds + RETIREMENT_MARGIN_SECONDS) * 1000);
    const rows = await this.dataSource.getRepository(SigningKey).find({
      // Never select privateJwk here: it would be decrypted for nothing.
      select: { kid: true, publicJwk: true },
      where: [{ status: 'next' }, { status: 'current' }, { status: 'retiring', retiringSince: MoreThanOrEqual(cutoff) }],
      order: { createdAt: 'DESC', kid: 'ASC' },
    });
    return { keys: rows.map((row) => publishableJwk(row.kid, row.publicJwk)) };
  }

  /**
   * The key to sign with. Cached, and re-read at most every 30 s so that a rotation made by
   * another instance is picked up; until then this instance signs with the now retiring key,
   * which every instance still accepts.
   */
  async signingKey(): Promise<{ kid: string; privateKey: CryptoKey | KeyObject }> {
    const cached = this.signingKeyCache.value;
    const { kid, privateKey } = cached && this.isFresh(cached.loadedAtMs) ? cached : await this.signingKeyCache.reload();
    return { kid, privateKey };
  }

  /**
   * The public keys to verify with, as a jose key resolver for `jwtVerify`. Cached like
   * `signingKey()`; a token naming a kid not in the cache (a rotation by another instance)
   * triggers one reload, at most once per cooldown, so forged kids cannot flood the database.
   */
  verificationKeys(): JWTVerifyGetKey {
    return this.resolveVerificationKey;
  }

  /**
   * The key is in the verification set loaded within the cache's age, with no reload due: a token
   * it verified before verifies again. False when in doubt (stale, or never loaded).
   */
  stillTrusts(kid: string): boolean {
    const keys = this.verificationKeysCache.value;
    return keys !== undefined && this.isFresh(keys.loadedAtMs) && keys.kids.has(kid);
  }

  private readonly resolveVerificationKey: JWTVerifyGetKey = async (protectedHeader, token) => {
    // Our tokens always name their key; a header without one is not ours.
    if (typeof protectedHeader.kid !== 'string') throw new errors.JWKSNoMatchingKey();
    const kid = protectedHeader.kid;
    let keys = this.verificationKeysCache.value;
    try {
      if (!keys || !this.isFresh(keys.loadedAtMs)) {
        keys = await this.verificationKeysCache.reload();
      } else if (!keys.kids.has(kid) && this.mayReloadForUnknownKid()) {
        keys = await this.verificationKeysCache.reload();
      }
    } catch (cause) {
      throw new SigningKeysUnavailableError(cause);
    }
    return keys.keySet(protectedHeader, token);
  };

  private mayReloadForUnknownKid(): boolean {
    const now = this.clock.now().getTime();
    const last = this.lastUnknownKidReloadMs;
    // A clock stepped backwards (NTP, tests) must not block reloads until it catches up.
    if (last !== undefined && now >= last && now - last < UNKNOWN_KID_RELOAD_COOLDOWN_MS) return false;
    this.lastUnknownKidReloadMs = now;
    return true;
  }

  private isFresh(loadedAtMs: number): boolean {
    const age = this.clock.now().getTime() - loadedAtMs;
    return age >= 0 && age < KEY_CACHE_MAX_AGE_MS;
  }

  private invalidateCaches(): void {
    this.signingKeyCache.invalidate();
    this.verificationKeysCache.invalidate();
  }

  private async loadSigningKey(previous: CachedSigningKey | undefined): Promise<CachedSigningKey> {
    // Every reload (at most every 30 s) is also the moment a due next key takes over.
    if (await this.promoteDueNextKey()) this.verificationKeysCache.invalidate();
    const keys = this.dataSource.getRepository(SigningKey);
    const loadedAtMs = this.clock.now().getTime();
    const current = await keys.findOne({ select: { kid: true }, where: { status: 'current' } });
    if (!current) throw new NoCurrentSigningKeyError();
    // Most refreshes find the same key: skip decrypting and importing the private half again.
    if (previous?.kid === current.kid) return { ...previous, loadedAtMs };
    const row = await keys.findOne({ select: { kid: true, privateJwk: true }, where: { kid: current.kid } });
    if (!row) throw new NoCurrentSigningKeyError();
    const privateKey = await importJWK({ ...row.privateJwk }, ALGORITHM);
    return { kid: row.kid, privateKey, loadedAtMs };
  }

  private async loadVerificationKeys(): Promise<CachedVerificationKeys> {
    const loadedAtMs = this.clock.now().getTime();
    const jwks = await this.publicJwks();
    return {
      keySet: createLocalJWKSet(jwks),
      kids: new Set(jwks.keys.map((jwk) => jwk.kid).filter((kid): kid is string => kid !== undefined)),
      loadedAtMs,
    };
  }
}

/**
 * A value loaded on demand, one load at a time: concurrent callers share the load in flight
 * instead of each querying. A load that started before `invalidate()` is returned to its callers
 * but not kept, so a change this instance just made is never hidden by an older read.
 */
class SharedLoad<T> {
  value: T | undefined;
  private pending: Promise<T> | undefined;
  private generation = 0;

  constructor(private readonly load: (previous: T | undefined) => Promise<T>) {}

  reload(): Promise<T> {
    if (this.pending) return this.pending;
    const generation = this.generation;
    const pending = this.load(this.value).then(
      (loaded) => {
        if (generation === this.generation) this.value = loaded;
        if (this.pending === pending) this.pending = undefined;
        return loaded;
      },
      (error: unknown) => {
        if (this.pending === pending) this.pending = undefined;
        throw error;
      },
    );
    this.pending = pending;
    return pending;
  }

  invalidate(): void {
    this.generation += 1;
    this.value = undefined;
    this.pending = undefined;
  }
}

async function lockSigningKeys(manager: EntityManager): Promise<void> {
  await manager.query('SELECT pg_advisory_xact_lock($1::bigint)', [SIGNING_KEYS_LOCK_ID]);
}

async function newSigningKey(now: Date): Promise<SigningKey> {
  // Extractable only so the private half can be stored (encrypted); signing re-imports it.
  const pair = await generateKeyPair(ALGORITHM, { extractable: true });
  const [publicJwk, privateJwk] = await Promise.all([exportJWK(pair.publicKey), exportJWK(pair.privateKey)]);
  if (publicJwk.kty !== 'OKP' || publicJwk.crv !== 'Ed25519' || !publicJwk.x || !privateJwk.d) {
    throw new Error('generateKeyPair did not produce an Ed25519 key pair');
  }
  const kid = randomBytes(16).toString('base64url');
  const key: SigningKey = {
    kid,
    algorithm: ALGORITHM,
    publicJwk: { kty: 'OKP', crv: 'Ed25519', x: publicJwk.x, kid, alg: ALGORITHM, use: 'sig' },
    privateJwk: { kty: 'OKP', crv: 'Ed25519', x: publicJwk.x, d: privateJwk.d },
    status: 'current',
    createdAt: now,
    retiringSince: null,
    retiredAt: null,
  };
  return Object.assign(new SigningKey(), key);
}

/**
 * Rebuilds the key from its public members only (kty, crv, x, kid, alg, use), so nothing else a
 * row might hold is ever published. A private member in the public column is a storage bug that
 * would publish the key: refuse loudly rather than strip it quietly.
 */
function publishableJwk(kid: string, stored: PublicSigningJwk): PublicSigningJwk {
  const raw: Readonly<Record<string, unknown>> = { ...stored };
  if ('d' in raw) throw new Error(`signing_keys.public_jwk of key ${kid} holds a private member; refusing to publish it`);
  if (
    raw.kty !== 'OKP' ||
    raw.crv !== 'Ed25519' ||
    typeof raw.x !== 'string' ||
    raw.kid !== kid ||
    raw.alg !== ALGORITHM ||
    raw.use !== 'sig'
  ) {
    throw new Error(`signing_keys.public_jwk of key ${kid} is not an Ed25519 signing key`);
  }
  return { kty: 'OKP', crv: 'Ed25519', x: raw.x, kid, alg: ALGORITHM, use: 'sig' };
}
