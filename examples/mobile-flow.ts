/**
 * The calls a mobile app makes against Bastion, in the order it makes them: sign up, turn on
 * two-factor authentication (TOTP), sign in again with a code, create a profile and a post, list
 * posts, refresh the session. Plain `fetch` and JSON, nothing else: every request is what Apollo
 * iOS, Apollo Kotlin or any other GraphQL client sends over the wire (see docs/mobile.md for
 * generating typed clients from schema/schema.graphql).
 *
 * Run it against a running server (after `npx tsc -p tsconfig.json`, which compiles examples/ too):
 *
 *   node dist/examples/mobile-flow.js http://localhost:4000/graphql
 *
 * It signs up a throwaway account (mobile-flow.<random>@example.com). In a real app the TOTP code
 * comes from the user's authenticator app; here the script computes it from the secret.
 * tests/integration/mobile-flow.test.ts runs the same function against a test server.
 */
import { randomBytes } from 'node:crypto';
import { totpCode } from '../src/mfa/totp';

export interface MobileFlowOptions {
  /** The GraphQL endpoint, e.g. http://localhost:4000/graphql. */
  readonly url: string;
  readonly email: string;
  /** 15+ characters, not a common password, not containing the email or the app's name. */
  readonly password: string;
  /**
   * The 6-digit code the user's authenticator app shows for `secret`. Each 30-second code is
   * accepted once per account: the sign-in code must come from a later step than the code that
   * confirmed the enrolment.
   */
  readonly totpCodeAt: (secret: string, purpose: 'confirmTotp' | 'verifyMfa') => Promise<string>;
  readonly log?: (message: string) => void;
}

/** A session's tokens, as the app keeps them. */
export interface Tokens {
  readonly accessToken: string;
  readonly refreshToken: string;
  readonly accessTokenExpiresAt: string;
}

/** Everything the flow saw, for a test (or a curious reader) to check. */
export interface MobileFlowResult {
  readonly userId: string;
  readonly signUp: Tokens;
  readonly enrollment: { readonly factorId: string; readonly otpauthUri: string };
  readonly recoveryCodes: readonly string[];
  readonly challenge: { readonly methods: readonly string[]; readonly expiresAt: string };
  /** The session opened by verifyMfa (aal2). */
  readonly signedIn: Tokens & { readonly mfaEnabled: boolean };
  readonly profile: { readonly id: string; readonly userId: string; readonly displayName: string };
  readonly post: { readonly id: string; readonly title: string; readonly published: boolean; readonly authorId: string };
  /** The new post as the list returned it, and how many pages were read to find it. */
  readonly listed: { readonly node: PostNode; readonly pagesRead: number; readonly totalCount: number };
  /** The pair refreshSession returned; `signedIn.refreshToken` is now used up. */
  readonly refreshed: Tokens;
  /** `me.id` asked with the refreshed access token. */
  readonly meAfterRefresh: string;
}

interface PostNode {
  readonly id: string;
  readonly title: string;
  readonly published: boolean;
  readonly authorId: string;
  readonly author: { readonly displayName: string } | null;
}

/** An error the API returned: `code` is `extensions.code`, the value to branch on (never the message). */
export class BastionApiError extends Error {
  constructor(
    readonly operation: string,
    readonly code: string,
    message: string,
    readonly extensions: Readonly<Record<string, unknown>>,
    readonly httpStatus: number,
  ) {
    super(`${operation} failed with ${code}: ${message}`);
    this.name = 'BastionApiError';
  }
}

