import { TestServer, startTestServer } from '../support/test-server';
import { codesOf, makeClient, makeUser } from '../support/factories';
import { liveClient } from '../support/live-client';
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
