import { randomBytes } from 'node:crypto';
import { totpCode } from '../../src/mfa/totp';
import { eventually } from './eventually';
import type { TestServer } from './test-server';

export interface GraphQLResponse<TData = Record<string, unknown>> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: {
    data?: TData | null;
    errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[];
  };
}

/** The `extensions.code` of each error of a response, in order (undefined when there are none). */
export function codesOf(response: GraphQLResponse): unknown[] | undefined {
  return response.body.errors?.map((error) => error.extensions?.code);
}

export interface GraphQLClient {
  request<TData = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
    headers?: Record<string, string>,
  ): Promise<GraphQLResponse<TData>>;
}

/**
 * A client that talks to the server the way a mobile app does: JSON POSTs over real HTTP.
 * Later issues add signed-in clients (`makeUser`) here.
 */
export function makeClient(server: Pick<TestServer, 'url'>, defaultHeaders: Record<string, string> = {}): GraphQLClient {
  return {
    async request<TData>(
      query: string,
      variables?: Record<string, unknown>,
      headers?: Record<string, string>,
    ): Promise<GraphQLResponse<TData>> {
      const response = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...defaultHeaders, ...headers },
        body: JSON.stringify({ query, variables }),
      });
      return { status: response.status, headers: response.headers, body: (await response.json()) as GraphQLResponse<TData>['body'] };
    },
  };
}

export interface TestAccount {
  readonly id: string;
  /** The TOTP secret, for accounts made with `mfa: true`. */
  readonly totpSecret?: string;
  readonly email: string;
  readonly password: string;
  readonly accessToken: string;
  readonly refreshToken: string;
  /** A client that sends this account's access token. */
  readonly client: GraphQLClient;
}

const AUTH_PAYLOAD = 'accessToken refreshToken accessTokenExpiresAt user { id email emailVerified roles mfaEnabled createdAt }';

// Both carry the session's tokens; MfaEnrollmentRequired (BASTION_MFA_REQUIRED_FOR) also says what to enrol.
const SESSION_ANSWERS = `__typename ... on AuthPayload { ${AUTH_PAYLOAD} } ... on MfaEnrollmentRequired { ${AUTH_PAYLOAD} methods }`;
export const SIGN_UP = `mutation SignUp($input: SignUpInput!) { signUp(input: $input) { ${SESSION_ANSWERS} } }`;
const CHALLENGE = '... on MfaChallenge { mfaToken expiresAt methods }';
export const SIGN_IN = `mutation SignIn($input: SignInInput!) { signIn(input: $input) { ${SESSION_ANSWERS} ${CHALLENGE} } }`;
export const REFRESH = `mutation Refresh($input: RefreshSessionInput!) { refreshSession(input: $input) { ${AUTH_PAYLOAD} } }`;

let accounts = 0;

/** A password that passes the policy and is unique per call. */
export function strongPassword(): string {
  return `violet-harbor-${randomBytes(6).toString('hex')}`;
}

/** What the factories need of a server: any in-process Bastion with a frozen clock will do. */
export type FactoryServer = Pick<TestServer, 'url' | 'bastion' | 'clock'>;

/**
 * A real account made the way an app makes one (signUp over HTTP), with a signed-in client.
 * `roles` are granted directly in the database (there is no admin API yet); they apply at the
 * next request, as role changes do.
 */
export async function makeUser(
  server: FactoryServer,
  options: { email?: string; password?: string; roles?: string[]; mfa?: boolean } = {},
): Promise<TestAccount> {
  accounts += 1;
  const email = options.email ?? `user${accounts}.${randomBytes(3).toString('hex')}@example.com`;
  const password = options.password ?? strongPassword();
  const { body } = await makeClient(server).request<{ signUp: { accessToken: string; refreshToken: string; user: { id: string } } }>(
    SIGN_UP,
    { input: { email, password } },
  );
  if (!body.data?.signUp) throw new Error(`signUp failed: ${JSON.stringify(body.errors)}`);
  const { accessToken, refreshToken, user } = body.data.signUp;
  for (const role of options.roles ?? []) {
    await server.bastion.database.dataSource.query('INSERT INTO user_roles (user_id, role_name) VALUES ($1, $2) ON CONFLICT DO NOTHING', [
      user.id,
      role,
    ]);
  }
  if (options.roles?.length) server.bastion.services.sessionCache.forget({ userIds: [user.id] });
  const client = makeClient(server, { authorization: `Bearer ${accessToken}` });
  const account = { id: user.id, email, password, accessToken, refreshToken, client };
  return options.mfa ? { ...account, totpSecret: await confirmTotp(server, account) } : account;
}

/**
 * Enrolls and confirms a TOTP factor: the account's session becomes aal2. Advances the frozen
 * clock one step afterwards, since the confirming code's step is spent.
 */
export async function confirmTotp(server: FactoryServer, account: Pick<TestAccount, 'client' | 'password'>): Promise<string> {
  const enrollment = await account.client.request<{ enrollTotp: { secret: string } }>('mutation { enrollTotp { secret } }');
  const secret = enrollment.body.data?.enrollTotp.secret;
  if (!secret) throw new Error(`enrollTotp failed: ${JSON.stringify(enrollment.body.errors)}`);
  const confirmed = await account.client.request('mutation($input: ConfirmTotpInput!) { confirmTotp(input: $input) { codes } }', {
    input: { code: await totpCode({ secret, now: server.clock.now() }), currentPassword: account.password },
  });
  if (confirmed.body.errors) throw new Error(`confirmTotp failed: ${JSON.stringify(confirmed.body.errors)}`);
  server.clock.advance(30_000);
  return secret;
}

/** The token in the last email sent to `to` with a link for `action` (the log transport writes them). */
export async function emailedToken(server: TestServer, to: string, action: 'reset-password' | 'verify-email'): Promise<string> {
  let token: string | undefined;
  await eventually(() => {
    const mails = server.logs.lines.filter(
      // `#token=` to a web page, `?token=` to an app's own scheme.
      (line) => line.mailTo === to && typeof line.mailText === 'string' && new RegExp(`/${action}[?#]token=`).test(line.mailText),
    );
    const last = mails[mails.length - 1];
    token = last ? /token=([A-Za-z0-9_-]+)/.exec(last.mailText as string)?.[1] : undefined;
    return token !== undefined;
  });
  return token!;
}
