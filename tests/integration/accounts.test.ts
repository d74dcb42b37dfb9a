import { createLocalJWKSet, jwtVerify } from 'jose';
import { User } from '../../src/accounts/user.entity';
import { verifyAuditChain } from '../../src/audit/audit-log';
import { blindIndexOf } from '../../src/crypto/encrypted-column';
import { REFRESH, SIGN_IN, SIGN_UP, emailedToken, makeClient, makeUser, strongPassword } from '../support/factories';
import { eventually } from '../support/eventually';
import { TestServer, startTestServer } from '../support/test-server';
import { testKeyring } from '../support/test-keys';

type Payload = {
  accessToken: string;
  refreshToken: string;
  accessTokenExpiresAt: string;
  user: { id: string; email: string; emailVerified: boolean; roles: string[]; mfaEnabled: boolean };
};

describe('accounts over GraphQL', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { publicUrl: 'myapp://auth' } });
  });
  afterAll(() => server.close());

  const anonymous = () => makeClient(server);
  const withToken = (token: string) => makeClient(server, { authorization: `Bearer ${token}` });
  const codeOf = (body: { errors?: { extensions?: Record<string, unknown> }[] }) => body.errors?.[0]?.extensions?.code;
  const countUsers = async () => Number((await server.bastion.database.dataSource.query('SELECT count(*) FROM users'))[0].count);

  describe('signUp', () => {
    it('creates the account, signs it in, and the token works for me', async () => {
      const email = 'Grace.Hopper@Example.com';
      const { body } = await anonymous().request<{ signUp: Payload }>(SIGN_UP, { input: { email, password: strongPassword() } });
      const payload = body.data!.signUp;
      expect(payload.user).toMatchObject({ email, emailVerified: false, roles: ['user'], mfaEnabled: false });
      expect(new Date(payload.accessTokenExpiresAt).getTime()).toBe(server.clock.now().getTime() + 900_000);
      const me = await withToken(payload.accessToken).request<{ me: { id: string; email: string } }>('{ me { id email } }');
      expect(me.body.data?.me).toEqual({ id: payload.user.id, email });
    });

    it('refuses a weak password with the reason, and creates nothing', async () => {
      const before = await countUsers();
      const short = await anonymous().request(SIGN_UP, { input: { email: 'short@example.com', password: 'fourteen-chars' } });
      expect(codeOf(short.body)).toBe('BAD_USER_INPUT');
      expect(short.body.errors?.[0].message).toBe('Use at least 15 characters.');
      const common = await anonymous().request(SIGN_UP, { input: { email: 'common@example.com', password: 'bastionbastion2025' } });
      expect(codeOf(common.body)).toBe('BAD_USER_INPUT');
      const bad = await anonymous().request(SIGN_UP, { input: { email: 'not-an-email', password: strongPassword() } });
      expect(bad.body.errors?.[0]).toMatchObject({
        message: 'Enter a valid email address.',
        extensions: { code: 'BAD_USER_INPUT', field: 'email' },
      });
      // Invisible or broken characters that could make one address pass for another in an admin's list.
      for (const email of [
        'nul\u0000@example.com',
        'ad\u202Emin@example.com',
        'zero\u200Bwidth@example.com',
        'lone\uD800@example.com',
        'tab\u0009x@example.com',
        'ar\u061Cmark@example.com',
        'soft\u00ADhyphen@example.com',
        'tag\u{E0041}@example.com',
      ]) {
        const hidden = await anonymous().request(SIGN_UP, { input: { email, password: strongPassword() } });
        expect({ email, code: codeOf(hidden.body) }).toEqual({ email, code: 'BAD_USER_INPUT' });
      }
      expect(await countUsers()).toBe(before);
      // ZWNJ is part of Persian writing: an internationalised address that uses it signs up.
      const persian = await anonymous().request(SIGN_UP, { input: { email: 'می\u200Cخواهم@example.ir', password: strongPassword() } });
      expect(persian.body.errors).toBeUndefined();
    });

    it('refuses a password with a control character (a line break from a pipe or a paste), and creates nothing', async () => {
      const before = await countUsers();
      for (const password of [`${strongPassword()}\n${strongPassword()}`, `${strongPassword()}\t`, `\u001b${strongPassword()}`]) {
        const { body } = await anonymous().request(SIGN_UP, { input: { email: 'control@example.com', password } });
        expect(body.errors?.[0]).toMatchObject({
          message: 'The password contains a control character (a line break, tab or similar); leave it out.',
          extensions: { code: 'BAD_USER_INPUT', field: 'password' },
        });
      }
      expect(await countUsers()).toBe(before);
    });

    it('answers CONFLICT for an existing email in any case, without saying more', async () => {
      const { email } = await makeUser(server);
      const { body } = await anonymous().request(SIGN_UP, { input: { email: `  ${email.toUpperCase()} `, password: strongPassword() } });
      expect(codeOf(body)).toBe('CONFLICT');
      expect(body.errors?.[0].message).not.toContain(email);
    });
  });

  describe('signIn', () => {
    it('signs in with the right password, with a normalised email', async () => {
      const account = await makeUser(server);
      const { body } = await anonymous().request<{ signIn: Payload & { __typename: string } }>(SIGN_IN, {
        input: { email: account.email.toUpperCase(), password: account.password },
      });
      expect(body.data?.signIn.__typename).toBe('AuthPayload');
      expect(body.data?.signIn.user.id).toBe(account.id);
    });

    it('gives the same INVALID_CREDENTIALS for a wrong password and an unknown email', async () => {
      const account = await makeUser(server);
      const wrong = await anonymous().request(SIGN_IN, { input: { email: account.email, password: 'not-the-password-at-all' } });
      const unknown = await anonymous().request(SIGN_IN, {
        input: { email: 'nobody-here@example.com', password: 'not-the-password-at-all' },
      });
      expect(wrong.body.errors).toEqual(unknown.body.errors);
      expect(codeOf(wrong.body)).toBe('INVALID_CREDENTIALS');
      expect(wrong.body.data).toBeNull();
    });

    it('counts every attempt, however they arrive: parallel guesses hit RATE_LIMITED with retryAfterSeconds', async () => {
      const account = await makeUser(server);
      const guesses = await Promise.all(
        Array.from({ length: 9 }, (_unused, index) =>
          anonymous().request(SIGN_IN, { input: { email: account.email, password: `wrong-password-number-${index}` } }),
        ),
      );
      const codes = guesses.map((guess) => codeOf(guess.body));
      expect(codes.filter((code) => code === 'INVALID_CREDENTIALS').length).toBeLessThanOrEqual(5);
      expect(codes).toContain('RATE_LIMITED');
      const limited = guesses.find((guess) => codeOf(guess.body) === 'RATE_LIMITED')!.body.errors![0];
      expect(limited.extensions?.retryAfterSeconds).toBeGreaterThan(0);
      // Even the right password waits now: the brake is per account and address, not per guess.
      const right = await anonymous().request(SIGN_IN, { input: { email: account.email, password: account.password } });
      expect(codeOf(right.body)).toBe('RATE_LIMITED');
      server.clock.advance(20 * 60 * 1000);
      const later = await anonymous().request<{ signIn: { __typename: string } }>(SIGN_IN, {
        input: { email: account.email, password: account.password },
      });
      expect(later.body.data?.signIn.__typename).toBe('AuthPayload');
    });

    it('aliased sign-ins in one request stop at the first failure, so one request is one guess', async () => {
      const account = await makeUser(server);
      // 15 aliases: the most a query may have (BASTION_GRAPHQL_MAX_ALIASES); more are refused before any runs.
      const aliases = Array.from(
        { length: 15 },
        (_unused, index) =>
          `a${index}: signIn(input: { email: "${account.email}", password: "wrong-password-number-${index}" }) { __typename }`,
      ).join('\n');
      const { body } = await anonymous().request(`mutation { ${aliases} }`);
      expect(body.data).toBeNull();
      expect(body.errors?.map((error) => error.extensions?.code)).toEqual(['INVALID_CREDENTIALS']);
      const key = `account-ip:${blindIndexOf(User, 'email', account.email)}:127.0.0.1`;
      const [{ failures }] = await server.bastion.database.dataSource.query('SELECT failures FROM login_throttles WHERE key = $1', [key]);
      expect(failures).toBe(1);
    });
  });

  describe('access tokens on every request', () => {
    it('me is null without a token', async () => {
      expect((await anonymous().request('{ me { id } }')).body).toEqual({ data: { me: null } });
    });

    it('a malformed or forged token fails the whole request with 401 UNAUTHENTICATED', async () => {
      const account = await makeUser(server);
      for (const header of ['Bearer not-a-jwt', 'Basic abc', `Bearer ${account.accessToken.slice(0, -4)}AAAA`]) {
        const { status, body } = await makeClient(server, { authorization: header }).request('{ serverInfo { name } }');
        expect(status).toBe(401);
        expect(codeOf(body)).toBe('UNAUTHENTICATED');
        expect(body.data).toBeUndefined();
      }
    });

    it('an expired token gets 401 TOKEN_EXPIRED, but can still be sent along with refreshSession', async () => {
      const account = await makeUser(server);
      server.clock.advance(16 * 60 * 1000);
      const { status, body } = await account.client.request('{ me { id } }');
      expect(status).toBe(401);
      expect(codeOf(body)).toBe('TOKEN_EXPIRED');
      expect((await account.client.request('{ serverInfo { name } }')).status).toBe(401);
      // Apps often attach the header to every call: the refresh the error asks for must go through.
      const refreshed = await account.client.request<{ refreshSession: Payload }>(REFRESH, {
        input: { refreshToken: account.refreshToken },
      });
      expect(refreshed.status).toBe(200);
      expect(refreshed.body.data?.refreshSession.user.id).toBe(account.id);
      const mixed = await account.client.request(
        `mutation { refreshSession(input: { refreshToken: "${refreshed.body.data!.refreshSession.refreshToken}" }) { accessToken } signOut }`,
      );
      expect(mixed.status).toBe(401);
      expect(codeOf(mixed.body)).toBe('TOKEN_EXPIRED');
    });

    it('verifies with a plain jose client against /.well-known/jwks.json', async () => {
      const account = await makeUser(server);
      const response = await fetch(`${server.origin}/.well-known/jwks.json`);
      const jwks = (await response.json()) as { keys: Record<string, unknown>[] };
      expect(jwks.keys.length).toBeGreaterThan(0);
      expect(JSON.stringify(jwks)).not.toContain('"d"');
      const { payload, protectedHeader } = await jwtVerify(account.accessToken, createLocalJWKSet(jwks as never), {
        algorithms: ['EdDSA'],
        issuer: 'myapp://auth',
        audience: 'bastion-api',
        typ: 'at+jwt',
        currentDate: server.clock.now(),
      });
      expect(protectedHeader.alg).toBe('EdDSA');
      expect(payload).toMatchObject({ sub: account.id, roles: ['user'], aal: 1, amr: ['pwd'] });
      expect(typeof payload.sid).toBe('string');
    });
  });

  describe('refresh tokens', () => {
    it('rotates: each refresh gives a new pair, and the old token presented after the grace window ends the session', async () => {
      const account = await makeUser(server);
      const first = await anonymous().request<{ refreshSession: Payload }>(REFRESH, { input: { refreshToken: account.refreshToken } });
      const rotated = first.body.data!.refreshSession;
      expect(rotated.refreshToken).not.toBe(account.refreshToken);
      expect(rotated.user.id).toBe(account.id);

      server.clock.advance(11_000);
      const reuse = await anonymous().request(REFRESH, { input: { refreshToken: account.refreshToken } });
      expect(codeOf(reuse.body)).toBe('TOKEN_REUSED');
      // The whole family is dead: the newest refresh token and the access token too.
      expect(codeOf((await anonymous().request(REFRESH, { input: { refreshToken: rotated.refreshToken } })).body)).toBe('UNAUTHENTICATED');
      expect((await withToken(rotated.accessToken).request('{ me { id } }')).status).toBe(401);
      const [audit] = await server.bastion.database.dataSource.query(
        "SELECT actor_id, outcome FROM audit_events WHERE action = 'refresh_token_reused' ORDER BY id DESC LIMIT 1",
      );
      expect(audit).toEqual({ actor_id: account.id, outcome: 'denied' });
    });

    it('two refreshes with one token at the same instant: both answer, exactly one new token works, the session lives', async () => {
      const account = await makeUser(server);
      const [a, b] = await Promise.all([
        anonymous().request<{ refreshSession: Payload }>(REFRESH, { input: { refreshToken: account.refreshToken } }),
        anonymous().request<{ refreshSession: Payload }>(REFRESH, { input: { refreshToken: account.refreshToken } }),
      ]);
      const tokens = [a, b].map((response) => response.body.data?.refreshSession.refreshToken);
      expect(tokens.every(Boolean)).toBe(true);
      const outcomes = [];
      for (const token of tokens)
        outcomes.push(await anonymous().request<{ refreshSession: Payload }>(REFRESH, { input: { refreshToken: token } }));
      const worked = outcomes.filter((outcome) => outcome.body.data?.refreshSession);
      expect(worked).toHaveLength(1);
      expect((await withToken(worked[0].body.data!.refreshSession.accessToken).request('{ me { id } }')).body.data).toEqual({
        me: { id: account.id },
      });
    });

    it('refuses an unknown refresh token', async () => {
      expect(codeOf((await anonymous().request(REFRESH, { input: { refreshToken: 'made-up' } })).body)).toBe('UNAUTHENTICATED');
    });
  });

  describe('sessions', () => {
    it("lists this account's sessions, marks the current one, and ends one or all at once", async () => {
      const account = await makeUser(server);
      const second = await anonymous().request<{ signIn: Payload }>(
        SIGN_IN,
        { input: { email: account.email, password: account.password } },
        { 'user-agent': 'PhoneApp/2.0' },
      );
      const other = second.body.data!.signIn;
      const { body } = await account.client.request<{
        mySessions: { id: string; current: boolean; userAgent: string | null; aal: number }[];
      }>('{ mySessions { id current userAgent aal } }');
      expect(body.data!.mySessions).toHaveLength(2);
      expect(body.data!.mySessions.filter((session) => session.current)).toHaveLength(1);
      const otherSession = body.data!.mySessions.find((session) => !session.current)!;
      expect(otherSession).toMatchObject({ userAgent: 'PhoneApp/2.0', aal: 1 });

      expect((await account.client.request(`mutation { revokeSession(id: "${otherSession.id}") }`)).body).toEqual({
        data: { revokeSession: true },
      });
      expect((await withToken(other.accessToken).request('{ me { id } }')).status).toBe(401);
      expect((await account.client.request('{ me { id } }')).status).toBe(200);

      expect((await account.client.request('mutation { signOut }')).body).toEqual({ data: { signOut: true } });
      expect((await account.client.request('{ me { id } }')).status).toBe(401);
    });

    it("cannot end another account's session: NOT_FOUND, as for a session that does not exist", async () => {
      const alice = await makeUser(server);
      const bob = await makeUser(server);
      const aliceSessions = await alice.client.request<{ mySessions: { id: string }[] }>('{ mySessions { id } }');
      const attempt = await bob.client.request(`mutation { revokeSession(id: "${aliceSessions.body.data!.mySessions[0].id}") }`);
      expect(codeOf(attempt.body)).toBe('NOT_FOUND');
      expect(codeOf((await bob.client.request('mutation { revokeSession(id: "not-a-uuid") }')).body)).toBe('NOT_FOUND');
      expect((await alice.client.request('{ me { id } }')).status).toBe(200);
    });

    it('signOutEverywhere ends every device', async () => {
      const account = await makeUser(server);
      const other = await anonymous().request<{ signIn: Payload }>(SIGN_IN, {
        input: { email: account.email, password: account.password },
      });
      await account.client.request('mutation { signOutEverywhere }');
      expect((await account.client.request('{ me { id } }')).status).toBe(401);
      expect((await withToken(other.body.data!.signIn.accessToken).request('{ me { id } }')).status).toBe(401);
    });

    it('needs a signed-in viewer: anonymous callers get UNAUTHENTICATED', async () => {
      expect(codeOf((await anonymous().request('{ mySessions { id } }')).body)).toBe('UNAUTHENTICATED');
      expect(codeOf((await anonymous().request('mutation { signOut }')).body)).toBe('UNAUTHENTICATED');
    });
  });

  describe('passwords', () => {
    it('changePassword needs the current password, keeps this session and ends the others', async () => {
      const account = await makeUser(server);
      const other = await anonymous().request<{ signIn: Payload }>(SIGN_IN, {
        input: { email: account.email, password: account.password },
      });
      const newPassword = strongPassword();
      const wrong = await account.client.request('mutation($input: ChangePasswordInput!) { changePassword(input: $input) }', {
        input: { currentPassword: 'wrong-wrong-wrong-wrong', newPassword },
      });
      expect(codeOf(wrong.body)).toBe('INVALID_CREDENTIALS');
      const changed = await account.client.request('mutation($input: ChangePasswordInput!) { changePassword(input: $input) }', {
        input: { currentPassword: account.password, newPassword },
      });
      expect(changed.body).toEqual({ data: { changePassword: true } });
      expect((await account.client.request('{ me { id } }')).status).toBe(200);
      expect((await withToken(other.body.data!.signIn.accessToken).request('{ me { id } }')).status).toBe(401);
      expect(codeOf((await anonymous().request(SIGN_IN, { input: { email: account.email, password: account.password } })).body)).toBe(
        'INVALID_CREDENTIALS',
      );
      expect(
        (await anonymous().request<{ signIn: Payload }>(SIGN_IN, { input: { email: account.email, password: newPassword } })).body.data
          ?.signIn.user.id,
      ).toBe(account.id);
    });

    it('password reset: always true, a single-use emailed link, every session ended', async () => {
      const account = await makeUser(server);
      const unknown = await anonymous().request('mutation { requestPasswordReset(input: { email: "nobody-at-all@example.com" }) }');
      expect(unknown.body).toEqual({ data: { requestPasswordReset: true } });
      const known = await anonymous().request(`mutation { requestPasswordReset(input: { email: "${account.email}" }) }`);
      expect(known.body).toEqual(unknown.body);

      const token = await emailedToken(server, account.email, 'reset-password');
      const mail = server.logs.lines.find((line) => line.mailTo === account.email && String(line.mailText).includes('reset-password'));
      expect(String(mail?.mailText)).toContain('myapp://auth/reset-password?token=');
      const newPassword = strongPassword();
      const reset = 'mutation($input: ResetPasswordInput!) { resetPassword(input: $input) }';
      expect((await anonymous().request(reset, { input: { token, newPassword } })).body).toEqual({ data: { resetPassword: true } });
      expect(codeOf((await anonymous().request(reset, { input: { token, newPassword: strongPassword() } })).body)).toBe('BAD_USER_INPUT');
      expect((await account.client.request('{ me { id } }')).status).toBe(401);
      expect(
        (await anonymous().request<{ signIn: Payload }>(SIGN_IN, { input: { email: account.email, password: newPassword } })).body.data
          ?.signIn.user.emailVerified,
      ).toBe(true);
    });

    it('a password change makes earlier reset links worthless', async () => {
      const account = await makeUser(server);
      await anonymous().request(`mutation { requestPasswordReset(input: { email: "${account.email}" }) }`);
      const token = await emailedToken(server, account.email, 'reset-password');
      await account.client.request('mutation($input: ChangePasswordInput!) { changePassword(input: $input) }', {
        input: { currentPassword: account.password, newPassword: strongPassword() },
      });
      const { body } = await anonymous().request('mutation($input: ResetPasswordInput!) { resetPassword(input: $input) }', {
        input: { token, newPassword: strongPassword() },
      });
      expect(codeOf(body)).toBe('BAD_USER_INPUT');
    });

    it('a reset link expires after 30 minutes', async () => {
      const account = await makeUser(server);
      await anonymous().request(`mutation { requestPasswordReset(input: { email: "${account.email}" }) }`);
      const token = await emailedToken(server, account.email, 'reset-password');
      server.clock.advance(31 * 60 * 1000);
      const { body } = await anonymous().request('mutation($input: ResetPasswordInput!) { resetPassword(input: $input) }', {
        input: { token, newPassword: strongPassword() },
      });
      expect(body.errors?.[0]).toMatchObject({
        message: 'This reset link is invalid or has expired: request a new one.',
        extensions: { code: 'BAD_USER_INPUT' },
      });
    });
  });

  describe('email verification', () => {
    it('verifies with the link sent at sign-up, once', async () => {
      const account = await makeUser(server);
      const token = await emailedToken(server, account.email, 'verify-email');
      const verify = 'mutation($input: VerifyEmailInput!) { verifyEmail(input: $input) }';
      expect((await anonymous().request(verify, { input: { token } })).body).toEqual({ data: { verifyEmail: true } });
      expect(codeOf((await anonymous().request(verify, { input: { token } })).body)).toBe('BAD_USER_INPUT');
      expect(
        (await account.client.request<{ me: { emailVerified: boolean } }>('{ me { emailVerified } }')).body.data?.me.emailVerified,
      ).toBe(true);
    });
  });

  describe('deleteAccount', () => {
    it('needs the password, then removes the account, its sessions and its personal data', async () => {
      const account = await makeUser(server);
      const del = 'mutation($input: DeleteAccountInput!) { deleteAccount(input: $input) }';
      expect(codeOf((await account.client.request(del, { input: { password: 'not-my-password-at-all' } })).body)).toBe(
        'INVALID_CREDENTIALS',
      );
      expect((await account.client.request(del, { input: { password: account.password } })).body).toEqual({
        data: { deleteAccount: true },
      });
      expect((await account.client.request('{ me { id } }')).status).toBe(401);
      expect(codeOf((await anonymous().request(SIGN_IN, { input: { email: account.email, password: account.password } })).body)).toBe(
        'INVALID_CREDENTIALS',
      );
      const db = server.bastion.database.dataSource;
      expect(await db.query('SELECT id FROM users WHERE id = $1', [account.id])).toEqual([]);
      expect(await db.query('SELECT id FROM sessions WHERE user_id = $1', [account.id])).toEqual([]);
      expect(
        await db.query("SELECT ip_address, user_agent FROM audit_events WHERE action = 'account_deleted' AND actor_id = $1", [account.id]),
      ).toEqual([{ ip_address: null, user_agent: null }]);
      expect(await db.query('SELECT id FROM account_tokens WHERE user_id = $1', [account.id])).toEqual([]);
      expect(await db.query('SELECT role_name FROM user_roles WHERE user_id = $1', [account.id])).toEqual([]);
      expect(await db.query('SELECT id FROM outbox WHERE user_id = $1', [account.id])).toEqual([]);
    });
  });

  describe('introspection by role', () => {
    it('admins may introspect; signed-in users may not', async () => {
      const admin = await makeUser(server, { roles: ['admin'] });
      const user = await makeUser(server);
      const query = '{ __schema { queryType { name } } }';
      expect((await admin.client.request(query)).body).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });
      const refused = await user.client.request(query);
      expect(refused.status).toBe(403);
      expect(codeOf(refused.body)).toBe('FORBIDDEN');
    });
  });

  describe('field-level access', () => {
    it('the secret parts of an account never appear in the schema', async () => {
      const { body } = await anonymous().request('{ me { passwordHash } }');
      expect(codeOf(body)).toBe('GRAPHQL_VALIDATION_FAILED');
    });
  });

  describe('the audit log', () => {
    it('recorded the flows above in an intact hash chain, without secrets', async () => {
      const db = server.bastion.database.dataSource;
      const actions: { action: string }[] = await db.query('SELECT DISTINCT action FROM audit_events');
      expect(actions.map((row) => row.action)).toEqual(
        expect.arrayContaining([
          'user_signed_up',
          'sign_in_succeeded',
          'sign_in_failed',
          'session_refreshed',
          'refresh_token_reused',
          'signed_out',
          'password_changed',
          'password_reset',
          'email_verified',
          'account_deleted',
        ]),
      );
      const report = await verifyAuditChain(db.manager, testKeyring());
      expect(report).toMatchObject({ ok: true, firstBrokenId: null });
      expect(JSON.stringify(await db.query('SELECT metadata FROM audit_events'))).not.toMatch(/violet-harbor|@example\.com/i);
    });

    it('logs no password, token or email body outside the development mail transport', () => {
      const lines = server.logs.lines.filter((line) => line.mailText === undefined);
      const text = JSON.stringify(lines);
      expect(text).not.toMatch(/violet-harbor-[0-9a-f]{12}/);
      expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}\./);
    });
  });
});

