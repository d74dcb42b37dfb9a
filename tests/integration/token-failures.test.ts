import { randomBytes, randomUUID } from 'node:crypto';
import { SignJWT, generateKeyPair } from 'jose';
import { REFRESH, TestAccount, codesOf, emailedToken, makeClient, makeUser } from '../support/factories';
import { TestServer, startTestServer } from '../support/test-server';

const PROBE_IP = '203.0.113.66';
const OTHER_IP = '198.51.100.23';
const PUBLIC_QUERY = '{ serverInfo { name } }';

interface RejectedRow {
  outcome: string;
  target_type: string;
  metadata: { credential: string; reason: string; hits: number; subjects: number; top: { subject: string; hits: number }[] };
}

/**
 * Refused tokens become aggregated `token_rejected` audit rows (ASVS 16.3.1): one per credential
 * and reason per minute, with the hits and the busiest client addresses, never the token.
 */
describe('token failures in the audit log', () => {
  let server: TestServer;
  let account: TestAccount;
  /** Every token this file sends: none may appear anywhere in the audit log. */
  const presented: string[] = [];

  beforeAll(async () => {
    // Loopback is a trusted proxy here, so each probe can come from an address of its own.
    server = await startTestServer({ config: { trustProxy: ['127.0.0.1', '::1'] } });
    account = await makeUser(server);
  });
  afterAll(() => server?.close());

  const from = (address: string, authorization?: string) =>
    makeClient(server, { 'x-forwarded-for': address, ...(authorization ? { authorization: `Bearer ${authorization}` } : {}) });
  const nowSeconds = () => Math.floor(server.clock.now().getTime() / 1000);

  async function forge(header: { alg: string; kid: string; typ?: string }, key: Parameters<SignJWT['sign']>[0]) {
    const sessions = await account.client.request<{ mySessions: { id: string; current: boolean }[] }>('{ mySessions { id current } }');
    const token = await new SignJWT({
      sid: sessions.body.data!.mySessions.find((session) => session.current)!.id,
      roles: ['user'],
      aal: 1,
      amr: ['pwd'],
    })
      .setProtectedHeader({ typ: 'at+jwt', ...header })
      .setIssuer(server.config.publicUrl)
      .setAudience(server.config.tokenAudience)
      .setSubject(account.id)
      .setIssuedAt(nowSeconds())
      .setExpirationTime(nowSeconds() + 600)
      .setJti(randomUUID())
      .sign(key);
    presented.push(token);
    return token;
  }

  async function rejectedRows(): Promise<RejectedRow[]> {
    await server.bastion.services.tokenFailures.flush();
    return server.bastion.database.dataSource.query(
      "SELECT outcome, target_type, metadata FROM audit_events WHERE action = 'token_rejected' ORDER BY id",
    );
  }

  /** Hits per `credential reason` over every row so far (a minute's timer may have split a window in two). */
  async function hitsByReason(): Promise<Record<string, number>> {
    const totals: Record<string, number> = {};
    for (const row of await rejectedRows()) {
      const kind = `${row.metadata.credential} ${row.metadata.reason}`;
      totals[kind] = (totals[kind] ?? 0) + row.metadata.hits;
    }
    return totals;
  }

  it('audits forged, malformed and foreign access tokens by reason, with the probing address, and answers 401 as before', async () => {
    const { kid, privateKey: realKey } = await server.bastion.services.signingKeys.signingKey();
    const attacker = await generateKeyPair('Ed25519');
    const forgeries = {
      invalid_signature: await forge({ alg: 'EdDSA', kid }, attacker.privateKey),
      unknown_key: await forge({ alg: 'EdDSA', kid: 'attacker-key' }, attacker.privateKey),
      algorithm_not_allowed: await forge({ alg: 'HS256', kid }, new TextEncoder().encode('x'.repeat(32))),
      // Signed by the real key, but not an access token: an ID token's type.
      invalid_claims: await forge({ alg: 'EdDSA', kid, typ: 'JWT' }, realKey),
    };
    const before = await hitsByReason();
    for (const token of Object.values(forgeries)) {
      for (const address of [PROBE_IP, PROBE_IP, OTHER_IP]) {
        const response = await from(address, token).request(PUBLIC_QUERY);
        expect([response.status, codesOf(response)]).toEqual([401, ['UNAUTHENTICATED']]);
      }
    }
    const malformed = await makeClient(server, { 'x-forwarded-for': PROBE_IP, authorization: 'Bearer not-a-jwt' }).request(PUBLIC_QUERY);
    expect(codesOf(malformed)).toEqual(['UNAUTHENTICATED']);

    const after = await hitsByReason();
    for (const reason of Object.keys(forgeries))
      expect((after[`access_token ${reason}`] ?? 0) - (before[`access_token ${reason}`] ?? 0)).toBe(3);
    expect((after['access_token malformed'] ?? 0) - (before['access_token malformed'] ?? 0)).toBe(1);
    const unknownKey = (await rejectedRows()).filter((row) => row.metadata.reason === 'unknown_key').at(-1)!;
    expect(unknownKey).toMatchObject({
      outcome: 'denied',
      target_type: 'credential',
      metadata: {
        credential: 'access_token',
        hits: 3,
        subjects: 2,
        top: [
          { subject: PROBE_IP, hits: 2 },
          { subject: OTHER_IP, hits: 1 },
        ],
      },
    });
    // A valid token is not counted.
    expect((await account.client.request(PUBLIC_QUERY)).status).toBe(200);
    expect(await hitsByReason()).toEqual(after);
  });

  it("audits an ended session's token and refresh token, an unknown refresh token and an expired session", async () => {
    const leaving = await makeUser(server);
    const before = await hitsByReason();
    expect(codesOf(await leaving.client.request('mutation { signOut }'))).toBeUndefined();
    expect(codesOf(await from(PROBE_IP, leaving.accessToken).request(PUBLIC_QUERY))).toEqual(['UNAUTHENTICATED']);
    expect(codesOf(await from(PROBE_IP).request(REFRESH, { input: { refreshToken: leaving.refreshToken } }))).toEqual(['UNAUTHENTICATED']);
    const guessed = randomBytes(32).toString('base64url');
    presented.push(guessed, leaving.accessToken, leaving.refreshToken);
    expect(codesOf(await from(PROBE_IP).request(REFRESH, { input: { refreshToken: guessed } }))).toEqual(['UNAUTHENTICATED']);

    const idle = await makeUser(server);
    presented.push(idle.refreshToken);
    server.clock.advance((server.config.refreshIdleDays + 1) * 24 * 60 * 60 * 1000);
    expect(codesOf(await from(PROBE_IP).request(REFRESH, { input: { refreshToken: idle.refreshToken } }))).toEqual(['UNAUTHENTICATED']);

    const after = await hitsByReason();
    const added = (kind: string) => (after[kind] ?? 0) - (before[kind] ?? 0);
    expect({
      accessRevoked: added('access_token revoked_session'),
      refreshRevoked: added('refresh_token revoked_session'),
      unknown: added('refresh_token unknown_refresh_token'),
      expired: added('refresh_token expired_session'),
    }).toEqual({ accessRevoked: 1, refreshRevoked: 1, unknown: 1, expired: 1 });
  });

  it('audits an expired access token only when the request is refused for it, not when it comes with refreshSession', async () => {
    const user = await makeUser(server);
    presented.push(user.accessToken, user.refreshToken);
    server.clock.advance((server.config.accessTokenTtlSeconds + 60) * 1000);
    const before = await hitsByReason();
    const refreshed = await from(PROBE_IP, user.accessToken).request(REFRESH, { input: { refreshToken: user.refreshToken } });
    expect(codesOf(refreshed)).toBeUndefined();
    expect(await hitsByReason()).toEqual(before);
    const refused = await from(PROBE_IP, user.accessToken).request('{ me { id } }');
    expect([refused.status, codesOf(refused)]).toEqual([401, ['TOKEN_EXPIRED']]);
    expect((await hitsByReason())['access_token expired'] ?? 0).toBe((before['access_token expired'] ?? 0) + 1);
  });

  it('audits bad password-reset and email-verification links, and never stores a presented token', async () => {
    const before = await hitsByReason();
    const badLink = randomBytes(32).toString('base64url');
    presented.push(badLink);
    const reset = await from(PROBE_IP).request('mutation($input: ResetPasswordInput!) { resetPassword(input: $input) }', {
      input: { token: badLink, newPassword: 'a fresh and long passphrase 42' },
    });
    expect(codesOf(reset)).toEqual(['BAD_USER_INPUT']);
    const verify = await from(PROBE_IP).request('mutation($input: VerifyEmailInput!) { verifyEmail(input: $input) }', {
      input: { token: badLink },
    });
    expect(codesOf(verify)).toEqual(['BAD_USER_INPUT']);
    // A good link is not a failure.
    const fresh = await makeUser(server);
    const link = await emailedToken(server, fresh.email, 'verify-email');
    presented.push(link);
    expect(
      codesOf(
        await from(PROBE_IP).request('mutation($input: VerifyEmailInput!) { verifyEmail(input: $input) }', { input: { token: link } }),
      ),
    ).toBe(undefined);

    const after = await hitsByReason();
    expect((after['reset_link bad_reset_token'] ?? 0) - (before['reset_link bad_reset_token'] ?? 0)).toBe(1);
    expect((after['verification_link bad_verification_token'] ?? 0) - (before['verification_link bad_verification_token'] ?? 0)).toBe(1);

    const table = JSON.stringify(await server.bastion.database.dataSource.query('SELECT * FROM audit_events'));
    for (const token of presented) {
      expect(table).not.toContain(token);
      // Nor any recognisable piece of one (a JWT's signature, a refresh token's first half).
      expect(table).not.toContain(token.split('.').at(-1)!.slice(0, 20));
    }
  });
});
