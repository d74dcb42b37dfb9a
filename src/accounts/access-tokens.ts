import { randomUUID } from 'node:crypto';
import { SignJWT, errors, jwtVerify, type JWTPayload } from 'jose';
import type { Clock } from '../clock';
import { SigningKeysService, SigningKeysUnavailableError } from './signing-keys.service';

/** RFC 9068 §2.1: access tokens say what they are, so no other JWT can be replayed as one. */
const ACCESS_TOKEN_TYPE = 'at+jwt';

/** Seconds of clock skew accepted on `exp` (docs/security.md#tok-2). */
const CLOCK_TOLERANCE_SECONDS = 5;

/** Access tokens live at most 15 minutes. */
const MAX_TTL_SECONDS = 15 * 60;

/** Verified tokens remembered (an app presents the same token for its whole life): about 1 KB each. */
const VERIFIED_TOKENS = 5_000;

export type AuthenticationAssuranceLevel = 1 | 2;

export interface AccessTokenClaims {
  readonly userId: string;
  readonly sessionId: string;
  readonly roles: readonly string[];
  readonly aal: AuthenticationAssuranceLevel;
  /** How the user authenticated (RFC 8176 values: "pwd", "otp", …). */
  readonly amr: readonly string[];
}

export interface VerifiedAccessToken extends AccessTokenClaims {
  /** Revocation lists key on this (with the issuer), never on a hash of the token (docs/security.md#tok-5). */
  readonly jti: string;
  readonly expiresAt: Date;
}

export interface SignedAccessToken {
  readonly token: string;
  readonly expiresAt: Date;
  readonly jti: string;
}

export interface AccessTokensOptions {
  readonly issuer: string;
  readonly audience: string;
  readonly ttlSeconds: number;
}

export type AccessTokenFailure = 'expired' | 'invalid';

/** Why a token was refused, for the audit log only (token probing shows as forgeries, unknown keys, …). */
export type AccessTokenRejection =
  'malformed' | 'algorithm_not_allowed' | 'unknown_key' | 'invalid_signature' | 'invalid_claims' | 'expired';

/**
 * The one error for a token that is not accepted. Bland on purpose (as jose's): 'expired' tells a
 * client to refresh; 'invalid' covers every other cause, which stays in `cause` for the log and
 * in `rejection` for the audit log, never in the answer.
 */
export class AccessTokenError extends Error {
  readonly rejection: AccessTokenRejection;

  constructor(
    readonly reason: AccessTokenFailure,
    options: { cause?: unknown; rejection?: AccessTokenRejection } = {},
  ) {
    super(reason === 'expired' ? 'access token expired' : 'access token invalid', options);
    this.name = 'AccessTokenError';
    this.rejection = options.rejection ?? (reason === 'expired' ? 'expired' : 'malformed');
  }
}

/** jose's error classes, by what they say about a presented token (JWTExpired before the claim failures it belongs to). */
function rejectionOf(error: unknown): AccessTokenRejection {
  if (error instanceof errors.JWTExpired) return 'expired';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'algorithm_not_allowed';
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) return 'unknown_key';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'invalid_signature';
  if (error instanceof errors.JWTClaimValidationFailed) return 'invalid_claims';
  return 'malformed';
}

interface VerifiedEntry {
  readonly claims: VerifiedAccessToken;
  readonly kid: string;
  readonly expiresAtSeconds: number;
}

/** Issues and verifies access tokens: EdDSA JWTs, `typ: at+jwt`. */
export class AccessTokens {
  /**
   * Tokens this instance verified, by their exact text, so a token presented again skips the
   * signature check: the same bytes verify the same way under the same key. Reused only while
   * that key is still trusted (the fresh key set holds it) and re-checked against the clock, so
   * a retired key or an expiry takes effect as before. The session is still checked per request.
   */
  private readonly verified = new Map<string, VerifiedEntry>();

  constructor(
    private readonly keys: SigningKeysService,
    private readonly clock: Clock,
    private readonly options: AccessTokensOptions,
  ) {
    if (!Number.isInteger(options.ttlSeconds) || options.ttlSeconds <= 0 || options.ttlSeconds > MAX_TTL_SECONDS) {
      throw new RangeError(`ttlSeconds must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS}, got ${options.ttlSeconds}`);
    }
    // Keys are retired once tokens of this lifetime have expired; a longer lifetime would see its
    // tokens rejected early, after a rotation.
    if (options.ttlSeconds > keys.accessTokenTtlSeconds) {
      throw new RangeError(
        `ttlSeconds (${options.ttlSeconds}) exceeds the signing keys' accessTokenTtlSeconds (${keys.accessTokenTtlSeconds})`,
      );
    }
  }

