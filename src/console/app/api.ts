/**
 * The console's one way to the server: POST /graphql on its own origin, with the session's access
 * token. Errors come back as ApiError carrying the catalogue's code and the server's message,
 * which the pages show as they are (they are written for people).
 */

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface GraphQLResponse<T> {
  readonly data?: T | null;
  readonly errors?: readonly { readonly message: string; readonly extensions?: { readonly code?: string } }[];
}

/** Sends one operation; `token` is the access token, when signed in. Resolves to `data`, or throws the first error. */
export async function request<T>(query: string, variables: Record<string, unknown> = {}, token?: string): Promise<T> {
  let response: Response;
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError('NETWORK', 'The server cannot be reached. Check the connection and try again.');
  }
  let body: GraphQLResponse<T>;
  try {
    body = (await response.json()) as GraphQLResponse<T>;
  } catch {
    throw new ApiError('BAD_RESPONSE', `The server answered ${response.status} without a GraphQL body.`);
  }
  const [first] = body.errors ?? [];
  if (first) throw new ApiError(first.extensions?.code ?? 'UNKNOWN', first.message);
  if (!body.data) throw new ApiError('BAD_RESPONSE', 'The server answered without data.');
  return body.data;
}
