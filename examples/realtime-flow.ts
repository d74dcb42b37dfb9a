/**
 * Live updates, as an app sees them: subscriptions over WebSocket (graphql-transport-ws, the
 * protocol Apollo iOS and Apollo Kotlin speak) on the same /graphql URL, queries and mutations over
 * HTTP as always. Three people:
 *
 * - Alice signs up, publishes a post and subscribes to its comments
 *   (`commentChanged(where: { postId: { eq } })`). Bob signs up and comments: Alice receives it.
 * - Carol is a visitor who is not signed in. The sample policy lets anonymous visitors read
 *   published posts but no comments: her subscription to the same comments is refused
 *   (UNAUTHENTICATED), and Bob's comment never reaches her. She also follows Alice's posts
 *   (`postChanged`): when Alice unpublishes the post, Carol gets DELETED (for her it left what she
 *   may see); Alice's later edits of the draft reach Carol as nothing at all, which the next
 *   change Carol may see (Alice publishing another post) proves: changes arrive in commit order.
 *
 * Run it against a running development server (after `npx tsc -p tsconfig.json`, which compiles
 * examples/ too):
 *
 *   node dist/examples/realtime-flow.js http://localhost:4000/graphql
 *
 * It signs up two throwaway accounts (realtime-flow.<random>.alice/bob@example.com). Where every
 * account needs a second factor (BASTION_MFA_REQUIRED_FOR=all, the production default) sign-up
 * answers MfaEnrollmentRequired and the script stops: see examples/mobile-flow.ts for enrolment.
 * tests/integration/realtime-flow.test.ts runs the same function against a test server.
 */
