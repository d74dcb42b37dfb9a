/** Which in-process server a scenario is aimed at. */
export type BenchTarget = 'floor' | 'bastion';

/** The floors every Bastion scenario is a ratio of, measured in the same run (floor-server.ts). */
export type FloorName = 'floor' | 'floor-100';

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
  /** Looks further into the probe's answer (see probe); the load itself only sees status codes. */
  readonly check?: (body: unknown) => string | undefined;
  /** A floor's own name (target 'floor'), or the floor a Bastion scenario is a ratio of (default 'floor'). */
  readonly floor?: FloorName;
  /** The design goal for the ratio to the floor, shown beside it (reported, not a gate). */
  readonly floorGoal?: number;
  /** Also report how many SQL statements one request sends, counted once before the load. */
  readonly countStatements?: boolean;
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

/** The path of the first null (or missing) value inside `value`, '' for `value` itself; undefined when there is none. */
function nullPath(value: unknown, path = ''): string | undefined {
  if (value === null || value === undefined) return path;
  if (typeof value !== 'object') return undefined;
  for (const [key, inner] of Object.entries(value)) {
    const found = nullPath(inner, path === '' ? key : `${path}.${key}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * A connection `list` of exactly `size` edges with every selected field non-null: a short page,
 * or a field the policy withheld (null, or a missing author), would flatter the numbers.
 */
function fullConnection(list: string, size: number): (body: unknown) => string | undefined {
  return (body) => {
    const edges = (body as { data?: Record<string, { edges?: { node: unknown }[] } | null> }).data?.[list]?.edges ?? [];
    if (edges.length !== size) return `expected ${size} edges, got ${edges.length}`;
    for (const [index, edge] of edges.entries()) {
      const gap = nullPath(edge.node);
      if (gap !== undefined) return `edge ${index}: ${gap === '' ? 'node' : gap} is null`;
    }
    return undefined;
  };
}

const SERVER_INFO = graphqlRequest('{ serverInfo { name version serverTime } }');
const ME = graphqlRequest('{ me { id email roles } }');
/** The reader's feed (their own drafts come first), the page a list screen asks for. */
const POSTS_LEAN = graphqlRequest('{ posts(first: 100) { edges { node { id title authorId } } } }');
const POSTS_AUTHOR = graphqlRequest('{ posts(first: 100) { edges { node { id title authorId author { displayName } } } } }');
const POSTS_100 = graphqlRequest(
  '{ posts(first: 100, where: { published: { eq: true } }) { edges { node { id title body published createdAt author { displayName } } } } }',
);

/**
 * Every row of the bench table. Floors run first; every other row is reported as a ratio of its
 * floor. An issue that adds a query or mutation worth watching adds its scenario here.
 */
export const SCENARIOS: readonly Scenario[] = [
  // The least an authenticated endpoint does: an EdDSA token check, `SELECT now()`, JSON.
  { name: 'floor', target: 'floor', floor: 'floor', request: SERVER_INFO, signedIn: true },
  // The same, with one SQL statement returning the reader's page of 100 posts (id, title, author_id).
  {
    name: 'floor-100',
    target: 'floor',
    floor: 'floor-100',
    request: { ...POSTS_LEAN, path: '/posts' },
    signedIn: true,
    check: fullConnection('posts', 100),
  },
  // Same request as the floor, so the ratio is what Bastion's stack costs over the bare minimum.
  { name: 'serverInfo', target: 'bastion', request: SERVER_INFO },
  // Token verification and the session check on top of one row read (and an email decrypted).
  { name: 'me', target: 'bastion', request: ME, signedIn: true, floorGoal: 0.45 },
  // The reader's page: the data API's list in the viewer's scope (own drafts OR published).
  {
    name: 'posts-lean',
    target: 'bastion',
    floor: 'floor-100',
    request: POSTS_LEAN,
    signedIn: true,
    check: fullConnection('posts', 100),
    floorGoal: 0.45,
    countStatements: true,
  },
  // The same with a to-one relation, each row's author profile.
  {
    name: 'posts-author',
    target: 'bastion',
    floor: 'floor-100',
    request: POSTS_AUTHOR,
    signedIn: true,
    check: fullConnection('posts', 100),
    floorGoal: 0.33,
    countStatements: true,
  },
  // A public feed page at the maximum: every field, the body (~300 characters) and the author.
  {
    name: 'posts-100',
    target: 'bastion',
    floor: 'floor-100',
    request: POSTS_100,
    signedIn: true,
    check: fullConnection('posts', 100),
    floorGoal: 0.3,
    countStatements: true,
  },
];
