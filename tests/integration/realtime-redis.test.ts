import { createLogger } from '../../src/logging';
import { RunningBastion, startBastion } from '../../src/main';
import { eventually } from '../support/eventually';
import { makeUser } from '../support/factories';
import { LogCollector } from '../support/log-collector';
import { liveClient } from '../support/live-client';
import { TestServer, secondInstanceConfig, startTestServer } from '../support/test-server';

/**
 * With REDIS_URL set, change events travel over Redis pub/sub instead of PostgreSQL NOTIFY: the
 * writer publishes its transaction's events after COMMIT, every instance hears them.
 */
describe('realtime over Redis', () => {
  const redisUrl = process.env.REDIS_URL;
  if (!redisUrl) {
    it('is not run: REDIS_URL is not set (CI sets it)', () => {
      process.stdout.write('realtime over Redis: not run, REDIS_URL is not set\n');
    });
    return;
  }

  let a: TestServer;
  let b: RunningBastion;

  beforeAll(async () => {
    a = await startTestServer({ config: { redisUrl } });
    const config = secondInstanceConfig(a, { redisUrl });
    b = await startBastion(config, {
      logger: createLogger({ level: 'warn', pretty: false, destination: new LogCollector() }),
      clock: a.clock,
    });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.close();
  });

  it('delivers a change made on one instance to a subscriber on the other, in commit order, and nothing rolled back', async () => {
    const alice = await makeUser(a);
    const live = liveClient({ url: b.url }, alice.accessToken);
    await live.connected;
    const changes = live.subscribe('subscription { postChanged { kind id node { title } } }');
    await eventually(() => b.services.subscriptionHub.isFollowed('Post'));
    const created = await alice.client.request<{ createPost: { id: string } }>('mutation { createPost(input: { title: "one" }) { id } }');
    const id = created.body.data!.createPost.id;
    // Refused (title too long): its transaction rolls back, so nothing is published.
    await alice.client.request('mutation($id: ID!) { updatePost(id: $id, input: { title: "' + 'x'.repeat(201) + '" }) { id } }', { id });
    await alice.client.request('mutation($id: ID!) { updatePost(id: $id, input: { title: "two" }) { id } }', { id });
    const messages = await changes.next(2);
    expect(messages.map((message) => message.data?.postChanged)).toEqual([
      { kind: 'CREATED', id, node: { title: 'one' } },
      { kind: 'UPDATED', id, node: { title: 'two' } },
    ]);
    // B listens on Redis only: a change made outside Bastion (its NOTIFY is sent all the same) is not heard;
    // the next change made through the API is the next message.
    await a.bastion.database.dataSource.query(`UPDATE posts SET title = 'by hand' WHERE id = $1`, [id]);
    await alice.client.request('mutation($id: ID!) { updatePost(id: $id, input: { title: "three" }) { id } }', { id });
    expect((await changes.next(3))[2].data?.postChanged).toEqual({ kind: 'UPDATED', id, node: { title: 'three' } });
    expect(b.services.redisChanges).not.toBeNull();
    await live.dispose();
  });
});