describe('account status and verified-email policy', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { requireVerifiedEmail: true } });
  });
  afterAll(() => server.close());

  const codeOf = (body: { errors?: { extensions?: Record<string, unknown> }[] }) => body.errors?.[0]?.extensions?.code;

  it('sign-up creates the account but no session until the email is verified; sign-in waits too and sends a new link', async () => {
    const email = 'unverified@example.com';
    const password = strongPassword();
    const signUp = await makeClient(server).request(SIGN_UP, { input: { email, password } });
    expect(signUp.body.errors?.[0]).toMatchObject({
      message: 'Account created. Verify your email address with the link we sent, then sign in.',
      extensions: { code: 'FORBIDDEN' },
    });
    expect(
      await server.bastion.database.dataSource.query(
        'SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email_index IS NOT NULL',
      ),
    ).toEqual([]);
    const first = await emailedToken(server, email, 'verify-email');
    server.clock.advance(61_000); // past the one-a-minute resend brake
    const refused = await makeClient(server).request(SIGN_IN, { input: { email, password } });
    expect(refused.body.errors?.[0]).toMatchObject({
      message: 'Verify your email address first: we sent you a new link.',
      extensions: { code: 'FORBIDDEN' },
    });
    const verificationMails = () =>
      server.logs.lines.filter((line) => line.mailTo === email && String(line.mailText).includes('/verify-email#token='));
    await eventually(() => verificationMails().length === 2);
    expect(await emailedToken(server, email, 'verify-email')).not.toBe(first);
    await makeClient(server).request('mutation($input: VerifyEmailInput!) { verifyEmail(input: $input) }', { input: { token: first } });
    const allowed = await makeClient(server).request<{ signIn: { __typename: string } }>(SIGN_IN, { input: { email, password } });
    expect(allowed.body.data?.signIn.__typename).toBe('AuthPayload');
  });

  it('a suspended account cannot sign in, refresh, or use its live sessions', async () => {
    const email = 'to-suspend@example.com';
    const password = strongPassword();
    await makeClient(server).request(SIGN_UP, { input: { email, password } });
    await makeClient(server).request('mutation($input: VerifyEmailInput!) { verifyEmail(input: $input) }', {
      input: { token: await emailedToken(server, email, 'verify-email') },
    });
    const signedIn = await makeClient(server).request<{ signIn: Payload }>(SIGN_IN, { input: { email, password } });
    const { accessToken, refreshToken, user } = signedIn.body.data!.signIn;
    await server.bastion.database.dataSource.query("UPDATE users SET status = 'suspended' WHERE id = $1", [user.id]);
    server.bastion.services.sessionCache.forget({ userIds: [user.id] });
    expect((await makeClient(server, { authorization: `Bearer ${accessToken}` }).request('{ me { id } }')).status).toBe(401);
    expect(codeOf((await makeClient(server).request(REFRESH, { input: { refreshToken } })).body)).toBe('UNAUTHENTICATED');
    const { body } = await makeClient(server).request(SIGN_IN, { input: { email, password } });
    expect(codeOf(body)).toBe('FORBIDDEN');
  });
});

