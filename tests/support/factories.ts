import type { TestServer } from './test-server';

export interface GraphQLResponse<TData = Record<string, unknown>> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: {
    data?: TData | null;
    errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[];
  };
}

export interface GraphQLClient {
  request<TData = Record<string, unknown>>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<GraphQLResponse<TData>>;
}

/**
 * A client that talks to the server the way a mobile app does: JSON POSTs over real HTTP.
 * Later issues add signed-in clients (`makeUser`) here.
 */
export function makeClient(server: Pick<TestServer, 'url'>, defaultHeaders: Record<string, string> = {}): GraphQLClient {
  return {
    async request<TData>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<GraphQLResponse<TData>> {
      const response = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...defaultHeaders, ...headers },
        body: JSON.stringify({ query, variables }),
      });
      return { status: response.status, headers: response.headers, body: (await response.json()) as GraphQLResponse<TData>['body'] };
    },
  };
}
