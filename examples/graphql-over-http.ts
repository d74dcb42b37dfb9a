/**
 * What the files and realtime walk-throughs share: one GraphQL request over HTTP, as an app's
 * networking layer sends it, and a throwaway account signed up the way an app does it.
 */

export interface GraphQLAnswer<TData> {
  data?: TData | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

const SIGN_UP = `mutation SignUp($input: SignUpInput!) {
  signUp(input: $input) {
    __typename
    ... on AuthPayload { accessToken user { id } }
  }
}`;

/** One JSON POST to /graphql; any error fails the step (every field asked for here is one the caller may read). */
export async function graphql<TData>(
  url: string,
  operation: string,
  query: string,
  variables: Record<string, unknown>,
  accessToken?: string,
): Promise<TData> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json',
      ...(accessToken ? { authorization: `Bearer ${accessToken}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as GraphQLAnswer<TData>;
  const [first] = body.errors ?? [];
  if (first) throw new Error(`${operation} failed with ${first.extensions?.code ?? 'UNKNOWN'}: ${first.message}`);
  if (body.data == null) throw new Error(`${operation}: HTTP ${response.status} with neither data nor errors`);
  return body.data;
}

/** Signs an account up; where every account needs a second factor first, says so and stops. */
export async function signUp(url: string, who: { email: string; password: string }): Promise<{ accessToken: string; id: string }> {
  const { signUp: answer } = await graphql<{ signUp: { __typename: string; accessToken?: string; user?: { id: string } } }>(
    url,
    'signUp',
    SIGN_UP,
    { input: who },
  );
  if (answer.__typename !== 'AuthPayload' || !answer.accessToken || !answer.user)
    throw new Error(`signUp answered ${answer.__typename}: this server requires a second factor first (see examples/mobile-flow.ts)`);
  return { accessToken: answer.accessToken, id: answer.user.id };
}