describe('one account signing in from several devices at once', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  // Attempts count before their password is checked, so more than 5 at once from one address
  // would meet the throttle like guesses do; 5 devices signing in together must all get in.
  it('every correct sign-in succeeds: the throttle bookkeeping neither crashes nor deadlocks', async () => {
    const account = await makeUser(server);
    const attempts = await Promise.all(
      Array.from({ length: 5 }, () =>
        makeClient(server).request<{ signIn: { __typename: string } }>(SIGN_IN, {
          input: { email: account.email, password: account.password },
        }),
      ),
    );
    expect(attempts.map((attempt) => attempt.body.errors?.[0]?.extensions?.code ?? attempt.body.data?.signIn.__typename)).toEqual(
      Array(5).fill('AuthPayload'),
    );
  });
});

describe('throttling across addresses (behind a trusted proxy)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { trustProxy: ['127.0.0.1', '::1'] } });
  });
  afterAll(() => server.close());

  const from = (ip: string) => ({ 'x-forwarded-for': ip });

  it('one address hammering an account locks only itself: the owner still signs in from elsewhere', async () => {
    const account = await makeUser(server);
    for (let attempt = 0; attempt < 60; attempt += 1) {
      await makeClient(server).request(
        SIGN_IN,
        { input: { email: account.email, password: `guess-number-${attempt}-xxxx` } },
        from('198.51.100.66'),
      );
    }
    const attacker = await makeClient(server).request(
      SIGN_IN,
      { input: { email: account.email, password: account.password } },
      from('198.51.100.66'),
    );
    expect(attacker.body.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    const owner = await makeClient(server).request<{ signIn: { __typename: string } }>(
      SIGN_IN,
      { input: { email: account.email, password: account.password } },
      from('203.0.113.5'),
    );
    expect(owner.body.data?.signIn.__typename).toBe('AuthPayload');
  });
});