  async sign(claims: AccessTokenClaims): Promise<SignedAccessToken> {
    const { kid, privateKey } = await this.keys.signingKey();
    // Explicit times from the injected clock: jose's defaults would read Date.now().
    const issuedAt = Math.floor(this.clock.now().getTime() / 1000);
    const expiresAt = issuedAt + this.options.ttlSeconds;
    const jti = randomUUID();
    const token = await new SignJWT({ sid: claims.sessionId, roles: [...claims.roles], aal: claims.aal, amr: [...claims.amr] })
      .setProtectedHeader({ alg: 'EdDSA', kid, typ: ACCESS_TOKEN_TYPE })
      .setIssuer(this.options.issuer)
      .setAudience(this.options.audience)
      .setSubject(claims.userId)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .setJti(jti)
      .sign(privateKey);
    return { token, expiresAt: new Date(expiresAt * 1000), jti };
  }

  /**
   * Verifies the signature before any claim is read (ASVS 9.1.1), with the algorithm, issuer,
   * audience and type pinned. Throws AccessTokenError for any token that is not accepted.
   */
  async verify(token: string): Promise<VerifiedAccessToken> {
    const known = this.verified.get(token);
    if (known && this.keys.stillTrusts(known.kid)) {
      // jose's own rule: expired when exp <= now - tolerance.
      if (known.expiresAtSeconds <= Math.floor(this.clock.now().getTime() / 1000) - CLOCK_TOLERANCE_SECONDS) {
        this.verified.delete(token);
        throw new AccessTokenError('expired');
      }
      return known.claims;
    }
    let payload: JWTPayload;
    let kid: string | undefined;
    try {
      ({
        payload,
        protectedHeader: { kid },
      } = await jwtVerify(token, this.keys.verificationKeys(), {
        algorithms: ['EdDSA'],
        issuer: this.options.issuer,
        audience: this.options.audience,
        typ: ACCESS_TOKEN_TYPE,
        // jose checks exp only when present (docs/security.md#tok-2): without this a token lacking exp never expires.
        requiredClaims: ['exp', 'iat', 'sub', 'jti', 'sid'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: this.clock.now(),
      }));
    } catch (error) {
      // The database being down says nothing about the token; let it surface as an outage.
      if (error instanceof SigningKeysUnavailableError) throw error;
      // jose raises JWTExpired only after the signature, issuer, audience and type have passed.
      const rejection = rejectionOf(error);
      throw new AccessTokenError(rejection === 'expired' ? 'expired' : 'invalid', { cause: error, rejection });
    }
    const claims = verifiedClaims(payload);
    // nbf would make a later presentation differ; Bastion's tokens carry none, so one that does is never remembered.
    if (kid !== undefined && payload.nbf === undefined) this.remember(token, { claims, kid, expiresAtSeconds: payload.exp! });
    return claims;
  }

  private remember(token: string, entry: VerifiedEntry): void {
    if (this.verified.size >= VERIFIED_TOKENS) {
      // The oldest first (a Map keeps insertion order); expired ones go whenever met.
      this.verified.delete(this.verified.keys().next().value as string);
    }
    this.verified.set(token, entry);
  }
}

/** jose checks presence and the registered claims' dates; the types of our own claims are ours to check. */
function verifiedClaims(payload: JWTPayload): VerifiedAccessToken {
  const { sub, sid, roles, aal, amr, jti, exp } = payload;
  if (
    typeof sub !== 'string' ||
    sub === '' ||
    typeof sid !== 'string' ||
    sid === '' ||
    typeof jti !== 'string' ||
    jti === '' ||
    typeof exp !== 'number' ||
    !isStringArray(roles) ||
    !isStringArray(amr) ||
    (aal !== 1 && aal !== 2)
  ) {
    throw new AccessTokenError('invalid', {
      cause: new TypeError('access token claims have the wrong types'),
      rejection: 'invalid_claims',
    });
  }
  return { userId: sub, sessionId: sid, roles, aal, amr, jti, expiresAt: new Date(exp * 1000) };
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}
