import { getNamedType, isObjectType } from 'graphql';
import { totpCode } from '../../src/mfa/totp';
import { FEATURES } from '../../src/features';
import { buildGraphQLSchema } from '../../src/schema';
import { GraphQLClient, SIGN_IN, TestAccount, emailedToken, makeClient, makeUser } from '../support/factories';
import { eventually } from '../support/eventually';
import { TestServer, startTestServer } from '../support/test-server';

type Payload = { accessToken: string; refreshToken: string; user: { id: string; mfaEnabled: boolean } };
type SignInResult = { __typename: 'AuthPayload' | 'MfaChallenge'; mfaToken?: string; methods?: string[]; accessToken?: string };

const ENROLL = 'mutation { enrollTotp { factorId secret otpauthUri qrCodeSvg } }';
const CONFIRM = 'mutation($input: ConfirmTotpInput!) { confirmTotp(input: $input) { codes } }';
const VERIFY = 'mutation($input: VerifyMfaInput!) { verifyMfa(input: $input) { accessToken refreshToken user { id mfaEnabled } } }';
const DISABLE = 'mutation($input: DisableTotpInput!) { disableTotp(input: $input) }';
const REGENERATE = 'mutation($input: RegenerateRecoveryCodesInput!) { regenerateRecoveryCodes(input: $input) { codes } }';
const STEP = 30_000;

