import { randomUUID } from 'node:crypto';
import { SignJWT, base64url, exportJWK, generateKeyPair, type CryptoKey, type JWK, type JWTHeaderParameters, type KeyObject } from 'jose';
import { GraphQLResponse, SIGN_IN, TestAccount, makeClient, makeUser } from '../support/factories';
import { TestServer, startTestServer } from '../support/test-server';

/**
 * Token attacks through real HTTP (docs/security.md#tok-2, #tok-3): every
 * bad token fails the whole request with 401, even on a public field such as serverInfo.
 */
describe('access-token attacks over HTTP', () => {
  let server: TestServer;
  let account: TestAccount;
  let sessionId: string;

  beforeAll(async () => {
    server = await startTestServer();
    account = await makeUser(server);
    const { body } = await account.client.request<{ mySessions: { id: string; current: boolean }[] }>('{ mySessions { id current } }');
    sessionId = body.data!.mySessions.find((session) => session.current)!.id;
  });
  afterAll(() => server.close());

  const PUBLIC_QUERY = '{ serverInfo { name } }';
  const bearer = (token: string) => `Bearer ${token}`;
  const send = (authorization: string, query = PUBLIC_QUERY) => makeClient(server, { authorization }).request(query);
  /** The parts of a response the conventions fix: status, every error code, and whether data was sent at all. */
  const outcome = ({ status, body }: GraphQLResponse) => ({
    status,
    codes: body.errors?.map((error) => error.extensions?.code),
    hasData: 'data' in body,
  });
  const nowSeconds = () => Math.floor(server.clock.now().getTime() / 1000);
  /** Only the test looks inside a token this way; the server never trusts an unverified header. */
  const headerOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString('utf8')) as JWTHeaderParameters;

  async function publishedJwks(): Promise<JWK[]> {
    const response = await fetch(`${server.origin}/.well-known/jwks.json`);
    expect(response.status).toBe(200);
    return ((await response.json()) as { keys: JWK[] }).keys;
  }

  async function publishedKey(): Promise<JWK> {
    const keys = await publishedJwks();
    expect(keys).toHaveLength(1);
    return keys[0];
  }

  interface Forgery {
    readonly header?: Partial<JWTHeaderParameters>;
    readonly claims?: Record<string, unknown>;
    readonly omit?: readonly string[];
    /** Defaults to the server's real current signing key (and its kid). */
    readonly key?: CryptoKey | KeyObject | Uint8Array;
    readonly kid?: string;
  }

  /** The payload of a valid token for `account`'s live session, unless told otherwise. */
  function payload({ claims = {}, omit = [] }: Forgery = {}): Record<string, unknown> {
    const now = nowSeconds();
    const body: Record<string, unknown> = {
      iss: server.config.publicUrl,
      aud: server.config.tokenAudience,
      sub: account.id,
      sid: sessionId,
      roles: ['user'],
      aal: 1,
      amr: ['pwd'],
      iat: now,
      exp: now + server.config.accessTokenTtlSeconds,
      jti: randomUUID(),
      ...claims,
    };
    for (const claim of omit) delete body[claim];
    return body;
  }

  /** A token built by hand with jose, signed by the server's real private key unless told otherwise: only the named part differs. */
  async function forge(forgery: Forgery = {}): Promise<string> {
    const real = await server.bastion.services.signingKeys.signingKey();
    return new SignJWT(payload(forgery))
      .setProtectedHeader({ alg: 'EdDSA', kid: forgery.kid ?? real.kid, typ: 'at+jwt', ...forgery.header })
      .sign(forgery.key ?? real.privateKey);
  }

  describe('controls', () => {
    it('serves the public field without a header, and with a valid token (200)', async () => {
      const anonymous = await makeClient(server).request<{ serverInfo: { name: string } }>(PUBLIC_QUERY);
      expect(anonymous.status).toBe(200);
      expect(anonymous.body.errors).toBeUndefined();
      expect(typeof anonymous.body.data?.serverInfo.name).toBe('string');

      const signedIn = await account.client.request<{ serverInfo: { name: string } }>(PUBLIC_QUERY);
      expect(signedIn.status).toBe(200);
      expect(signedIn.body).toEqual(anonymous.body);
      const me = await account.client.request('{ me { id } }');
      expect(me).toMatchObject({ status: 200, body: { data: { me: { id: account.id } } } });
    });

    it('accepts a hand-forged token with the real key and the default claims: the baseline every variant below differs from by one thing', async () => {
      const token = await forge();
      expect(headerOf(token)).toEqual({ alg: 'EdDSA', kid: (await publishedKey()).kid, typ: 'at+jwt' });
      const { status, body } = await send(bearer(token), '{ me { id } serverInfo { name } }');
      expect(status).toBe(200);
      expect(body.errors).toBeUndefined();
      expect(body.data).toMatchObject({ me: { id: account.id } });
    });

    it('the JWKS names the kid the server signs with', async () => {
      expect((await publishedKey()).kid).toBe(headerOf(account.accessToken).kid);
    });
  });

  const attacks: [description: string, make: () => Promise<string>][] = [
    [
      'signed by a freshly generated Ed25519 key under the real kid',
      async () => {
        const { kid } = await publishedKey();
        return forge({ kid, key: (await generateKeyPair('EdDSA')).privateKey });
      },
    ],
    [
      'alg none (unsecured JWT with the real kid and valid claims)',
      async () => {
        const { kid } = await publishedKey();
        const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid }));
        return `${header}.${base64url.encode(JSON.stringify(payload()))}.`;
      },
    ],
    [
      'HS256 keyed with the public key bytes (the JWK x, decoded)',
      async () => {
        const jwk = await publishedKey();
        return forge({ header: { alg: 'HS256' }, kid: jwk.kid, key: base64url.decode(String(jwk.x)) });
      },
    ],
    [
      'HS256 keyed with the raw JSON of the published JWK',
      async () => {
        const jwk = await publishedKey();
        return forge({ header: { alg: 'HS256' }, kid: jwk.kid, key: new TextEncoder().encode(JSON.stringify(jwk)) });
      },
    ],
    ['for another audience (real key)', () => forge({ claims: { aud: 'some-other-api' } })],
    ['from another issuer (real key)', () => forge({ claims: { iss: 'https://evil.example' } })],
    ['of typ JWT (real key)', () => forge({ header: { typ: 'JWT' } })],
    ['without exp (real key)', () => forge({ omit: ['exp'] })],
    ['without sid (real key)', () => forge({ omit: ['sid'] })],
    [
      "signed by the attacker's key, which it embeds as a jwk header",
      async () => {
        const attacker = await generateKeyPair('EdDSA', { extractable: true });
        return forge({ header: { jwk: await exportJWK(attacker.publicKey) }, key: attacker.privateKey });
      },
    ],
    ['whose sid is not a session id at all (real key)', () => forge({ claims: { sid: 'not-a-uuid' } })],
    ['whose sub is not a user id (real key, live sid)', () => forge({ claims: { sub: 'not-a-uuid' } })],
    ['for a session id that does not exist (real key)', () => forge({ claims: { sid: randomUUID() } })],
    [
      "for another user's live session (real key, sub of this account)",
      async () => {
        const other = await makeUser(server);
        const { body } = await other.client.request<{ mySessions: { id: string }[] }>('{ mySessions { id } }');
        return forge({ claims: { sid: body.data!.mySessions[0].id } });
      },
    ],
  ];

  it.each(attacks)('a token %s gets 401 UNAUTHENTICATED and no data, even on a public field', async (_description, make) => {
    const { status, body } = await send(bearer(await make()));
    expect({ status, codes: body.errors?.map((error) => error.extensions?.code), hasData: 'data' in body }).toEqual({
      status: 401,
      codes: ['UNAUTHENTICATED'],
      hasData: false,
    });
  });

  it('an expired but otherwise valid token gets 401 TOKEN_EXPIRED and no data', async () => {
    const issuedAt = nowSeconds() - server.config.accessTokenTtlSeconds - 60;
    const token = await forge({ claims: { iat: issuedAt, exp: issuedAt + server.config.accessTokenTtlSeconds } });
    expect(outcome(await send(bearer(token)))).toEqual({ status: 401, codes: ['TOKEN_EXPIRED'], hasData: false });
  });

  describe('signing-key rotation', () => {
    const ME = '{ me { id } }';
    const kidsOf = async () => (await publishedJwks()).map((jwk) => jwk.kid).sort();

    it('keeps old tokens working through the overlap, signs new ones with the new key, and refuses the old key once it is retired', async () => {
      const keys = server.bastion.services.signingKeys;
      const before = await makeUser(server);
      const oldKey = await keys.signingKey();
      expect(headerOf(before.accessToken).kid).toBe(oldKey.kid);

      const rotated = await keys.rotate();
      expect(rotated.kid).not.toBe(oldKey.kid);

      // The overlap: the token signed before the rotation still works.
      expect(await before.client.request(ME)).toMatchObject({ status: 200, body: { data: { me: { id: before.id } } } });

      // A new sign-in is signed with the new key, and works.
      const signIn = await makeClient(server).request<{ signIn: { accessToken: string } }>(SIGN_IN, {
        input: { email: before.email, password: before.password },
      });
      const fresh = signIn.body.data!.signIn.accessToken;
      expect(headerOf(fresh).kid).toBe(rotated.kid);
      expect(await send(bearer(fresh), ME)).toMatchObject({ status: 200, body: { data: { me: { id: before.id } } } });
      expect(await kidsOf()).toEqual([oldKey.kid, rotated.kid].sort());
      const { body } = await makeClient(server, { authorization: bearer(fresh) }).request<{
        mySessions: { id: string; current: boolean }[];
      }>('{ mySessions { id current } }');
      const liveSession = body.data!.mySessions.find((session) => session.current)!.id;

      // Past every token the old key signed (TTL + the 60 s margin), and past the 30 s key cache.
      server.clock.advance((server.config.accessTokenTtlSeconds + 60 + 1) * 1000);
      // The old key dropped out of verification by itself (no retireExpired() call needed): its
      // tokens are now simply not trusted, which a running server must do without a restart.
      expect(outcome(await before.client.request(ME))).toEqual({ status: 401, codes: ['UNAUTHENTICATED'], hasData: false });
      expect(await kidsOf()).toEqual([rotated.kid]);
      expect(await keys.retireExpired()).toBe(1);
      expect(await kidsOf()).toEqual([rotated.kid]);

      // A token with fresh times, signed by the old key for the live session of `before`: refused.
      const claims = { sub: before.id, sid: liveSession };
      const byOldKey = await forge({ claims, kid: oldKey.kid, key: oldKey.privateKey });
      expect(outcome(await send(bearer(byOldKey)))).toEqual({ status: 401, codes: ['UNAUTHENTICATED'], hasData: false });
      // The control: the very same claims signed by the current key are accepted.
      const byNewKey = await forge({ claims });
      expect(headerOf(byNewKey).kid).toBe(rotated.kid);
      expect(await send(bearer(byNewKey), ME)).toMatchObject({ status: 200, body: { data: { me: { id: before.id } } } });
    });
  });
});
