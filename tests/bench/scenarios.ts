/** Which in-process server a scenario is aimed at. */
export type BenchTarget = 'floor' | 'bastion';

export interface BenchRequest {
  readonly method: 'GET' | 'POST';
  /** Path on the target's origin, e.g. /graphql */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface Scenario {
  readonly name: string;
  readonly target: BenchTarget;
  readonly request: BenchRequest;
  /**
   * Sent with the target's access token as a bearer: the floor's own, or on Bastion the bench
   * user's. The harness adds it, since tokens exist only at run time.
   */
  readonly signedIn?: boolean;
}

export function graphqlRequest(query: string): BenchRequest {
  return {
    method: 'POST',
    path: '/graphql',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
  };
}

/** The request as a signed-in app sends it: with its access token as a bearer. */
export function withBearer(request: BenchRequest, token: string): BenchRequest {
  return { ...request, headers: { ...request.headers, authorization: `Bearer ${token}` } };
}

const SERVER_INFO = graphqlRequest('{ serverInfo { name version serverTime } }');
const ME = graphqlRequest('{ me { id email roles } }');

/**
 * Every row of the bench table. Exactly one entry targets the floor; it always runs first and
 * every other row is reported as a ratio of it. An issue that adds a query or mutation worth
 * watching adds its scenario here.
 */
export const SCENARIOS: readonly Scenario[] = [
  // Same request as serverInfo, so the ratio is what Bastion's stack costs over the bare minimum.
  { name: 'floor', target: 'floor', request: SERVER_INFO, signedIn: true },
  { name: 'serverInfo', target: 'bastion', request: SERVER_INFO },
  // Token verification and the session check on top of one row read (and an email decrypted).
  { name: 'me', target: 'bastion', request: ME, signedIn: true },
];
