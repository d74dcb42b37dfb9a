import { TestServer, startTestServer } from '../support/test-server';
import { codesOf, makeClient, makeUser } from '../support/factories';
import { liveClient } from '../support/live-client';
import WebSocket from 'ws';
import { eventually } from '../support/eventually';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server.close();
});

const POST_CHANGED = 'subscription { postChanged { kind id node { id title authorId } } }';

test('an author hears their own post created', async () => {
  const alice = await makeUser(server);
  const live = liveClient(server, alice.accessToken);
  await live.connected;
  const changes = live.subscribe(POST_CHANGED);
  await eventually(() => server.bastion.services.subscriptionHub.isFollowed('Post'));
  const created = await alice.client.request<{ createPost: { id: string } }>('mutation { createPost(input: { title: "Hello" }) { id } }');
  const id = created.body.data!.createPost.id;
  const [first] = await changes.next(1);
  expect(first).toEqual({ data: { postChanged: { kind: 'CREATED', id, node: { id, title: 'Hello', authorId: alice.id } } } });
  await live.dispose();
});

test('a subscription sent over HTTP is refused with a code, and runs nothing', async () => {
  const response = await makeClient(server).request('subscription { postChanged { id } }');
  expect({ status: response.status, codes: codesOf(response) }).toEqual({ status: 400, codes: ['BAD_REQUEST'] });
});

test("a post's deletion reaches its comments' subscribers as DELETED (a cascade, heard through the trigger)", async () => {
  const alice = await makeUser(server);
  const bob = await makeUser(server);
  const created = await alice.client.request<{ createPost: { id: string } }>(
    'mutation { createPost(input: { title: "Thread", published: true }) { id } }',
  );
  const postId = created.body.data!.createPost.id;
  const comment = await bob.client.request<{ createComment: { id: string } }>(
    'mutation($postId: ID!) { createComment(input: { postId: $postId, body: "First" }) { id } }',
    { postId },
  );
  const commentId = comment.body.data!.createComment.id;
  const live = liveClient(server, bob.accessToken);
  await live.connected;
  const changes = live.subscribe(
    'subscription($postId: ID!) { commentChanged(where: { postId: { eq: $postId } }) { kind id node { body } } }',
    {
      postId,
    },
  );
  await eventually(() => server.bastion.services.subscriptionHub.isFollowed('Comment'));
  await alice.client.request('mutation($id: ID!) { deletePost(id: $id) }', { id: postId });
  expect((await changes.next(1))[0]).toEqual({ data: { commentChanged: { kind: 'DELETED', id: commentId, node: null } } });
  await live.dispose();
});

test('a subscription whose root field hangs on a required variable is refused with a code, over HTTP and over WebSocket', async () => {
  // graphql-js 16's single-root-field validation evaluates @include without variables and throws.
  const document = 'subscription($v: Boolean!) { postChanged @include(if: $v) { id } }';
  const overHttp = await makeClient(server).request(document, { v: true });
  expect({ status: overHttp.status, codes: codesOf(overHttp) }).toEqual({ status: 400, codes: ['BAD_REQUEST'] });
  const live = liveClient(server);
  await live.connected;
  const refused = live.subscribe(document, { v: true });
  const [answer] = await refused.next(1);
  expect(answer.errors?.map((error) => error.extensions?.code)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
  await live.dispose();
});

test('a subscription whose only field @include leaves out is refused with BAD_USER_INPUT (graphql-js 16 would throw)', async () => {
  const live = liveClient(server);
  await live.connected;
  const refused = live.subscribe('subscription { postChanged @include(if: false) { id } }');
  const [answer] = await refused.next(1);
  expect(answer.errors?.map((error) => error.extensions?.code)).toEqual(['BAD_USER_INPUT']);
  await live.dispose();
});

test('a statement changing more than 10,000 rows closes its followers with 1012 (refetch) instead of 10,001 deliveries', async () => {
  const alice = await makeUser(server);
  const live = liveClient(server, alice.accessToken);
  await live.connected;
  live.subscribe('subscription { postChanged { kind id } }');
  await eventually(() => server.bastion.services.subscriptionHub.isFollowed('Post'));
  await server.bastion.database.dataSource.query(
    `INSERT INTO posts (author_id, title) SELECT $1, 'bulk ' || n FROM generate_series(1, 10001) AS n`,
    [alice.id],
  );
  expect(await live.closed).toBe(1012);
  const [{ kinds }] = await server.bastion.database.dataSource.query<{ kinds: string[] }[]>(
    `SELECT array_agg(DISTINCT kind) AS kinds FROM realtime_events
      WHERE model = 'Post' AND created_at >= now() - interval '1 minute' AND row_id = '00000000-0000-0000-0000-000000000000'`,
  );
  expect(kinds).toEqual(['BULK']);
});

describe('with BASTION_WS_REQUIRE_TLS (the production default)', () => {
  let strict: TestServer;
  beforeAll(async () => {
    strict = await startTestServer({ config: { wsRequireTls: true, trustProxy: ['127.0.0.1', '::1'] } });
  });
  afterAll(() => strict.close());

  /** The HTTP status of the upgrade (101 when it became a WebSocket). */
  const upgradeStatus = (headers: Record<string, string>) =>
    new Promise<number>((resolve, reject) => {
      const socket = new WebSocket(strict.url.replace(/^http/, 'ws'), 'graphql-transport-ws', { headers });
      socket.once('upgrade', (response) => {
        resolve(response.statusCode ?? 0);
        socket.close();
      });
      socket.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
      socket.once('error', (error) => (error.message.startsWith('Unexpected server response') ? undefined : reject(error)));
    });

  test('a plain ws:// upgrade is refused with 426; one a trusted TLS proxy forwards is accepted', async () => {
    expect(await upgradeStatus({})).toBe(426);
    expect(await upgradeStatus({ 'x-forwarded-proto': 'https' })).toBe(101);
  });
});

test('a lost LISTEN connection closes followers with 1012 once it is back: changes sent meanwhile are lost, the app refetches', async () => {
  const alice = await makeUser(server);
  const live = liveClient(server, alice.accessToken);
  await live.connected;
  live.subscribe('subscription { postChanged { kind id } }');
  await eventually(() => server.bastion.services.subscriptionHub.isFollowed('Post'));
  const [{ terminated }] = await server.bastion.database.dataSource.query<{ terminated: number }[]>(
    'SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS terminated FROM pg_stat_activity ' +
      "WHERE application_name LIKE 'bastion-listen-%' AND datname = current_database()",
  );
  expect(terminated).toBe(1);
  expect(await live.closed).toBe(1012);
});

test('shutdown closes every socket with 1001 (reconnect to another instance)', async () => {
  const closing = await startTestServer();
  try {
    const live = liveClient(closing);
    await live.connected;
    live.subscribe('subscription { postChanged { kind id } }');
    await eventually(() => closing.bastion.services.subscriptionHub.isFollowed('Post'));
    const stopped = closing.bastion.stop();
    expect(await live.closed).toBe(1001);
    await stopped;
  } finally {
    await closing.close();
  }
});
