import { RealtimeFlowResult, runRealtimeFlow } from '../../examples/realtime-flow';
import { strongPassword } from '../support/factories';
import { eventually } from '../support/eventually';
import { TestServer, startTestServer } from '../support/test-server';

describe('examples/realtime-flow.ts, end to end', () => {
  let server: TestServer;
  let result: RealtimeFlowResult;
  const logged: string[] = [];

  beforeAll(async () => {
    server = await startTestServer();
    const hub = server.bastion.services.subscriptionHub;
    result = await runRealtimeFlow({
      url: server.url,
      alice: { email: 'realtime.alice@example.com', password: strongPassword() },
      bob: { email: 'realtime.bob@example.com', password: strongPassword() },
      // The server follows Alice's comments and Carol's posts (Carol's comments were refused).
      following: async () => {
        await eventually(() => hub.connections().reduce((sum, connection) => sum + connection.subscriptions, 0) === 2);
      },
      log: (message) => logged.push(message),
    });
  });
  afterAll(() => server?.close());

  it('delivers Bob’s comment to Alice, the post’s author, as CREATED with the comment', () => {
    expect(result.aliceComments).toEqual([
      {
        kind: 'CREATED',
        id: result.commentId,
        node: { id: result.commentId, body: 'Great post, Alice!', postId: result.postId, authorId: result.bobId },
      },
    ]);
  });

  it('refuses a signed-out visitor’s subscription to comments, and sends her none', () => {
    expect(result.carolCommentsRefused).toBe('UNAUTHENTICATED');
    // The refusal ended that subscription (one result with errors, then complete), and her socket
    // stayed open: her post changes, the sentinel last, arrived after Bob's comment was committed.
    expect(result.carolComments).toEqual([]);
    expect(result.carolPosts.at(-1)?.id).toBe(result.sentinelPostId);
  });

  it('tells the visitor the unpublished post left (DELETED, no node), and nothing of the draft’s edits', () => {
    // Exactly two changes, in commit order: the unpublish, then the sentinel. The two draft edits
    // were committed between them, so had either reached Carol it would stand between the two.
    expect(result.carolPosts).toEqual([
      { kind: 'DELETED', id: result.postId, node: null },
      { kind: 'CREATED', id: result.sentinelPostId, node: { id: result.sentinelPostId, title: 'A second post', published: true } },
    ]);
    expect(JSON.stringify(result.carolPosts)).not.toMatch(/Draft:/);
  });

  it('left the draft as Alice edited it, and logged every step', async () => {
    const answer = await server.bastion.database.dataSource.query<{ title: string; published: boolean }[]>(
      'SELECT title, published FROM posts WHERE id = $1',
      [result.postId],
    );
    expect(answer).toEqual([{ title: result.draftTitles.at(-1), published: false }]);
    expect(logged).toHaveLength(7);
    expect(logged.at(-1)).toMatch(/reached her as nothing$/);
  });
});
