import { BastionApiError, MobileFlowResult, runMobileFlow } from '../../examples/mobile-flow';
import { totpCode } from '../../src/mfa/totp';
import { REFRESH, makeClient, strongPassword } from '../support/factories';
import { TestServer, startTestServer } from '../support/test-server';

const STEP = 30_000;

describe('examples/mobile-flow.ts, end to end', () => {
  let server: TestServer;
  let result: MobileFlowResult;
  const email = 'mobile.flow@example.com';
  const password = strongPassword();
  const purposes: string[] = [];
  const logged: string[] = [];
  /** Every TOTP code the "authenticator app" produced. */
  const codes: string[] = [];

  beforeAll(async () => {
    // The production default: the new account must enrol a second factor before anything else.
    server = await startTestServer({ config: { mfaRequiredFor: 'all' } });
    result = await runMobileFlow({
      url: server.url,
      email,
      password,
      // The authenticator app, on the server's frozen clock: one code per 30-second step, since a
      // step's code is accepted once per account (the confirming code's step is then spent).
      totpCodeAt: async (secret, purpose) => {
        if (purposes.length > 0) server.clock.advance(STEP);
        purposes.push(purpose);
        const code = await totpCode({ secret, now: server.clock.now() });
        codes.push(code);
        return code;
      },
      log: (message) => logged.push(message),
    });
  });
  afterAll(() => server?.close());

  const codeOf = (body: { errors?: { extensions?: Record<string, unknown> }[] }) => body.errors?.[0]?.extensions?.code;
  const withToken = (token: string) => makeClient(server, { authorization: `Bearer ${token}` });

  it('signs up, then enrolls and confirms TOTP with one code per step', () => {
    expect(result.userId).toMatch(/^[0-9a-f-]{36}$/);
    expect(result.signUp.accessToken.split('.')).toHaveLength(3);
    expect(logged[0]).toBe('sign-up answered MfaEnrollmentRequired');
    expect(result.enrollment.otpauthUri).toMatch(new RegExp(`^otpauth://totp/[^:]+:${encodeURIComponent(email)}\\?secret=[A-Z2-7]{32}&`));
    expect(result.recoveryCodes).toHaveLength(10);
    expect(new Set(result.recoveryCodes).size).toBe(10);
    expect(purposes).toEqual(['confirmTotp', 'verifyMfa']);
  });

  it('signing in asks for the second factor, and verifyMfa opens an aal2 session', async () => {
    expect(result.challenge.methods).toEqual(expect.arrayContaining(['totp', 'recovery_code']));
    expect(new Date(result.challenge.expiresAt).getTime()).toBeGreaterThan(server.clock.now().getTime());
    expect(result.signedIn.mfaEnabled).toBe(true);
    expect(result.signedIn.accessToken).not.toBe(result.signUp.accessToken);
    // The refreshed token belongs to the same session verifyMfa opened, the only live one.
    const sessions = await withToken(result.refreshed.accessToken).request<{ mySessions: { aal: number; current: boolean }[] }>(
      '{ mySessions { aal current } }',
    );
    expect(sessions.body.data?.mySessions).toEqual([{ aal: 2, current: true }]);
  });

  it('the sign-up session ended at signOut: its tokens are refused', async () => {
    const response = await withToken(result.signUp.accessToken).request('{ me { id } }');
    expect(response.status).toBe(401);
    expect(codeOf(response.body)).toBe('UNAUTHENTICATED');
  });

  it('creates a profile and a published post owned by the user, and finds the post in the list', () => {
    expect(result.profile).toEqual({ id: expect.any(String), userId: result.userId, displayName: 'Mobile Flow' });
    expect(result.post).toEqual({
      id: expect.any(String),
      title: expect.stringMatching(/^Hello from the mobile flow /),
      published: true,
      authorId: result.userId,
    });
    expect(result.listed).toEqual({
      node: {
        id: result.post.id,
        title: result.post.title,
        published: true,
        authorId: result.userId,
        author: { displayName: 'Mobile Flow' },
      },
      pagesRead: 1,
      totalCount: 1,
    });
  });

  it('the published post is public: an anonymous client reads it with its author', async () => {
    const response = await makeClient(server).request<{ post: { title: string; author: { displayName: string } } }>(
      'query($id: ID!) { post(id: $id) { title author { displayName } } }',
      { id: result.post.id },
    );
    expect(response.body).toEqual({ data: { post: { title: result.post.title, author: { displayName: 'Mobile Flow' } } } });
  });

  it('refreshing gives a new pair that works', () => {
    expect(result.refreshed.accessToken).not.toBe(result.signedIn.accessToken);
    expect(result.refreshed.refreshToken).not.toBe(result.signedIn.refreshToken);
    expect(result.meAfterRefresh).toBe(result.userId);
    expect(logged).toHaveLength(11);
  });

  // Last: reusing the spent refresh token ends the session.
  it('the spent refresh token, presented after the grace window, is TOKEN_REUSED and ends the session', async () => {
    server.clock.advance(server.config.refreshGraceSeconds * 1000 + 1000);
    const reuse = await makeClient(server).request(REFRESH, { input: { refreshToken: result.signedIn.refreshToken } });
    // A field error of the mutation: HTTP 200 with data null. Apps branch on extensions.code, not on the status.
    expect(reuse.status).toBe(200);
    expect(reuse.body).toMatchObject({ data: null, errors: [{ path: ['refreshSession'], extensions: { code: 'TOKEN_REUSED' } }] });
    // The whole session is gone: the newest refresh token and the access token too.
    expect(codeOf((await makeClient(server).request(REFRESH, { input: { refreshToken: result.refreshed.refreshToken } })).body)).toBe(
      'UNAUTHENTICATED',
    );
    expect((await withToken(result.refreshed.accessToken).request('{ me { id } }')).status).toBe(401);
  });

  it('a code from the step that confirmed TOTP cannot sign in: verifyMfa says INVALID_MFA_CODE', async () => {
    server.clock.advance(STEP);
    const sameStep = runMobileFlow({
      url: server.url,
      email: 'same.step@example.com',
      password: strongPassword(),
      totpCodeAt: (secret) => totpCode({ secret, now: server.clock.now() }),
    });
    await expect(sameStep).rejects.toMatchObject({ name: 'BastionApiError', operation: 'verifyMfa', code: 'INVALID_MFA_CODE' });
  });

  it('fails a step with a BastionApiError carrying extensions.code', async () => {
    const failing = runMobileFlow({
      url: server.url,
      email,
      password: strongPassword(),
      totpCodeAt: () => Promise.reject(new Error('not reached')),
    });
    await expect(failing).rejects.toBeInstanceOf(BastionApiError);
    await expect(failing).rejects.toMatchObject({
      operation: 'signUp',
      code: 'CONFLICT',
      message: expect.stringMatching(/^signUp failed with CONFLICT: /),
    });
  });

  it('leaves no password, token, TOTP secret or code in the audit log after the whole flow', async () => {
    const rows: { row: string }[] = await server.bastion.database.dataSource.query('SELECT audit_events::text AS row FROM audit_events');
    const text = rows.map((row) => row.row).join('\n');
    expect(rows.length).toBeGreaterThan(5);
    const totpSecret = new URL(result.enrollment.otpauthUri).searchParams.get('secret')!;
    // Six-digit codes as whole values: bare digits could turn up inside a hash by chance.
    const secrets = [
      password,
      totpSecret,
      ...codes.map((code) => `"${code}"`),
      ...result.recoveryCodes,
      result.signUp.accessToken,
      result.signUp.refreshToken,
      result.signedIn.accessToken,
      result.signedIn.refreshToken,
      result.refreshed.refreshToken,
    ];
    for (const secret of secrets) expect({ secret, found: text.includes(secret) }).toEqual({ secret, found: false });
  });
});