describe('session lifetimes and limits', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { maxSessionsPerUser: 3, refreshIdleDays: 2, refreshAbsoluteDays: 5 } });
  });
  afterAll(() => server.close());

  const DAY = 24 * 60 * 60 * 1000;
  const codeOf = (body: { errors?: { extensions?: Record<string, unknown> }[] }) => body.errors?.[0]?.extensions?.code;
  const refresh = (refreshToken: string) => makeClient(server).request<{ refreshSession: Payload }>(REFRESH, { input: { refreshToken } });

  it('a session unused for the idle period ends', async () => {
    const account = await makeUser(server);
    server.clock.advance(2 * DAY + 1000);
    expect(codeOf((await refresh(account.refreshToken)).body)).toBe('UNAUTHENTICATED');
  });

  it('refreshing keeps a session alive, but never past its absolute end', async () => {
    const account = await makeUser(server);
    let token = account.refreshToken;
    for (let day = 0; day < 4; day += 1) {
      server.clock.advance(1 * DAY + 1000);
      const { body } = await refresh(token);
      expect(body.data?.refreshSession).toBeDefined();
      token = body.data!.refreshSession.refreshToken;
    }
    server.clock.advance(1 * DAY + 1000); // day 5: past the absolute end, though used yesterday
    expect((await refresh(token)).body.errors?.[0]).toMatchObject({
      message: 'This session expired: sign in again.',
      extensions: { code: 'UNAUTHENTICATED' },
    });
  });

  it('signing in beyond the session limit ends the least recently used session', async () => {
    const account = await makeUser(server);
    const signIns = [];
    for (let device = 0; device < 3; device += 1) {
      server.clock.advance(1000);
      signIns.push(
        (await makeClient(server).request<{ signIn: Payload }>(SIGN_IN, { input: { email: account.email, password: account.password } }))
          .body.data!.signIn,
      );
    }
    // The sign-up's own session was the least recently used of four.
    expect((await account.client.request('{ me { id } }')).status).toBe(401);
    for (const signIn of signIns)
      expect((await makeClient(server, { authorization: `Bearer ${signIn.accessToken}` }).request('{ me { id } }')).status).toBe(200);
  });

  it('a grace-window retry whose successor was already used counts as reuse', async () => {
    const account = await makeUser(server);
    const successor = (await refresh(account.refreshToken)).body.data!.refreshSession;
    expect((await refresh(successor.refreshToken)).body.data).toBeDefined();
    server.clock.advance(1000);
    expect(codeOf((await refresh(account.refreshToken)).body)).toBe('TOKEN_REUSED');
  });

  it('the losing token of a parallel refresh, presented after the grace window, ends the session', async () => {
    const account = await makeUser(server);
    const first = (await refresh(account.refreshToken)).body.data!.refreshSession;
    const retry = (await refresh(account.refreshToken)).body.data!.refreshSession; // within grace: supersedes `first`
    expect(codeOf((await refresh(first.refreshToken)).body)).toBe('UNAUTHENTICATED'); // within grace: refused, session lives
    server.clock.advance(11_000);
    expect(codeOf((await refresh(first.refreshToken)).body)).toBe('TOKEN_REUSED');
    expect(codeOf((await refresh(retry.refreshToken)).body)).toBe('UNAUTHENTICATED');
  });
});