import { randomBytes } from 'node:crypto';
import { Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { GraphQLAnswer, graphql, signUp } from './graphql-over-http';

export interface RealtimeFlowOptions {
  /** The GraphQL endpoint, e.g. http://localhost:4000/graphql; the WebSocket URL is the same with ws(s)://. */
  readonly url: string;
  readonly alice: { readonly email: string; readonly password: string };
  readonly bob: { readonly email: string; readonly password: string };
  /**
   * Resolves once the server follows the subscriptions just sent. graphql-transport-ws does not
   * acknowledge a subscribe, so an app subscribes first and then fetches what it shows: a change
   * in between reaches it one way or the other. The script waits a second; the test asks the
   * server itself.
   */
  readonly following?: () => Promise<void>;
  readonly log?: (message: string) => void;
}

/** One change as a subscriber received it. */
export interface Change<TNode> {
  readonly kind: 'CREATED' | 'UPDATED' | 'DELETED';
  readonly id: string;
  readonly node: TNode | null;
}

export interface CommentNode {
  readonly id: string;
  readonly body: string;
  readonly postId: string;
  readonly authorId: string;
}

export interface PostNode {
  readonly id: string;
  readonly title: string;
  readonly published: boolean;
}

/** Everything the flow saw, for a test (or a curious reader) to check. */
export interface RealtimeFlowResult {
  readonly aliceId: string;
  readonly bobId: string;
  readonly postId: string;
  readonly commentId: string;
  /** What Alice's comment subscription received: Bob's comment. */
  readonly aliceComments: readonly Change<CommentNode>[];
  /** Carol's comment subscription: refused at subscribe, with this code. */
  readonly carolCommentsRefused: string;
  /** Messages with data Carol's comment subscription received (none). */
  readonly carolComments: readonly Change<CommentNode>[];
  /** Every change Carol's post subscription received, in order: the unpublished post DELETED, then the sentinel CREATED. */
  readonly carolPosts: readonly Change<PostNode>[];
  /** The post Alice published after editing the draft: Carol's next change after DELETED. */
  readonly sentinelPostId: string;
  /** The draft's titles after Alice's edits (what Carol never saw). */
  readonly draftTitles: readonly string[];
}

const CREATE_POST = 'mutation CreatePost($input: CreatePostInput!) { createPost(input: $input) { id } }';
const UPDATE_POST = 'mutation UpdatePost($id: ID!, $input: UpdatePostInput!) { updatePost(id: $id, input: $input) { id title published } }';
const CREATE_COMMENT = 'mutation CreateComment($input: CreateCommentInput!) { createComment(input: $input) { id } }';
// The subscriptions, as an app keeps them in .graphql files for its code generator.
const COMMENTS_OF_POST = `subscription CommentsOfPost($postId: ID!) {
  commentChanged(where: { postId: { eq: $postId } }) { kind id node { id body postId authorId } }
}`;
const POSTS_OF_AUTHOR = `subscription PostsOfAuthor($authorId: ID!) {
  postChanged(where: { authorId: { eq: $authorId } }) { kind id node { id title published } }
}`;

/**
 * A subscription's messages in arrival order, and a way to wait for the next ones. An app would
 * hand the data to its cache (Apollo's watchers update the screen).
 */
class Inbox<TNode> {
  readonly changes: Change<TNode>[] = [];
  /** The error the server answered the subscribe with (the subscription is then over). */
  refusal: string | null = null;
  private waiters: (() => void)[] = [];

  constructor(client: Client, query: string, variables: Record<string, unknown>, field: string) {
    client.subscribe<Record<string, Change<TNode>>>(
      { query, variables },
      {
        next: (message) => {
          // A refused subscribe is answered with one result carrying errors, then complete.
          if (message.data) this.changes.push(message.data[field]);
          else if (message.errors?.length)
            this.refusal = (message.errors[0].extensions?.code as string | undefined) ?? message.errors[0].message;
          this.wake();
        },
        error: (error) => {
          const errors = Array.isArray(error) ? (error as GraphQLAnswer<unknown>['errors'] & object) : null;
          this.refusal = errors?.[0]?.extensions?.code ?? (error instanceof Error ? error.message : 'socket closed');
          this.wake();
        },
        complete: () => this.wake(),
      },
    );
  }

  /** Resolves with the first `count` changes once they arrived (bounded: a live demo must not hang). */
  async first(count: number, timeoutMs = 10_000): Promise<Change<TNode>[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.changes.length < count) {
      if (this.refusal !== null) throw new Error(`the subscription ended (${this.refusal}) before change ${count}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`change ${count} did not arrive within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.changes.slice(0, count);
  }

  /** Resolves once the subscribe was answered with an error. */
  async refused(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.refusal === null) {
      if (this.changes.length > 0) throw new Error('the subscription was not refused: it received a change');
      if (Date.now() >= deadline) throw new Error(`the subscription was not refused within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.refusal;
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}

/**
 * A socket on /graphql. Signed in: the access token goes in connection_init's payload (a browser
 * cannot set headers on a WebSocket, and native clients use the same payload). Anonymous: none.
 */
function socket(url: string, accessToken?: string): Client {
  return createClient({
    url: url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: accessToken ? { authorization: `Bearer ${accessToken}` } : {},
    // A demo reports a closed socket instead of reconnecting; an app reconnects (docs/mobile.md, "Live updates").
    retryAttempts: 0,
    lazy: false,
  });
}

export async function runRealtimeFlow(options: RealtimeFlowOptions): Promise<RealtimeFlowResult> {
  const { url } = options;
  const log = options.log ?? (() => {});
  const following = options.following ?? (() => new Promise<void>((resolve) => setTimeout(resolve, 1_000)));

  // 1. Alice and Bob sign up (over HTTP, as every query and mutation: a socket takes subscriptions only).
  const alice = await signUp(url, options.alice);
  const bob = await signUp(url, options.bob);
  log(`Alice (${alice.id}) and Bob (${bob.id}) signed up`);

  // 2. Alice publishes a post.
  const { createPost: post } = await graphql<{ createPost: { id: string } }>(
    url,
    'createPost',
    CREATE_POST,
    { input: { title: 'Live from the realtime flow', body: 'Comments appear as they are written.', published: true } },
    alice.accessToken,
  );
  log(`Alice published post ${post.id}`);

  // 3. Alice subscribes to its comments on a signed-in socket; Carol, signed out, to the same
  //    comments and to Alice's posts on an anonymous one.
  const aliceSocket = socket(url, alice.accessToken);
  const carolSocket = socket(url);
  try {
    const aliceComments = new Inbox<CommentNode>(aliceSocket, COMMENTS_OF_POST, { postId: post.id }, 'commentChanged');
    const carolComments = new Inbox<CommentNode>(carolSocket, COMMENTS_OF_POST, { postId: post.id }, 'commentChanged');
    const carolPosts = new Inbox<PostNode>(carolSocket, POSTS_OF_AUTHOR, { authorId: alice.id }, 'postChanged');
    // Anonymous visitors may read no comments: the subscribe is answered with an error at once
    // (the socket stays open for her other subscriptions).
    const carolCommentsRefused = await carolComments.refused();
    log(`Carol's comment subscription was refused: ${carolCommentsRefused}`);
    await following();

    // 4. Bob comments; Alice receives it (CREATED, with the comment as Alice may read it).
    const { createComment: comment } = await graphql<{ createComment: { id: string } }>(
      url,
      'createComment',
      CREATE_COMMENT,
      { input: { postId: post.id, body: 'Great post, Alice!' } },
      bob.accessToken,
    );
    const [heard] = await aliceComments.first(1);
    log(`Alice received ${heard.kind} comment ${heard.id}: "${heard.node?.body}"`);

    // 5. Alice unpublishes the post. For Carol it left what she may see: DELETED, node null.
    await graphql(url, 'updatePost', UPDATE_POST, { id: post.id, input: { published: false } }, alice.accessToken);
    const [left] = await carolPosts.first(1);
    log(`Carol received ${left.kind} for post ${left.id}`);

    // 6. Alice edits the draft twice. Carol may not read drafts: these changes are not hers to hear.
    const draftTitles = ['Draft: rewriting this', 'Draft: almost there'];
    for (const title of draftTitles) await graphql(url, 'updatePost', UPDATE_POST, { id: post.id, input: { title } }, alice.accessToken);
    log('Alice edited the draft twice');

    // 7. The sentinel: Alice publishes another post. Changes arrive in commit order, so Carol's next
    //    change being this post proves the edits before it sent her nothing.
    const { createPost: sentinel } = await graphql<{ createPost: { id: string } }>(
      url,
      'createPost',
      CREATE_POST,
      { input: { title: 'A second post', published: true } },
      alice.accessToken,
    );
    const [, next] = await carolPosts.first(2);
    if (next.id !== sentinel.id) throw new Error(`Carol's next change was ${next.kind} ${next.id}, not the new post ${sentinel.id}`);
    log(`Carol's next change is ${next.kind} post ${next.id}: the draft's edits reached her as nothing`);

    return {
      aliceId: alice.id,
      bobId: bob.id,
      postId: post.id,
      commentId: comment.id,
      aliceComments: [...aliceComments.changes],
      carolCommentsRefused,
      carolComments: [...carolComments.changes],
      carolPosts: [...carolPosts.changes],
      sentinelPostId: sentinel.id,
      draftTitles,
    };
  } finally {
    await Promise.all([aliceSocket.dispose(), carolSocket.dispose()]);
  }
}

async function main(): Promise<void> {
  const url = process.argv[2] ?? 'http://localhost:4000/graphql';
  const log = (message: string) => console.log(`- ${message}`);
  const suffix = randomBytes(4).toString('hex');
  const account = (name: string) => ({
    email: `realtime-flow.${suffix}.${name}@example.com`,
    password: randomBytes(15).toString('base64url'),
  });
  const result = await runRealtimeFlow({ url, alice: account('alice'), bob: account('bob'), log });
  console.log(`Done: post ${result.postId}, comment ${result.commentId}, Carol saw ${result.carolPosts.length} post changes.`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
