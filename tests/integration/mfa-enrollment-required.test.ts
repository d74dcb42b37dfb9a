import { randomBytes } from 'node:crypto';
import { totpCode } from '../../src/mfa/totp';
import { MfaRequirement } from '../../src/access/access.settings';
import { SIGN_IN, SIGN_UP, codesOf, confirmTotp, makeClient, makeUser, strongPassword } from '../support/factories';
import { MEMOS_TABLE_SQL, memoFeature } from '../support/memo-model';
import { TestServer, startTestServer } from '../support/test-server';

type SessionAnswer = {
  __typename: 'AuthPayload' | 'MfaEnrollmentRequired' | 'MfaChallenge';
  accessToken?: string;
  refreshToken?: string;
  methods?: string[];
  user?: { id: string; mfaEnabled: boolean };
};

const CREATE_MEMO = 'mutation($input: MemoInput!) { createMemo(input: $input) { id } }';
const ENROLL = 'mutation { enrollTotp { secret } }';
const CONFIRM = 'mutation($input: ConfirmTotpInput!) { confirmTotp(input: $input) { codes } }';

/** A server whose built-in roles need the second factor as `mfaRequiredFor` says, with a model to act on. */
const serverRequiringMfaFor = (mfaRequiredFor: MfaRequirement) =>
  startTestServer({ config: { mfaRequiredFor }, extraFeatures: [memoFeature], setupSql: [MEMOS_TABLE_SQL] });

describe('MfaEnrollmentRequired (BASTION_MFA_REQUIRED_FOR=all, the production default)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await serverRequiringMfaFor('all');
  });
  afterAll(() => server?.close());

  const signUp = async (email: string, password: string) =>
    (await makeClient(server).request<{ signUp: SessionAnswer }>(SIGN_UP, { input: { email, password } })).body.data!.signUp;
  const signIn = async (email: string, password: string) =>
    (await makeClient(server).request<{ signIn: SessionAnswer }>(SIGN_IN, { input: { email, password } })).body.data!.signIn;

  it('a new account gets tokens that serve only enrolment; confirming the factor makes that same session whole', async () => {
    const email = `new.${randomBytes(4).toString('hex')}@example.com`;
    const password = strongPassword();
    const answer = await signUp(email, password);
    expect(answer).toMatchObject({
      __typename: 'MfaEnrollmentRequired',
      methods: ['totp'],
      accessToken: expect.any(String),
      refreshToken: expect.any(String),
      user: { mfaEnabled: false },
    });
    const client = makeClient(server, { authorization: `Bearer ${answer.accessToken}` });
    // Account basics answer; acting with a role does not, until the factor is confirmed.
    expect((await client.request<{ me: { id: string } }>('{ me { id } }')).body.data?.me.id).toBe(answer.user!.id);
    expect(codesOf(await client.request(CREATE_MEMO, { input: { title: 'before' } }))).toEqual(['MFA_REQUIRED']);

    const secret = (await client.request<{ enrollTotp: { secret: string } }>(ENROLL)).body.data!.enrollTotp.secret;
    const confirmed = await client.request<{ confirmTotp: { codes: string[] } }>(CONFIRM, {
      input: { code: await totpCode({ secret, now: server.clock.now() }), currentPassword: password },
    });
    expect(confirmed.body.data?.confirmTotp.codes).toHaveLength(10);
    expect(codesOf(await client.request(CREATE_MEMO, { input: { title: 'after' } }))).toBeUndefined();
  });

  it('signing in without a factor answers MfaEnrollmentRequired; with one, the usual MfaChallenge', async () => {
    const account = await makeUser(server);
    const first = await signIn(account.email, account.password);
    expect(first).toMatchObject({ __typename: 'MfaEnrollmentRequired', methods: ['totp'], user: { id: account.id } });
    await confirmTotp(server, account);
    expect((await signIn(account.email, account.password)).__typename).toBe('MfaChallenge');
  });

  it('a wrong password is still INVALID_CREDENTIALS: the answer tells nothing before the password is proven', async () => {
    const account = await makeUser(server);
    const wrong = await makeClient(server).request(SIGN_IN, { input: { email: account.email, password: 'not the password at all' } });
    expect(codesOf(wrong)).toEqual(['INVALID_CREDENTIALS']);
  });
});

describe('MfaEnrollmentRequired follows the roles that need the factor', () => {
  it('with admin: an admin without a factor must enrol, a plain user signs in as before', async () => {
    const server = await serverRequiringMfaFor('admin');
    try {
      const admin = await makeUser(server, { roles: ['admin'] });
      const user = await makeUser(server);
      const signIn = (email: string, password: string) =>
        makeClient(server).request<{ signIn: SessionAnswer }>(SIGN_IN, { input: { email, password } });
      expect((await signIn(admin.email, admin.password)).body.data?.signIn.__typename).toBe('MfaEnrollmentRequired');
      expect((await signIn(user.email, user.password)).body.data?.signIn.__typename).toBe('AuthPayload');
    } finally {
      await server.close();
    }
  });

  it('with none (the development default): sign-up answers AuthPayload', async () => {
    const server = await serverRequiringMfaFor('none');
    try {
      const { body } = await makeClient(server).request<{ signUp: SessionAnswer }>(SIGN_UP, {
        input: { email: `plain.${randomBytes(4).toString('hex')}@example.com`, password: strongPassword() },
      });
      expect(body.data?.signUp.__typename).toBe('AuthPayload');
    } finally {
      await server.close();
    }
  });
});
