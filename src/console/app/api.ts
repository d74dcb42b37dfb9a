/**
 * The pages' one way to the server: POST /graphql on their own origin, with the session's access
 * token when there is one. Errors come back as ApiError carrying the catalogue's code, the
 * server's message (written for people, shown as it is) and its other extensions.
 */

export interface GraphQLError {
  readonly message: string;
  readonly extensions?: { readonly code?: string } & Readonly<Record<string, unknown>>;
}

export interface GraphQLResponse<T> {
  readonly data?: T | null;
  readonly errors?: readonly GraphQLError[];
}

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** The error's extensions besides its code (a field name, a limit). */
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
  }
}

/** Codes that say nothing about the session: the request may succeed when tried again. */
export const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  'NETWORK',
  'BAD_RESPONSE',
  'SERVICE_UNAVAILABLE',
  'INTERNAL_SERVER_ERROR',
  'RATE_LIMITED',
]);

/**
 * Sends a GraphQL request body and answers the server's JSON as it is. `keepalive` lets the
 * request outlive the page (the sign-out sent as the tab closes).
 */
export async function post<T>(body: unknown, token?: string, options: { readonly keepalive?: boolean } = {}): Promise<GraphQLResponse<T>> {
  let response: Response;
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      keepalive: options.keepalive ?? false,
    });
  } catch {
    throw new ApiError('NETWORK', 'The server cannot be reached. Check the connection and try again.');
  }
  try {
    return (await response.json()) as GraphQLResponse<T>;
  } catch {
    throw new ApiError('BAD_RESPONSE', `The server answered ${response.status} without a GraphQL body.`);
  }
}

/** The first error of an answer as an ApiError, or null. */
export function firstError(body: GraphQLResponse<unknown>): ApiError | null {
  const [first] = body.errors ?? [];
  if (!first) return null;
  const { code, ...details } = first.extensions ?? {};
  return new ApiError(code ?? 'UNKNOWN', first.message, details);
}

/** Sends one operation; `token` is the access token, when signed in. Resolves to `data`, or throws the first error. */
export async function request<T>(query: string, variables: Record<string, unknown> = {}, token?: string): Promise<T> {
  const body = await post<T>({ query, variables }, token);
  const error = firstError(body);
  if (error) throw error;
  if (!body.data) throw new ApiError('BAD_RESPONSE', 'The server answered without data.');
  return body.data;
}