// The operations, as an app would keep them in .graphql files for its code generator.
const AUTH_PAYLOAD = 'accessToken refreshToken accessTokenExpiresAt user { id mfaEnabled }';
const SIGN_UP = `mutation SignUp($input: SignUpInput!) {
  signUp(input: $input) {
    __typename
    ... on AuthPayload { ${AUTH_PAYLOAD} }
    ... on MfaEnrollmentRequired { ${AUTH_PAYLOAD} methods }
  }
}`;
const ENROLL_TOTP = 'mutation EnrollTotp { enrollTotp { factorId secret otpauthUri } }';
const CONFIRM_TOTP = 'mutation ConfirmTotp($input: ConfirmTotpInput!) { confirmTotp(input: $input) { codes } }';
const SIGN_OUT = 'mutation SignOut { signOut }';
const SIGN_IN = `mutation SignIn($input: SignInInput!) {
  signIn(input: $input) {
    __typename
    ... on AuthPayload { ${AUTH_PAYLOAD} }
    ... on MfaEnrollmentRequired { ${AUTH_PAYLOAD} methods }
    ... on MfaChallenge { mfaToken methods expiresAt }
  }
}`;
const VERIFY_MFA = `mutation VerifyMfa($input: VerifyMfaInput!) { verifyMfa(input: $input) { ${AUTH_PAYLOAD} } }`;
const CREATE_PROFILE = 'mutation CreateProfile($input: CreateProfileInput!) { createProfile(input: $input) { id userId displayName } }';
const CREATE_POST = 'mutation CreatePost($input: CreatePostInput!) { createPost(input: $input) { id title published authorId } }';
const MY_POSTS = `query MyPosts($authorId: ID!, $after: String) {
  posts(where: { authorId: { eq: $authorId } }, orderBy: [{ field: CREATED_AT, direction: DESC }], first: 20, after: $after) {
    totalCount
    edges { cursor node { id title published authorId author { displayName } } }
    pageInfo { hasNextPage endCursor }
  }
}`;
const REFRESH_SESSION = `mutation RefreshSession($input: RefreshSessionInput!) { refreshSession(input: $input) { ${AUTH_PAYLOAD} } }`;
const ME = 'query Me { me { id } }';

type AuthPayload = Tokens & { user: { id: string; mfaEnabled: boolean } };
/** Tokens either way; MfaEnrollmentRequired's session must enrol a second factor before anything else. */
type SignUpResult =
  ({ __typename: 'AuthPayload' } & AuthPayload) | ({ __typename: 'MfaEnrollmentRequired'; methods: string[] } & AuthPayload);
type SignInResult = SignUpResult | { __typename: 'MfaChallenge'; mfaToken: string; methods: string[]; expiresAt: string };
type PostsPage = {
  posts: { totalCount: number; edges: { cursor: string; node: PostNode }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } };
};

/**
 * One GraphQL request: a JSON POST, with the access token (when signed in) as a Bearer header.
 * Any error fails the step here, because every field this flow asks for is one the user may read.
 * A real screen should rather keep `data` alongside `errors` (partial data, see docs/mobile.md).
 */
