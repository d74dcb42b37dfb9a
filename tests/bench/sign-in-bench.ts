import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';

// The documents an app sends (as in tests/support/factories.ts, which the bench build does not include).
const AUTH_PAYLOAD = 'accessToken refreshToken accessTokenExpiresAt user { id email roles }';
const SIGN_UP = `mutation SignUp($input: SignUpInput!) { signUp(input: $input) { __typename ... on AuthPayload { ${AUTH_PAYLOAD} } } }`;
const SIGN_IN = `mutation SignIn($input: SignInInput!) { signIn(input: $input) { __typename ... on AuthPayload { ${AUTH_PAYLOAD} } } }`;

/** An account made at bench start: the one the signed-in scenarios and the sign-in loop use, or a seeded author. */
export interface BenchUser {
  /** The account's user id, as signUp returned it: the owner of the permission bench's rows. */
  readonly id: string;
  readonly email: string;
  readonly password: string;
  /** Valid for Bastion's access-token lifetime (15 min by default). */
  readonly accessToken: string;
}

export interface SignInBenchResult {
  /** Sign-ins answered with an AuthPayload, per second. */
  readonly signInsPerSecond: number;
  readonly succeeded: number;
  /** Every other answer, by GraphQL error code (or what went wrong instead). */
  readonly failures: ReadonlyMap<string, number>;
}

interface GraphQLBody<TData> {
  readonly data?: TData | null;
  readonly errors?: readonly { readonly message: string; readonly extensions?: { readonly code?: unknown } }[];
}

type AuthPayload = { readonly __typename?: string; readonly accessToken: string; readonly user: { readonly id: string } };

/** One GraphQL request over HTTP, as an app sends it: signed in when given an access token. */
export async function graphql<TData>(
  endpoint: string,
  query: string,
  variables: Record<string, unknown>,
  accessToken?: string,
): Promise<GraphQLBody<TData>> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (accessToken) headers.authorization = `Bearer ${accessToken}`;
  const response = await fetch(endpoint, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const text = await response.text();
  try {
    return JSON.parse(text) as GraphQLBody<TData>;
  } catch {
    throw new Error(`HTTP ${response.status}: ${text.slice(0, 300)}`);
  }
}

/** Signs a fresh account up over HTTP, the way an app does. */
export async function createBenchUser(endpoint: string): Promise<BenchUser> {
  const email = `bench-${randomBytes(6).toString('hex')}@example.com`;
  const password = randomBytes(18).toString('base64url'); // 24 characters
  const body = await graphql<{ signUp: AuthPayload }>(endpoint, SIGN_UP, { input: { email, password } });
  // A session that must enrol a second factor first (MfaEnrollmentRequired) could not act in the bench.
  if (body.data?.signUp.__typename !== 'AuthPayload')
    throw new Error(`signUp of the bench user failed: ${JSON.stringify(body.errors ?? body.data?.signUp)}`);
  return { id: body.data.signUp.user.id, email, password, accessToken: body.data.signUp.accessToken };
}

function outcomeOf(body: GraphQLBody<{ signIn: AuthPayload }>): string {
  const typename = body.data?.signIn?.__typename;
  if (typename === 'AuthPayload') return 'ok';
  const code = body.errors?.[0]?.extensions?.code;
  if (typeof code === 'string') return code;
  return typename ?? 'no data';
}

/**
 * Sign-ins with the right password, `concurrency` at a time, for `seconds`. Bound by argon2id
 * behind Bastion's hashing pool; a loop rather than autocannon, since each request is slow and
 * its answer (an AuthPayload or an error, both with status 200 or 429) must be read.
 */
export async function runSignInBench(
  endpoint: string,
  user: BenchUser,
  options: { readonly seconds: number; readonly concurrency: number; readonly signal: AbortSignal },
): Promise<SignInBenchResult> {
  const variables = { input: { email: user.email, password: user.password } };
  const failures = new Map<string, number>();
  let succeeded = 0;
  const started = performance.now();
  const deadline = started + options.seconds * 1000;

  const worker = async (): Promise<void> => {
    while (performance.now() < deadline && !options.signal.aborted) {
      let outcome: string;
      try {
        outcome = outcomeOf(await graphql<{ signIn: AuthPayload }>(endpoint, SIGN_IN, variables));
      } catch (error) {
        outcome = `request failed (${error instanceof Error ? error.message : String(error)})`;
      }
      if (outcome === 'ok') succeeded += 1;
      else failures.set(outcome, (failures.get(outcome) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));

  // Until the last answer arrived: requests still in flight at the deadline are counted too.
  const elapsedSeconds = (performance.now() - started) / 1000;
  return { signInsPerSecond: succeeded / elapsedSeconds, succeeded, failures };
}
