import { randomUUID } from 'node:crypto';
import { SignJWT, base64url, generateKeyPair, type JWK, type JWTHeaderParameters } from 'jose';
import type { TestServer } from '../../support/test-server';

/**
 * Forged access tokens, made as tests/integration/token-attacks.test.ts makes them (its helpers,
 * trimmed): a payload that is right in every claim for a live session, so that only the named
 * part of each forgery is wrong.
 */

export interface TokenSubject {
  readonly userId: string;
  readonly sessionId: string;
}

export type TokenMaker = () => Promise<string>;

async function publishedKey(server: TestServer): Promise<JWK> {
  const response = await fetch(`${server.origin}/.well-known/jwks.json`);
  const { keys } = (await response.json()) as { keys: JWK[] };
  if (keys.length !== 1) throw new Error(`expected one published key, got ${keys.length}`);
  return keys[0];
}

/** The claims of a valid access token of `subject`'s live session. */
function validClaims(server: TestServer, subject: TokenSubject): Record<string, unknown> {
  const now = Math.floor(server.clock.now().getTime() / 1000);
  return {
    iss: server.config.publicUrl,
    aud: server.config.tokenAudience,
    sub: subject.userId,
    sid: subject.sessionId,
    roles: ['user', 'admin'],
    aal: 2,
    amr: ['pwd', 'otp'],
    iat: now,
    exp: now + server.config.accessTokenTtlSeconds,
    jti: randomUUID(),
  };
}

function signed(
  server: TestServer,
  subject: TokenSubject,
  header: JWTHeaderParameters,
  key: Parameters<SignJWT['sign']>[0],
): Promise<string> {
  return new SignJWT(validClaims(server, subject)).setProtectedHeader({ typ: 'at+jwt', ...header }).sign(key);
}

/** Forgeries of a token for `subject`'s live session, by what is wrong with them. */
export function forgedTokenMakers(server: TestServer, subject: TokenSubject): Record<string, TokenMaker> {
  return {
    'alg none': async () => {
      const { kid } = await publishedKey(server);
      const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid }));
      return `${header}.${base64url.encode(JSON.stringify(validClaims(server, subject)))}.`;
    },
    'HS256 keyed with the public key': async () => {
      const jwk = await publishedKey(server);
      return signed(server, subject, { alg: 'HS256', kid: jwk.kid }, base64url.decode(String(jwk.x)));
    },
    'a foreign Ed25519 key under the real kid': async () => {
      const { kid } = await publishedKey(server);
      return signed(server, subject, { alg: 'EdDSA', kid }, (await generateKeyPair('EdDSA')).privateKey);
    },
  };
}
