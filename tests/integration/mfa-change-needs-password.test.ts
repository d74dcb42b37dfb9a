import { totpCode } from '../../src/mfa/totp';
import { GraphQLClient, SIGN_IN, TestAccount, codesOf, makeClient, makeUser } from '../support/factories';
import { TestServer, startTestServer } from '../support/test-server';

const ENROLL = 'mutation { enrollTotp { secret } }';
const CONFIRM = 'mutation($input: ConfirmTotpInput!) { confirmTotp(input: $input) { codes } }';
const DISABLE = 'mutation($input: DisableTotpInput!) { disableTotp(input: $input) }';
const REGENERATE = 'mutation($input: RegenerateRecoveryCodesInput!) { regenerateRecoveryCodes(input: $input) { codes } }';
const VERIFY = 'mutation($input: VerifyMfaInput!) { verifyMfa(input: $input) { accessToken } }';
const WRONG_PASSWORD = 'what-a-thief-would-guess';
const STEP = 30_000;

/**
 * A thief holding the owner's unlocked phone has an aal2 session and the authenticator: changing
 * the second factor must also need the password (ASVS 7.5.1).
 */
describe('changing the second factor needs the password', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.close());

  const code = (secret: string) => totpCode({ secret, now: server.clock.now() });
  const mfaEnabled = async (client: GraphQLClient) =>
    (await client.request<{ me: { mfaEnabled: boolean } }>('{ me { mfaEnabled } }')).body.data?.me.mfaEnabled;
  const passwordChecksFailed = async (account: TestAccount) =>
    (
      await server.bastion.database.dataSource.query<{ count: number }[]>(
        "SELECT count(*)::int AS count FROM audit_events WHERE action = 'password_check_failed' AND actor_id = $1",
        [account.id],
      )
    )[0].count;
  /** Completes a sign-in with a second-factor code (a recovery code here): the code still works. */
  const signInWith = async (account: TestAccount, secondFactor: string) => {
    const challenge = await makeClient(server).request<{ signIn: { mfaToken: string } }>(SIGN_IN, {
      input: { email: account.email, password: account.password },
    });
    return makeClient(server).request(VERIFY, { input: { mfaToken: challenge.body.data!.signIn.mfaToken, code: secondFactor } });
  };

  it('the schema requires currentPassword on disableTotp, regenerateRecoveryCodes and confirmTotp', async () => {
    const account = await makeUser(server, { mfa: true });
    for (const [query, input] of [
      [DISABLE, { code: '123456' }],
      [REGENERATE, { code: '123456' }],
      [CONFIRM, { code: '123456', currentCode: '123456' }],
    ] as const) {
      const response = await account.client.request(query, { input });
      expect(response.body.errors?.[0]).toMatchObject({
        message: expect.stringContaining('currentPassword'),
        extensions: { code: 'BAD_USER_INPUT' },
      });
    }
  });

  it('disableTotp with a wrong password: INVALID_CREDENTIALS, the factor stays on and the code is not spent', async () => {
    const account = await makeUser(server, { mfa: true });
    const now = await code(account.totpSecret!);
    const wrong = await account.client.request(DISABLE, { input: { code: now, currentPassword: WRONG_PASSWORD } });
    expect(wrong.body.errors?.[0]).toMatchObject({ message: 'The password is wrong.', extensions: { code: 'INVALID_CREDENTIALS' } });
    expect(await mfaEnabled(account.client)).toBe(true);
    expect(await passwordChecksFailed(account)).toBe(1);
    // The same code with the right password: the refusal was the password's alone.
    expect((await account.client.request(DISABLE, { input: { code: now, currentPassword: account.password } })).body).toEqual({
      data: { disableTotp: true },
    });
    expect(await mfaEnabled(account.client)).toBe(false);
  });

  it('regenerateRecoveryCodes with a wrong password: INVALID_CREDENTIALS, and the codes in hand keep working', async () => {
    const account = await makeUser(server, { mfa: true });
    const regenerate = async (currentPassword: string) =>
      account.client.request<{ regenerateRecoveryCodes: { codes: string[] } }>(REGENERATE, {
        input: { code: await code(account.totpSecret!), currentPassword },
      });
    const kept = (await regenerate(account.password)).body.data!.regenerateRecoveryCodes.codes;
    server.clock.advance(STEP);
    expect(codesOf(await regenerate(WRONG_PASSWORD))).toEqual(['INVALID_CREDENTIALS']);
    expect(codesOf(await signInWith(account, kept[0]))).toBeUndefined();
  });

  it('replacing the authenticator with a wrong password: INVALID_CREDENTIALS, and the old one stays the factor', async () => {
    const account = await makeUser(server, { mfa: true });
    const newSecret = (await account.client.request<{ enrollTotp: { secret: string } }>(ENROLL)).body.data!.enrollTotp.secret;
    const confirm = async (currentPassword: string) =>
      account.client.request<{ confirmTotp: { codes: string[] } }>(CONFIRM, {
        input: { code: await code(newSecret), currentCode: await code(account.totpSecret!), currentPassword },
      });
    expect(codesOf(await confirm(WRONG_PASSWORD))).toEqual(['INVALID_CREDENTIALS']);
    expect(codesOf(await signInWith(account, await code(account.totpSecret!)))).toBeUndefined();
    server.clock.advance(STEP);
    expect((await confirm(account.password)).body.data?.confirmTotp.codes).toHaveLength(10);
  });

  it('wrong passwords here are counted like failed sign-ins: past the free attempts, sign-in waits too', async () => {
    const account = await makeUser(server, { mfa: true });
    for (const query of [DISABLE, REGENERATE, DISABLE, REGENERATE, DISABLE]) {
      const response = await account.client.request(query, {
        input: { code: await code(account.totpSecret!), currentPassword: WRONG_PASSWORD },
      });
      expect(codesOf(response)).toEqual(['INVALID_CREDENTIALS']);
    }
    const signIn = await makeClient(server).request(SIGN_IN, { input: { email: account.email, password: account.password } });
    expect(signIn.body.errors?.[0]).toMatchObject({ extensions: { code: 'RATE_LIMITED', retryAfterSeconds: expect.any(Number) } });
    const disable = await account.client.request(DISABLE, {
      input: { code: await code(account.totpSecret!), currentPassword: account.password },
    });
    expect(codesOf(disable)).toEqual(['RATE_LIMITED']);
  });

  it('without a factor there is nothing to change: BAD_USER_INPUT, and the password is not checked', async () => {
    const account = await makeUser(server);
    const input = { code: '123456', currentPassword: WRONG_PASSWORD };
    for (const query of [DISABLE, REGENERATE]) {
      const response = await account.client.request(query, { input });
      expect(response.body.errors?.[0]).toMatchObject({
        message: 'Two-factor authentication is not on for this account.',
        extensions: { code: 'BAD_USER_INPUT' },
      });
    }
    expect(await passwordChecksFailed(account)).toBe(0);
  });

  it('an aal1 session meets MFA_REQUIRED first: its password guesses are not even checked', async () => {
    const account = await makeUser(server, { mfa: true });
    // A session from before the factor was added (confirming one ends the others, so open it directly).
    const { sessions } = server.bastion.services;
    const aal1 = await sessions.issue(
      await server.bastion.database.dataSource.transaction((manager) =>
        sessions.open(manager, account.id, { aal: 1, amr: ['pwd'] }, { ipAddress: null, userAgent: null, requestId: null }),
      ),
    );
    const client = makeClient(server, { authorization: `Bearer ${aal1.accessToken}` });
    const input = { code: await code(account.totpSecret!), currentPassword: WRONG_PASSWORD };
    expect(codesOf(await client.request(DISABLE, { input }))).toEqual(['MFA_REQUIRED']);
    expect(codesOf(await client.request(REGENERATE, { input }))).toEqual(['MFA_REQUIRED']);
    expect(await passwordChecksFailed(account)).toBe(0);
  });
});
