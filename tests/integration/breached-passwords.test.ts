import { SIGN_IN, SIGN_UP, makeClient, makeUser, strongPassword } from '../support/factories';
import { TestServer, startTestServer } from '../support/test-server';

const BREACHED = 'This password appears in lists of breached passwords; choose another.';
const CHANGE_PASSWORD = 'mutation($input: ChangePasswordInput!) { changePassword(input: $input) }';

describe('breached passwords over GraphQL (ASVS 6.2.12)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  const anonymous = () => makeClient(server);
  const countUsers = async () => Number((await server.bastion.database.dataSource.query('SELECT count(*) FROM users'))[0].count);

  it('signUp with a breached password answers BAD_USER_INPUT with the reason, and creates nothing', async () => {
    const email = 'breached.sign-up@example.com';
    const before = await countUsers();
    const { body } = await anonymous().request(SIGN_UP, { input: { email, password: 'Password1234567!' } });
    expect(body.data).toBeNull();
    expect(body.errors).toHaveLength(1);
    expect(body.errors?.[0]).toMatchObject({ message: BREACHED, extensions: { code: 'BAD_USER_INPUT', field: 'password' } });
    expect(await countUsers()).toBe(before);
    // The address is still free: the same sign-up with a good password goes through.
    const retried = await anonymous().request<{ signUp: { user: { email: string } } }>(SIGN_UP, {
      input: { email, password: strongPassword() },
    });
    expect(retried.body.data?.signUp.user.email).toBe(email);
  });

  it('changePassword to a breached password is refused and the old password keeps working', async () => {
    const account = await makeUser(server);
    const { body } = await account.client.request(CHANGE_PASSWORD, {
      input: { currentPassword: account.password, newPassword: 'Summer2024!Summer' },
    });
    expect(body.errors?.[0]).toMatchObject({ message: BREACHED, extensions: { code: 'BAD_USER_INPUT', field: 'password' } });
    const signIn = await anonymous().request<{ signIn: { __typename: string } }>(SIGN_IN, {
      input: { email: account.email, password: account.password },
    });
    expect(signIn.body.data?.signIn.__typename).toBe('AuthPayload');
  });
});