async function graphql<TData>(
  url: string,
  operation: string,
  query: string,
  variables: Record<string, unknown> = {},
  accessToken?: string,
): Promise<TData> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        ...(accessToken ? { authorization: `Bearer ${accessToken}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch (error) {
    // No answer at all (offline, server down): an app keeps its tokens and retries later.
    const cause = error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
    throw new Error(`${operation}: cannot reach ${url} (${cause})`, { cause: error });
  }
  let body: { data?: TData | null; errors?: { message: string; extensions?: Record<string, unknown> }[] };
  try {
    body = (await response.json()) as typeof body;
  } catch {
    throw new Error(`${operation}: HTTP ${response.status} without a GraphQL (JSON) body. Is ${url} the /graphql endpoint?`);
  }
  const [first] = body.errors ?? [];
  if (first) {
    const extensions = first.extensions ?? {};
    throw new BastionApiError(
      operation,
      typeof extensions.code === 'string' ? extensions.code : 'UNKNOWN',
      first.message,
      extensions,
      response.status,
    );
  }
  if (body.data == null) throw new Error(`${operation}: HTTP ${response.status} with neither data nor errors`);
  return body.data;
}

export async function runMobileFlow(options: MobileFlowOptions): Promise<MobileFlowResult> {
  const { url, email, password, totpCodeAt } = options;
  const log = options.log ?? (() => {});

  // 1. Sign up. The account is created and signed in at once (a verification email is sent).
  //    The app stores the refresh token in secure storage (iOS Keychain, Android
  //    EncryptedSharedPreferences / Keystore) and keeps the access token in memory; it sends the
  //    access token as "Authorization: Bearer …" and refreshes it shortly before
  //    accessTokenExpiresAt. A weak password gives BAD_USER_INPUT with a message to show as is.
  //    Where every account needs a second factor (the production default) the answer is
  //    MfaEnrollmentRequired: the same tokens, for a session that must do steps 2 and 3 first;
  //    the app goes straight to its enrolment screen. Either way it keeps the tokens.
  const { signUp } = await graphql<{ signUp: SignUpResult }>(url, 'signUp', SIGN_UP, { input: { email, password } });
  log(`sign-up answered ${signUp.__typename}`);
  const userId = signUp.user.id;
  log(`signed up as ${userId}; access token valid until ${signUp.accessTokenExpiresAt}`);

  // 2. Start two-factor authentication. The app shows the QR code (enrollTotp also returns
  //    qrCodeSvg) or the secret for manual entry, then asks for the first code. The secret is
  //    shown once: the app never stores or logs it.
  const { enrollTotp } = await graphql<{ enrollTotp: { factorId: string; secret: string; otpauthUri: string } }>(
    url,
    'enrollTotp',
    ENROLL_TOTP,
    {},
    signUp.accessToken,
  );
  log(`TOTP enrolment started: ${enrollTotp.otpauthUri.split('?')[0]}`);

  // 3. Confirm it with the code the authenticator shows, plus the password.
  //    Two-factor authentication is now on and this session is upgraded to aal2. The app shows
  //    the 10 recovery codes once and asks the user to save them; it does not keep them.
  //    A wrong code: INVALID_MFA_CODE (let the user retype); a wrong password: INVALID_CREDENTIALS.
  const confirmCode = await totpCodeAt(enrollTotp.secret, 'confirmTotp');
  const { confirmTotp } = await graphql<{ confirmTotp: { codes: string[] } }>(
    url,
    'confirmTotp',
    CONFIRM_TOTP,
    { input: { code: confirmCode, currentPassword: password } },
    signUp.accessToken,
  );
  log(`two-factor authentication on; ${confirmTotp.codes.length} recovery codes to show once`);

  // 4. Sign out (or: the user installs the app on a new phone). The session's tokens stop working
  //    at once; the app deletes them from secure storage and sends no Authorization header any
  //    more: a dead token on any request, even signIn, gets HTTP 401 UNAUTHENTICATED.
  await graphql<{ signOut: boolean }>(url, 'signOut', SIGN_OUT, {}, signUp.accessToken);
  log('signed out');

  // 5. Sign in with email and password. With two-factor authentication on, the answer is an
  //    MfaChallenge, not tokens: the app switches to its "enter the code" screen and keeps the
  //    mfaToken in memory only (it is good for a few minutes, for verifyMfa alone). Without it,
  //    the same mutation returns an AuthPayload, or MfaEnrollmentRequired (as in 1) where the
  //    account must have one: apps handle every member of the union.
  //    Wrong email or password: INVALID_CREDENTIALS (the same for both); too many: RATE_LIMITED.
  const { signIn } = await graphql<{ signIn: SignInResult }>(url, 'signIn', SIGN_IN, { input: { email, password } });
  if (signIn.__typename !== 'MfaChallenge')
    throw new Error(`signIn returned ${signIn.__typename}; expected an MfaChallenge for an account with TOTP`);
  log(`sign-in asks for a second factor (${signIn.methods.join(' or ')}) until ${signIn.expiresAt}`);

  // 6. Complete the sign-in with a code (a recovery code works too). The session is aal2.
  //    INVALID_MFA_CODE: let the user retype (a code works once, so a just-used one is refused
  //    until the authenticator shows the next); UNAUTHENTICATED: the challenge expired or took
  //    five wrong codes, go back to the password screen. The app stores the new tokens as in 1.
  const signInCode = await totpCodeAt(enrollTotp.secret, 'verifyMfa');
  const { verifyMfa: session } = await graphql<{ verifyMfa: AuthPayload }>(url, 'verifyMfa', VERIFY_MFA, {
    input: { mfaToken: signIn.mfaToken, code: signInCode },
  });
  log(`signed in with two factors; mfaEnabled = ${session.user.mfaEnabled}`);

  // 7. Create the user's profile (one per account; a second one is CONFLICT). The owner is set
  //    by the server. Invalid input: BAD_USER_INPUT with extensions.field naming the form field.
  const { createProfile: profile } = await graphql<{ createProfile: MobileFlowResult['profile'] }>(
    url,
    'createProfile',
    CREATE_PROFILE,
    { input: { displayName: 'Mobile Flow', bio: 'Made by examples/mobile-flow.ts' } },
    session.accessToken,
  );
  log(`profile ${profile.id} created`);

  // 8. Create a post, published (drafts are visible to their author only).
  const title = `Hello from the mobile flow ${randomBytes(3).toString('hex')}`;
  const { createPost: post } = await graphql<{ createPost: MobileFlowResult['post'] }>(
    url,
    'createPost',
    CREATE_POST,
    { input: { title, body: 'Written by examples/mobile-flow.ts.', published: true } },
    session.accessToken,
  );
  log(`post ${post.id} created`);

  // 9. List the user's posts, newest first, page by page as a feed scrolls: each next page is
  //    asked with after = pageInfo.endCursor of the one before, while pageInfo.hasNextPage.
  let after: string | null = null;
  let pagesRead = 0;
  let listed: MobileFlowResult['listed'] | undefined;
  do {
    const page: PostsPage = await graphql<PostsPage>(url, 'posts', MY_POSTS, { authorId: userId, after }, session.accessToken);
    pagesRead += 1;
    const edge = page.posts.edges.find((candidate) => candidate.node.id === post.id);
    if (edge) listed = { node: edge.node, pagesRead, totalCount: page.posts.totalCount };
    after = page.posts.pageInfo.hasNextPage ? page.posts.pageInfo.endCursor : null;
  } while (!listed && after !== null);
  if (!listed) throw new Error(`posts: the new post ${post.id} is not in the list`);
  log(`found the post in the list (page ${listed.pagesRead}; the user has ${listed.totalCount} post(s))`);

  // 10. Refresh the session before accessTokenExpiresAt (or after a TOKEN_EXPIRED answer).
  //     The answer is a new pair: the app replaces both tokens in secure storage before doing
  //     anything else. The old refresh token is spent: presented again after a few seconds'
  //     grace (meant for a retry of a lost response), it counts as theft and ends the session
  //     (TOKEN_REUSED), so the app must never run two refreshes with the same token.
  //     UNAUTHENTICATED or TOKEN_REUSED here: the session is over, show the sign-in screen.
  const { refreshSession: refreshed } = await graphql<{ refreshSession: AuthPayload }>(url, 'refreshSession', REFRESH_SESSION, {
    input: { refreshToken: session.refreshToken },
  });
  const { me } = await graphql<{ me: { id: string } | null }>(url, 'me', ME, {}, refreshed.accessToken);
  if (!me) throw new Error('me: null with the refreshed access token');
  log(`session refreshed; the new access token is valid until ${refreshed.accessTokenExpiresAt}`);

  return {
    userId,
    signUp: tokensOf(signUp),
    enrollment: { factorId: enrollTotp.factorId, otpauthUri: enrollTotp.otpauthUri },
    recoveryCodes: confirmTotp.codes,
    challenge: { methods: signIn.methods, expiresAt: signIn.expiresAt },
    signedIn: { ...tokensOf(session), mfaEnabled: session.user.mfaEnabled },
    profile,
    post,
    listed,
    refreshed: tokensOf(refreshed),
    meAfterRefresh: me.id,
  };
}

function tokensOf(payload: AuthPayload): Tokens {
  return { accessToken: payload.accessToken, refreshToken: payload.refreshToken, accessTokenExpiresAt: payload.accessTokenExpiresAt };
}

const TOTP_STEP_MS = 30_000;

/**
 * Codes from the real clock, as an authenticator app shows them. A code is accepted once per
 * account, so a second code waits for the next 30-second step (plus a second, in case the
 * server's clock is a little behind this machine's: the server accepts no code from the future).
 */
function authenticatorApp(log: (message: string) => void): MobileFlowOptions['totpCodeAt'] {
  let lastStep = -1;
  return async (secret) => {
    let now = Date.now();
    if (Math.floor(now / TOTP_STEP_MS) <= lastStep) {
      const wait = (lastStep + 1) * TOTP_STEP_MS + 1000 - now;
      log(`waiting ${Math.ceil(wait / 1000)} s for the authenticator's next code`);
      await new Promise((resolve) => setTimeout(resolve, wait));
      now = Date.now();
    }
    lastStep = Math.floor(now / TOTP_STEP_MS);
    return totpCode({ secret, now: new Date(now) });
  };
}

async function main(): Promise<void> {
  const url = process.argv[2] ?? 'http://localhost:4000/graphql';
  const log = (message: string) => console.log(`- ${message}`);
  const suffix = randomBytes(4).toString('hex');
  const result = await runMobileFlow({
    url,
    email: `mobile-flow.${suffix}@example.com`,
    password: randomBytes(15).toString('base64url'),
    totpCodeAt: authenticatorApp(log),
    log,
  });
  console.log(`Done: user ${result.userId}, profile ${result.profile.id}, post ${result.post.id}.`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