describe('two-factor authentication (TOTP)', () => {
  let server: TestServer;
  beforeAll(async () => {
    // Behind a "trusted proxy" so tests can speak from many addresses (per-address throttles).
    server = await startTestServer({ config: { appName: 'Acme Notes', trustProxy: ['127.0.0.1', '::1'] } });
  });
  afterAll(() => server.close());

  const codeOf = (body: { errors?: { extensions?: Record<string, unknown> }[] }) => body.errors?.[0]?.extensions?.code;
  const now = () => server.clock.now();
  const withToken = (token: string) => makeClient(server, { authorization: `Bearer ${token}` });
  let addresses = 0;
  /** A client speaking from an address of its own. */
  const fromNewAddress = () => makeClient(server, { 'x-forwarded-for': `198.51.100.${(addresses += 1) % 250}` });

  /** Signs up, enrolls and confirms a factor; returns the secret, recovery codes and the aal2 client. */
  async function userWithTotp(): Promise<TestAccount & { secret: string; recoveryCodes: string[] }> {
    const account = await makeUser(server);
    const enrollment = await account.client.request<{ enrollTotp: { secret: string } }>(ENROLL);
    const secret = enrollment.body.data!.enrollTotp.secret;
    const confirmed = await account.client.request<{ confirmTotp: { codes: string[] } }>(CONFIRM, {
      input: { code: await totpCode({ secret, now: now() }), currentPassword: account.password },
    });
    server.clock.advance(STEP); // the confirming code's step is spent
    return { ...account, secret, recoveryCodes: confirmed.body.data!.confirmTotp.codes };
  }

  async function challenge(account: TestAccount): Promise<string> {
    const { body } = await makeClient(server).request<{ signIn: SignInResult }>(SIGN_IN, {
      input: { email: account.email, password: account.password },
    });
    expect(body.data?.signIn.__typename).toBe('MfaChallenge');
    return body.data!.signIn.mfaToken!;
  }

  const verify = (client: GraphQLClient, mfaToken: string, code: string) =>
    client.request<{ verifyMfa: Payload }>(VERIFY, { input: { mfaToken, code } });

  it('enrolls with a QR code, confirms, and from then on sign-in asks for the code', async () => {
    const account = await makeUser(server);
    const enrollment = await account.client.request<{ enrollTotp: { secret: string; otpauthUri: string; qrCodeSvg: string } }>(ENROLL);
    const { secret, otpauthUri, qrCodeSvg } = enrollment.body.data!.enrollTotp;
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(otpauthUri).toContain(`otpauth://totp/Acme%20Notes:${encodeURIComponent(account.email)}`);
    expect(qrCodeSvg.startsWith('<svg')).toBe(true);
    expect((await account.client.request<{ me: { mfaEnabled: boolean } }>('{ me { mfaEnabled } }')).body.data?.me.mfaEnabled).toBe(false);

    const noPassword = await account.client.request(CONFIRM, { input: { code: await totpCode({ secret, now: now() }) } });
    // Required by the schema: a typed client cannot leave it out, and the message names it.
    expect(noPassword.body.errors?.[0]).toMatchObject({
      message: expect.stringContaining('currentPassword'),
      extensions: { code: 'BAD_USER_INPUT' },
    });
    expect(
      codeOf(
        (
          await account.client.request(CONFIRM, {
            input: { code: await totpCode({ secret, now: now() }), currentPassword: 'not-the-password-at-all' },
          })
        ).body,
      ),
    ).toBe('INVALID_CREDENTIALS');
    expect(codeOf((await account.client.request(CONFIRM, { input: { code: '000000', currentPassword: account.password } })).body)).toBe(
      'INVALID_MFA_CODE',
    );
    const confirmed = await account.client.request<{ confirmTotp: { codes: string[] } }>(CONFIRM, {
      input: { code: await totpCode({ secret, now: now() }), currentPassword: account.password },
    });
    const codes = confirmed.body.data!.confirmTotp.codes;
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) expect(code).toMatch(/^[0-9a-z]{5}-[0-9a-z]{5}-[0-9a-z]{5}-[0-9a-z]{5}$/);
    // The enrolling session continues, now at aal2.
    expect((await account.client.request<{ me: { mfaEnabled: boolean } }>('{ me { mfaEnabled } }')).body.data?.me.mfaEnabled).toBe(true);
    expect((await account.client.request<{ mySessions: { aal: number }[] }>('{ mySessions { aal } }')).body.data?.mySessions).toEqual([
      { aal: 2 },
    ]);
    await eventually(() =>
      server.logs.lines.some(
        (line) => line.mailTo === account.email && line.mailSubject === 'Acme Notes: two-factor authentication was turned on',
      ),
    );

    server.clock.advance(STEP);
    await account.client.request('mutation { signOut }');
    const mfaToken = await challenge(account);
    const verified = await verify(makeClient(server), mfaToken, await totpCode({ secret, now: now() }));
    const payload = verified.body.data!.verifyMfa;
    expect(payload.user).toEqual({ id: account.id, mfaEnabled: true });
    expect(
      (await withToken(payload.accessToken).request<{ mySessions: { aal: number }[] }>('{ mySessions { aal } }')).body.data?.mySessions,
    ).toEqual([{ aal: 2 }]);
  });

  it('a TOTP code works once: replayed in order or at the same instant, the second use fails', async () => {
    const account = await userWithTotp();
    const code = await totpCode({ secret: account.secret, now: now() });
    const [first, second] = await Promise.all([challenge(account), challenge(account)]);
    const [a, b] = await Promise.all([verify(makeClient(server), first, code), verify(makeClient(server), second, code)]);
    const outcomes = [a, b].map((response) => (response.body.data?.verifyMfa ? 'ok' : codeOf(response.body)));
    expect(outcomes.sort()).toEqual(['INVALID_MFA_CODE', 'ok']);
    const third = await challenge(account);
    expect(codeOf((await verify(makeClient(server), third, code)).body)).toBe('INVALID_MFA_CODE');
  });

  it('accepts the previous step, refuses a code from two steps ago', async () => {
    const account = await userWithTotp();
    server.clock.advance(2 * STEP); // so that neither code below has been used already
    const previous = await totpCode({ secret: account.secret, now: new Date(now().getTime() - STEP) });
    const older = await totpCode({ secret: account.secret, now: new Date(now().getTime() - 2 * STEP) });
    expect(codeOf((await verify(makeClient(server), await challenge(account), older)).body)).toBe('INVALID_MFA_CODE');
    expect((await verify(makeClient(server), await challenge(account), previous)).body.data?.verifyMfa).toBeDefined();
  });

  it('a recovery code works once, even when 20 requests send it at the same instant', async () => {
    const account = await userWithTotp();
    const tokens: string[] = [];
    for (let attempt = 0; attempt < 20; attempt += 1) tokens.push(await challenge(account));
    const results = await Promise.all(tokens.map((mfaToken) => verify(fromNewAddress(), mfaToken, account.recoveryCodes[0].toUpperCase())));
    const outcomes = results.map((result) => (result.body.data?.verifyMfa ? 'ok' : codeOf(result.body)));
    expect(outcomes.filter((outcome) => outcome === 'ok')).toHaveLength(1);
    const unexpected = outcomes.filter((outcome) => outcome !== 'ok' && outcome !== 'INVALID_MFA_CODE' && outcome !== 'RATE_LIMITED');
    expect(unexpected).toEqual([]);
    const [{ count }] = await server.bastion.database.dataSource.query(
      "SELECT count(*) FROM audit_events WHERE action = 'recovery_code_used' AND actor_id = $1",
      [account.id],
    );
    expect(count).toBe('1');
    // The owner hears about it (MFA cheat sheet: notify on use).
    await eventually(() =>
      server.logs.lines.some((line) => line.mailTo === account.email && line.mailSubject === 'Acme Notes: a recovery code was used'),
    );
  });

  it('five wrong codes end the challenge; four do not; a redeemed or expired challenge is dead', async () => {
    const account = await userWithTotp();
    const fourWrong = await challenge(account);
    for (let attempt = 0; attempt < 4; attempt += 1)
      expect(codeOf((await verify(fromNewAddress(), fourWrong, `00000${attempt}`)).body)).toBe('INVALID_MFA_CODE');
    const redeemed = await verify(fromNewAddress(), fourWrong, await totpCode({ secret: account.secret, now: now() }));
    expect(redeemed.body.data?.verifyMfa).toBeDefined();
    server.clock.advance(STEP);
    // Redeemed once: a fresh valid code does not reopen it.
    expect(codeOf((await verify(fromNewAddress(), fourWrong, await totpCode({ secret: account.secret, now: now() }))).body)).toBe(
      'UNAUTHENTICATED',
    );

    const fiveWrong = await challenge(account);
    for (let attempt = 0; attempt < 5; attempt += 1)
      expect(codeOf((await verify(fromNewAddress(), fiveWrong, `00000${attempt}`)).body)).toBe('INVALID_MFA_CODE');
    expect(codeOf((await verify(fromNewAddress(), fiveWrong, await totpCode({ secret: account.secret, now: now() }))).body)).toBe(
      'UNAUTHENTICATED',
    );

    const expiring = await challenge(account);
    server.clock.advance(5 * 60 * 1000 + 1000);
    expect(codeOf((await verify(fromNewAddress(), expiring, await totpCode({ secret: account.secret, now: now() }))).body)).toBe(
      'UNAUTHENTICATED',
    );
  });

  it('the mfaToken is not an access token: every operation refuses it', async () => {
    const account = await userWithTotp();
    const mfaToken = await challenge(account);
    const schema = await buildGraphQLSchema(FEATURES);
    const fields = [
      ...Object.values(schema.getQueryType()!.getFields()).map((field) => ({ kind: 'query', field })),
      ...Object.values(schema.getMutationType()!.getFields()).map((field) => ({ kind: 'mutation', field })),
    ];
    expect(fields.length).toBeGreaterThan(15);
    for (const { kind, field } of fields) {
      const type = getNamedType(field.type);
      const selection = isObjectType(type) ? '{ __typename }' : '';
      const { status, body } = await makeClient(server, { authorization: `Bearer ${mfaToken}` }).request(
        `${kind} { ${field.name}${selection} }`,
      );
      // Arguments are missing on purpose: the token must fail first, before validation looks.
      expect({ field: field.name, status, code: codeOf(body) }).toEqual({ field: field.name, status: 401, code: 'UNAUTHENTICATED' });
    }
  });

  it('a password reset does not bypass the factor', async () => {
    const account = await userWithTotp();
    await makeClient(server).request(`mutation { requestPasswordReset(input: { email: "${account.email}" }) }`);
    const token = await emailedToken(server, account.email, 'reset-password');
    const newPassword = `new-${account.password}`;
    await makeClient(server).request('mutation($input: ResetPasswordInput!) { resetPassword(input: $input) }', {
      input: { token, newPassword },
    });
    const { body } = await makeClient(server).request<{ signIn: SignInResult }>(SIGN_IN, {
      input: { email: account.email, password: newPassword },
    });
    expect(body.data?.signIn.__typename).toBe('MfaChallenge');
  });

  describe('step-up (aal2)', () => {
    it('an aal1 session of an account with a factor gets MFA_REQUIRED for sensitive changes', async () => {
      const account = await userWithTotp();
      // An aal1 session of a 2FA account: one signed in before the factor was added elsewhere is ended,
      // so make one directly (as a session from before 2FA would be).
      const { sessions } = server.bastion.services;
      const aal1 = await sessions.issue(
        await server.bastion.database.dataSource.transaction((manager) =>
          sessions.open(manager, account.id, { aal: 1, amr: ['pwd'] }, { ipAddress: null, userAgent: null, requestId: null }),
        ),
      );
      const client = withToken(aal1.accessToken);
      const code = await totpCode({ secret: account.secret, now: now() });
      for (const [query, variables] of [
        [DISABLE, { input: { code, currentPassword: account.password } }],
        [REGENERATE, { input: { code, currentPassword: account.password } }],
        [ENROLL, undefined],
        [
          'mutation($input: ChangePasswordInput!) { changePassword(input: $input) }',
          { input: { currentPassword: account.password, newPassword: `x-${account.password}` } },
        ],
        ['mutation($input: DeleteAccountInput!) { deleteAccount(input: $input) }', { input: { password: account.password } }],
      ] as const) {
        expect(codeOf((await client.request(query, variables as Record<string, unknown> | undefined)).body)).toBe('MFA_REQUIRED');
      }
    });

    it('an aal2 session regenerates recovery codes (old ones die) and disables the factor with a code', async () => {
      const account = await userWithTotp();
      const regenerated = await account.client.request<{ regenerateRecoveryCodes: { codes: string[] } }>(REGENERATE, {
        input: { code: await totpCode({ secret: account.secret, now: now() }), currentPassword: account.password },
      });
      const fresh = regenerated.body.data!.regenerateRecoveryCodes.codes;
      expect(fresh).toHaveLength(10);
      server.clock.advance(STEP);
      expect(codeOf((await verify(makeClient(server), await challenge(account), account.recoveryCodes[1])).body)).toBe('INVALID_MFA_CODE');

      const disable = (code: string) => account.client.request(DISABLE, { input: { code, currentPassword: account.password } });
      expect(codeOf((await disable('123456')).body)).toBe('INVALID_MFA_CODE');
      expect((await disable(fresh[0])).body).toEqual({ data: { disableTotp: true } });
      await eventually(() =>
        server.logs.lines.some(
          (line) => line.mailTo === account.email && line.mailSubject === 'Acme Notes: two-factor authentication was turned off',
        ),
      );
      expect((await account.client.request<{ me: { mfaEnabled: boolean } }>('{ me { mfaEnabled } }')).body.data?.me.mfaEnabled).toBe(false);
      const { body } = await makeClient(server).request<{ signIn: SignInResult }>(SIGN_IN, {
        input: { email: account.email, password: account.password },
      });
      expect(body.data?.signIn.__typename).toBe('AuthPayload');
    });

    it('replacing the authenticator needs a code of the current one, and the owner is told', async () => {
      const account = await userWithTotp();
      const enrollment = await account.client.request<{ enrollTotp: { secret: string } }>(ENROLL);
      const newSecret = enrollment.body.data!.enrollTotp.secret;
      const without = await account.client.request(CONFIRM, {
        input: { code: await totpCode({ secret: newSecret, now: now() }), currentPassword: account.password },
      });
      expect(without.body.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', field: 'currentCode' } });
      const wrongCurrent = await account.client.request(CONFIRM, {
        input: { code: await totpCode({ secret: newSecret, now: now() }), currentCode: '000000', currentPassword: account.password },
      });
      expect(codeOf(wrongCurrent.body)).toBe('INVALID_MFA_CODE');
      const replaced = await account.client.request<{ confirmTotp: { codes: string[] } }>(CONFIRM, {
        input: {
          code: await totpCode({ secret: newSecret, now: now() }),
          currentCode: await totpCode({ secret: account.secret, now: now() }),
          currentPassword: account.password,
        },
      });
      expect(replaced.body.data?.confirmTotp.codes).toHaveLength(10);
      await eventually(() =>
        server.logs.lines.some(
          (line) => line.mailTo === account.email && line.mailSubject === 'Acme Notes: your authenticator app was changed',
        ),
      );
      server.clock.advance(STEP);
      // The old authenticator no longer signs in; the new one does.
      expect(
        codeOf((await verify(fromNewAddress(), await challenge(account), await totpCode({ secret: account.secret, now: now() }))).body),
      ).toBe('INVALID_MFA_CODE');
      expect(
        (await verify(fromNewAddress(), await challenge(account), await totpCode({ secret: newSecret, now: now() }))).body.data?.verifyMfa,
      ).toBeDefined();
    });

    it('verifyMfa goes through with an expired access token attached (apps send the header on every call)', async () => {
      const account = await userWithTotp();
      const mfaToken = await challenge(account);
      const stale = makeClient(server, { authorization: `Bearer ${account.accessToken}` });
      server.clock.advance(16 * 60 * 1000);
      expect((await stale.request('{ me { id } }')).status).toBe(401);
      // the challenge expired too
      expect(codeOf((await verify(stale, mfaToken, await totpCode({ secret: account.secret, now: now() }))).body)).toBe('UNAUTHENTICATED');
      const fresh = await challenge(account);
      expect((await verify(stale, fresh, await totpCode({ secret: account.secret, now: now() }))).body.data?.verifyMfa).toBeDefined();
    });

    it("confirming a factor ends the account's other sessions", async () => {
      const account = await makeUser(server);
      const other = await makeClient(server).request<{ signIn: Payload }>(SIGN_IN, {
        input: { email: account.email, password: account.password },
      });
      const enrollment = await account.client.request<{ enrollTotp: { secret: string } }>(ENROLL);
      await account.client.request(CONFIRM, {
        input: { code: await totpCode({ secret: enrollment.body.data!.enrollTotp.secret, now: now() }), currentPassword: account.password },
      });
      expect((await withToken(other.body.data!.signIn.accessToken).request('{ me { id } }')).status).toBe(401);
      expect((await account.client.request('{ me { id } }')).status).toBe(200);
    });
  });

  it('never stores the TOTP secret or recovery codes in clear', async () => {
    const account = await userWithTotp();
    const db = server.bastion.database.dataSource;
    const [factor] = await db.query('SELECT secret FROM mfa_factors WHERE user_id = $1', [account.id]);
    expect(factor.secret).toMatch(/^v1\./);
    expect(factor.secret).not.toContain(account.secret);
    const stored = JSON.stringify(await db.query('SELECT lookup, code_hash FROM recovery_codes WHERE user_id = $1', [account.id]));
    for (const code of account.recoveryCodes) expect(stored).not.toContain(code.replace(/-/g, '').slice(5));
    const mfaToken = await challenge(account);
    expect(JSON.stringify(await db.query('SELECT token_hash FROM mfa_challenges WHERE user_id = $1', [account.id]))).not.toContain(
      mfaToken,
    );
    const logs = server.logs.text();
    for (const secret of [
      account.secret,
      mfaToken,
      ...account.recoveryCodes,
      ...account.recoveryCodes.map((code) => code.replace(/-/g, '')),
      ...account.recoveryCodes.map((code) => code.toUpperCase()),
    ]) {
      expect(logs).not.toContain(secret);
    }
  });
});
