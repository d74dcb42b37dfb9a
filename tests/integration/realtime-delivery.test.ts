import { decodeJwt } from 'jose';
import { CLI_ACTOR } from '../../src/audit/actor';
import { FirewallAction } from '../../src/firewall/firewall-rule.entity';
import { createLogger } from '../../src/logging';
import { RunningBastion, startBastion } from '../../src/main';
import { eventually } from '../support/eventually';
import { GraphQLClient, TestAccount, makeUser } from '../support/factories';
import { LiveClient, Received, liveClient } from '../support/live-client';
import { LogCollector } from '../support/log-collector';
import { TestServer, secondInstanceConfig, startTestServer } from '../support/test-server';

/**
 * Realtime delivery across two instances on one database: every mutation goes to A over HTTP,
 * every subscriber listens on B (unless a test says otherwise), so a change reaches a subscriber
 * only through the database's NOTIFY and B's own decision with the subscriber's rights at that
 * moment. "Nothing arrives" is proven with a sentinel: after the change a subscriber must not
 * hear of, a change it does hear of; that sentinel must be the next message (ids included).
 */

/** B trusts loopback as a proxy, so a socket can speak from an address of its own (X-Forwarded-For). */
const TRUSTED_LOOPBACK = ['127.0.0.1', '::1'];

const POST_FIELDS = 'kind id node { id title published authorId }';
const POST_CHANGED = `subscription { postChanged { ${POST_FIELDS} } }`;
const POST_CHANGED_WHERE = `subscription($where: PostWhere) { postChanged(where: $where) { ${POST_FIELDS} } }`;
const COMMENT_CHANGED_WHERE = 'subscription($where: CommentWhere) { commentChanged(where: $where) { kind id node { id postId body } } }';

const CREATE_POST = 'mutation($input: CreatePostInput!) { createPost(input: $input) { id } }';
const UPDATE_POST = 'mutation($id: ID!, $input: UpdatePostInput!) { updatePost(id: $id, input: $input) { id } }';
const DELETE_POST = 'mutation($id: ID!) { deletePost(id: $id) }';
const CREATE_COMMENT = 'mutation($input: CreateCommentInput!) { createComment(input: $input) { id } }';

type Message = Received['messages'][number];

interface Post {
  id: string;
  title: string;
  published: boolean;
  authorId: string;
}

let a: TestServer;
let b: RunningBastion;
const bLogs = new LogCollector();
let admin: TestAccount;
const opened: LiveClient[] = [];

// graphql-ws's non-lazy client reports every socket the server closes (4403, 4401, a refused upgrade) on
// console.error; those closes are what several tests expect, and each one is asserted through `closed`.
const consoleError = console.error;
beforeAll(() => {
  jest.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
    const name = (args[0] as { constructor?: { name?: string } } | undefined)?.constructor?.name;
    if (args.length === 1 && (name === 'CloseEvent' || name === 'ErrorEvent')) return;
    consoleError(...args);
  });
});
afterAll(() => jest.restoreAllMocks());

beforeAll(async () => {
  a = await startTestServer({ config: { trustProxy: TRUSTED_LOOPBACK } });
  const config = secondInstanceConfig(a, { trustProxy: TRUSTED_LOOPBACK });
  b = await startBastion(config, { logger: createLogger({ level: 'debug', pretty: false, destination: bLogs }), clock: a.clock });
  admin = await makeUser(a, { roles: ['admin'] });
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((live) => live.dispose()));
  // Every subscription of the test is gone on both instances before the next one counts followers.
  await eventually(() => followers(b) === 0 && followers(a.bastion) === 0);
});

afterAll(async () => {
  await b?.stop();
  await a?.close();
});

/** Subscriptions open on an instance (all models). */
function followers(instance: RunningBastion): number {
  return instance.services.subscriptionHub.connections().reduce((sum, connection) => sum + connection.subscriptions, 0);
}

interface Subscriber {
  readonly live: LiveClient;
  readonly received: Received;
}

/** Opens a socket on `on` (B by default), subscribes, and waits until the instance follows the subscription. */
async function subscribe(
  token: string | null,
  query: string,
  variables?: Record<string, unknown>,
  options: { headers?: Record<string, string>; on?: RunningBastion } = {},
): Promise<Subscriber> {
  const on = options.on ?? b;
  const before = followers(on);
  const live = liveClient({ url: on.url }, token ?? undefined, options.headers);
  opened.push(live);
  await live.connected;
  const received = live.subscribe(query, variables);
  await eventually(() => followers(on) > before).catch((error: unknown) => {
    throw new Error(`${String(error)}; received: ${JSON.stringify(received.messages)}`);
  });
  return { live, received };
}

/**
 * The socket's close code once it closed. The bound is not a sleep: it only turns a socket left open
 * (the defect) into a quick failure instead of the test timeout.
 */
async function closeCode(subscriber: Subscriber, withinMs = 5_000): Promise<number | 'still open'> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'still open'>((resolve) => (timer = setTimeout(() => resolve('still open'), withinMs)));
  try {
    return await Promise.race([subscriber.received.closed, bound]);
  } finally {
    clearTimeout(timer);
  }
}

async function gql<T>(client: GraphQLClient, query: string, variables?: Record<string, unknown>): Promise<T> {
  const response = await client.request<T>(query, variables);
  if (response.body.errors || !response.body.data) throw new Error(`${query}: ${JSON.stringify(response.body.errors)}`);
  return response.body.data;
}

async function createPost(author: TestAccount, title: string, published: boolean): Promise<Post> {
  const { createPost: created } = await gql<{ createPost: { id: string } }>(author.client, CREATE_POST, { input: { title, published } });
  return { id: created.id, title, published, authorId: author.id };
}

async function updatePost(client: GraphQLClient, post: Post, input: Partial<Pick<Post, 'title' | 'published'>>): Promise<Post> {
  await gql(client, UPDATE_POST, { id: post.id, input });
  return { ...post, ...input };
}

async function createComment(author: TestAccount, postId: string, body: string): Promise<{ id: string; postId: string; body: string }> {
  const { createComment: created } = await gql<{ createComment: { id: string } }>(author.client, CREATE_COMMENT, {
    input: { postId, body },
  });
  return { id: created.id, postId, body };
}

const created = (post: Post): Message => ({ data: { postChanged: { kind: 'CREATED', id: post.id, node: post } } });
const updated = (post: Post): Message => ({ data: { postChanged: { kind: 'UPDATED', id: post.id, node: post } } });
const deleted = (post: Post): Message => ({ data: { postChanged: { kind: 'DELETED', id: post.id, node: null } } });

/** Waits for exactly `expected.length` messages and compares them; an extra message before the sentinel fails the comparison. */
async function expectMessages(subscriber: Subscriber, expected: Message[]): Promise<void> {
  await subscriber.received.next(expected.length);
  expect(subscriber.received.messages).toEqual(expected);
}

async function createRole(name: string, grant: Record<string, unknown>): Promise<void> {
  await gql(admin.client, 'mutation($input: CreateRoleInput!) { createRole(input: $input) { name } }', { input: { name } });
  await gql(admin.client, 'mutation($input: GrantPermissionInput!) { grantPermission(input: $input) { id } }', {
    input: { role: name, ...grant },
  });
}

async function assignRole(userId: string, role: string, assigned = true): Promise<void> {
  await gql(admin.client, `mutation($input: AssignRoleInput!) { ${assigned ? 'assignRole' : 'unassignRole'}(input: $input) { id } }`, {
    input: { userId, role },
  });
}

describe('who hears what (mutations on A, subscribers on B)', () => {
  it('the viewer matrix: anonymous, user, owner, custom role, admin × readable / not readable / moving out of scope', async () => {
    await createRole('post-reader', { model: 'Post', action: 'READ', scope: 'ALL' });
    const owner = await makeUser(a);
    const stranger = await makeUser(a);
    const reader = await makeUser(a);
    await assignRole(reader.id, 'post-reader');
    const admins = await makeUser(a, { roles: ['admin'] });

    const anonymous = await subscribe(null, POST_CHANGED);
    const user = await subscribe(stranger.accessToken, POST_CHANGED);
    const own = await subscribe(owner.accessToken, POST_CHANGED);
    const custom = await subscribe(reader.accessToken, POST_CHANGED);
    const all = await subscribe(admins.accessToken, POST_CHANGED);

    // Not readable to anonymous and other users: a draft, edited, then deleted.
    let draft = await createPost(owner, 'draft', false);
    const draftCreated = draft;
    draft = await updatePost(owner.client, draft, { title: 'draft, edited' });
    // Readable to every viewer, then moving out of scope (unpublished).
    const open = await createPost(owner, 'public', true);
    const unpublished = await updatePost(owner.client, open, { published: false });
    await gql(owner.client, DELETE_POST, { id: draft.id });
    // The sentinel: a published post of another author, which every viewer reads.
    const sentinel = await createPost(stranger, 'sentinel', true);

    const seesDrafts = [created(draftCreated), updated(draft), created(open), updated(unpublished), deleted(draft), created(sentinel)];
    const seesPublished = [created(open), deleted(open), created(sentinel)];
    await expectMessages(anonymous, seesPublished);
    await expectMessages(user, seesPublished);
    await expectMessages(own, seesDrafts);
    await expectMessages(custom, seesDrafts);
    await expectMessages(all, seesDrafts);
    // Not even an id of the draft reached those who may not read it.
    for (const subscriber of [anonymous, user]) expect(JSON.stringify(subscriber.received.messages)).not.toContain(draft.id);
  });

  it('moving out of scope (published → false) is DELETED with node null to those who saw it, nothing to those who never did', async () => {
    const owner = await makeUser(a);
    const post = await createPost(owner, 'soon a draft', true);
    const sawIt = await subscribe(null, POST_CHANGED);
    const neverSawIt = await subscribe(null, POST_CHANGED_WHERE, { where: { title: { eq: 'another title' } } });
    const alsoStranger = await subscribe((await makeUser(a)).accessToken, POST_CHANGED);
    const stillOwner = await subscribe(owner.accessToken, POST_CHANGED);
    // A draft edited stays out of scope for anonymous: nothing at all.
    const draft = await createPost(owner, 'hidden', false);
    const draftEdited = await updatePost(owner.client, draft, { title: 'hidden, edited' });

    const unpublished = await updatePost(owner.client, post, { published: false });
    const sentinel = await createPost(owner, 'another title', true);

    await expectMessages(sawIt, [deleted(post), created(sentinel)]);
    await expectMessages(alsoStranger, [deleted(post), created(sentinel)]);
    await expectMessages(neverSawIt, [created(sentinel)]);
    await expectMessages(stillOwner, [created(draft), updated(draftEdited), updated(unpublished), created(sentinel)]);
  });

  it('`where` filters: postChanged(where: { published: { eq: true } }) and commentChanged(where: { postId: { eq } })', async () => {
    const owner = await makeUser(a);
    const commenter = await makeUser(a);
    const watched = await createPost(owner, 'watched', true);
    const other = await createPost(owner, 'other', true);

    const publishedOnly = await subscribe(admin.accessToken, POST_CHANGED_WHERE, { where: { published: { eq: true } } });
    const commentsOnWatched = await subscribe(commenter.accessToken, COMMENT_CHANGED_WHERE, { where: { postId: { eq: watched.id } } });
    const everyComment = await subscribe(commenter.accessToken, COMMENT_CHANGED_WHERE);

    const draft = await createPost(owner, 'draft', false); // admin may read it; the where does not match
    const live = await updatePost(owner.client, draft, { published: true }); // enters the where
    await updatePost(owner.client, live, { published: false }); // leaves it
    const elsewhere = await createComment(owner, other.id, 'on the other post');
    const onWatched = await createComment(owner, watched.id, 'on the watched post');
    const retitled = await updatePost(owner.client, watched, { title: 'watched, retitled' });

    await expectMessages(publishedOnly, [created(live), deleted(live), updated(retitled)]);
    const comment = (row: { id: string; postId: string; body: string }): Message => ({
      data: { commentChanged: { kind: 'CREATED', id: row.id, node: row } },
    });
    await expectMessages(commentsOnWatched, [comment(onWatched)]);
    await expectMessages(everyComment, [comment(elsewhere), comment(onWatched)]);
  });

  it('a subscription to a model the viewer may not read is refused (anonymous and comments)', async () => {
    const live = liveClient({ url: b.url });
    opened.push(live);
    await live.connected;
    const refused = live.subscribe(COMMENT_CHANGED_WHERE);
    const [message] = await refused.next(1);
    expect(message.errors?.map((error) => error.extensions?.code)).toEqual(['UNAUTHENTICATED']);
    expect(message.data ?? undefined).toBeUndefined();
    expect(followers(b)).toBe(0);
  });
});

describe('fields', () => {
  it('a field the subscriber may not read is null with FORBIDDEN (a custom role granted Post read with fields ["title"])', async () => {
    await createRole('headline-reader', { model: 'Post', action: 'READ', scope: 'ALL', fields: ['title'] });
    const owner = await makeUser(a);
    const headlines = await makeUser(a);
    await assignRole(headlines.id, 'headline-reader');

    const masked = await subscribe(headlines.accessToken, 'subscription { postChanged { kind id node { title body } } }');
    // Its where may not decide on a field it does not read (published): that condition never holds; the title one does.
    const onHiddenField = await subscribe(
      headlines.accessToken,
      'subscription($where: PostWhere) { postChanged(where: $where) { kind id } }',
      { where: { OR: [{ published: { eq: false } }, { title: { eq: 'sentinel' } }] } },
    );
    const ownerTitleOnly = await subscribe(owner.accessToken, 'subscription { postChanged { id node { title } } }');

    const { createPost: draft } = await gql<{ createPost: { id: string } }>(owner.client, CREATE_POST, {
      input: { title: 'headline', body: 'secret body', published: false },
    });

    const [message] = await masked.received.next(1);
    expect(message.data).toEqual({ postChanged: { kind: 'CREATED', id: draft.id, node: { title: 'headline', body: null } } });
    expect(message.errors?.map((error) => ({ code: error.extensions?.code, path: (error as { path?: unknown }).path }))).toEqual([
      { code: 'FORBIDDEN', path: ['postChanged', 'node', 'body'] },
    ]);
    expect(JSON.stringify(masked.received.messages)).not.toContain('secret body');
    // The owner asked for the title only, and gets exactly that.
    await expectMessages(ownerTitleOnly, [{ data: { postChanged: { id: draft.id, node: { title: 'headline' } } } }]);

    // The draft (published: false) is not announced through the hidden field; the sentinel, matched by its title, is.
    const sentinel = await createPost(owner, 'sentinel', false);
    await expectMessages(onHiddenField, [{ data: { postChanged: { kind: 'CREATED', id: sentinel.id } } }]);
  });

  it('commit order for one row: three quick updates arrive in order (or coalesced), the last shows the final title', async () => {
    const owner = await makeUser(a);
    const post = await createPost(owner, 'zero', false);
    const subscriber = await subscribe(owner.accessToken, 'subscription { postChanged { kind id node { title } } }');
    const titles = (): string[] =>
      subscriber.received.messages.map((message) => (message.data?.postChanged as { node: { title: string } }).node.title);

    const expectInOrder = async (sequence: string[]) => {
      const last = sequence[sequence.length - 1];
      await eventually(() => titles()[titles().length - 1] === last);
      const seen = titles();
      const positions = seen.map((title) => sequence.indexOf(title));
      expect(positions.every((position) => position >= 0)).toBe(true);
      // Never out of order: each message shows the same title or a later one than the message before.
      expect(positions).toEqual([...positions].sort((x, y) => x - y));
      for (const message of subscriber.received.messages) expect(message.data?.postChanged).toMatchObject({ kind: 'UPDATED', id: post.id });
    };

    // Three updates through the API, one after the other.
    for (const title of ['one', 'two', 'three']) await updatePost(owner.client, post, { title });
    await expectInOrder(['one', 'two', 'three']);
    const afterApi = subscriber.received.messages.length;

    // Three committed statements in a burst straight to the database (likely one batch: coalesced).
    for (const title of ['four', 'five', 'six'])
      await a.bastion.database.dataSource.query('UPDATE posts SET title = $1 WHERE id = $2', [title, post.id]);
    await eventually(() => titles()[titles().length - 1] === 'six');
    const burst = titles().slice(afterApi);
    const positions = burst.map((title) => ['four', 'five', 'six'].indexOf(title));
    expect(positions.every((position) => position >= 0)).toBe(true);
    expect(positions).toEqual([...positions].sort((x, y) => x - y));
  });
});

describe('one row read per change, whatever the subscriber count', () => {
  it('N subscribers on B and one on A: each instance reads the changed row once', async () => {
    const owner = await makeUser(a);
    const subscribers: Subscriber[] = [];
    for (let i = 0; i < 3; i += 1) subscribers.push(await subscribe(null, POST_CHANGED));
    subscribers.push(await subscribe(owner.accessToken, POST_CHANGED));
    subscribers.push(await subscribe(admin.accessToken, POST_CHANGED));
    subscribers.push(await subscribe((await makeUser(a)).accessToken, 'subscription { postChanged { id } }'));
    const onA = await subscribe(null, POST_CHANGED, undefined, { on: a.bastion });

    const listenerOf = (instance: RunningBastion) => instance.services.changeListener;
    await Promise.all([listenerOf(a.bastion).settled(), listenerOf(b).settled()]);
    const readsBefore = { a: listenerOf(a.bastion).rowReads, b: listenerOf(b).rowReads };

    const post = await createPost(owner, 'read once', true);
    await Promise.all([...subscribers, onA].map((subscriber) => subscriber.received.next(1)));
    await Promise.all([listenerOf(a.bastion).settled(), listenerOf(b).settled()]);
    expect({ a: listenerOf(a.bastion).rowReads - readsBefore.a, b: listenerOf(b).rowReads - readsBefore.b }).toEqual({ a: 1, b: 1 });

    await updatePost(owner.client, post, { title: 'read once, again' });
    await Promise.all([...subscribers, onA].map((subscriber) => subscriber.received.next(2)));
    await Promise.all([listenerOf(a.bastion).settled(), listenerOf(b).settled()]);
    expect({ a: listenerOf(a.bastion).rowReads - readsBefore.a, b: listenerOf(b).rowReads - readsBefore.b }).toEqual({ a: 2, b: 2 });
    expect(subscribers[0].received.messages).toEqual([created(post), updated({ ...post, title: 'read once, again' })]);
  });
});

describe('the end of a subscription', () => {
  it('sign-out on A closes the socket on B with 4403 when heard; another account keeps its subscription', async () => {
    const leaving = await makeUser(a);
    const staying = await makeUser(a);
    const gone = await subscribe(leaving.accessToken, POST_CHANGED);
    const control = await subscribe(staying.accessToken, POST_CHANGED);

    expect((await leaving.client.request('mutation { signOut }')).body).toEqual({ data: { signOut: true } });
    expect(await closeCode(gone)).toBe(4403);
    const sentinel = await createPost(staying, 'after the sign-out', true);
    await expectMessages(control, [created(sentinel)]);
    expect(gone.received.messages).toEqual([]);
  });

  it('suspension (admin API on A) closes the socket on B with 4403 when heard', async () => {
    const suspended = await makeUser(a);
    const staying = await makeUser(a);
    const gone = await subscribe(suspended.accessToken, POST_CHANGED);
    const control = await subscribe(staying.accessToken, POST_CHANGED);

    await gql(admin.client, 'mutation($input: SetUserStatusInput!) { setUserStatus(input: $input) { id } }', {
      input: { userId: suspended.id, status: 'SUSPENDED' },
    });
    expect(await closeCode(gone)).toBe(4403);
    const sentinel = await createPost(staying, 'after the suspension', true);
    await expectMessages(control, [created(sentinel)]);
    expect(gone.received.messages).toEqual([]);
  });

  it('role removal: the next change is decided with the new roles (the socket stays open)', async () => {
    await createRole('draft-reader', { model: 'Post', action: 'READ', scope: 'ALL' });
    const owner = await makeUser(a);
    const member = await makeUser(a);
    await assignRole(member.id, 'draft-reader');
    const subscriber = await subscribe(member.accessToken, POST_CHANGED);

    const before = await createPost(owner, 'draft seen with the role', false);
    await expectMessages(subscriber, [created(before)]);

    await assignRole(member.id, 'draft-reader', false);
    await updatePost(owner.client, before, { title: 'edited after the removal' });
    await createPost(owner, 'draft after the removal', false);
    const sentinel = await createPost(owner, 'published after the removal', true);
    await expectMessages(subscriber, [created(before), created(sentinel)]);

    // And back: a role granted is in force at the next change too.
    await assignRole(member.id, 'draft-reader');
    const again = await createPost(owner, 'draft seen again', false);
    await expectMessages(subscriber, [created(before), created(sentinel), created(again)]);
  });

  it('an IP block added through the admin API (on A) closes the socket on B with 4403 at the next event', async () => {
    const owner = await makeUser(a);
    const blocked = await subscribe(owner.accessToken, POST_CHANGED, undefined, { headers: { 'x-forwarded-for': '198.51.100.7' } });
    const control = await subscribe(null, POST_CHANGED, undefined, { headers: { 'x-forwarded-for': '203.0.113.9' } });

    const { addFirewallRule: rule } = await gql<{ addFirewallRule: { id: string } }>(
      admin.client,
      'mutation($input: AddFirewallRuleInput!) { addFirewallRule(input: $input) { id } }',
      { input: { cidr: '198.51.100.0/24', action: 'DENY', note: 'realtime test' } },
    );
    try {
      const post = await createPost(owner, 'published while blocked', true);
      // One delivery brings every connection up to date before any is told: once the control heard it, the block was decided.
      await expectMessages(control, [created(post)]);
      expect(await closeCode(blocked)).toBe(4403);
      expect(blocked.received.messages).toEqual([]);
      // The next socket from that network is refused at the upgrade.
      const refused = liveClient({ url: b.url }, undefined, { 'x-forwarded-for': '198.51.100.8' });
      opened.push(refused);
      expect(await refused.closed).toBe(1006); // HTTP 403 instead of the upgrade: no close frame
      // B recorded both: the open socket's block at the change, the new socket's at the upgrade.
      for (const subject of ['198.51.100.7', '198.51.100.8'])
        expect(bLogs.find((line) => line.msg === 'firewall: request blocked' && line.subject === subject)).toMatchObject({
          kind: 'ip_blocked',
        });
    } finally {
      await gql(admin.client, 'mutation($id: ID!) { removeFirewallRule(id: $id) }', { id: rule.id });
    }
  });

  it('an IP block added through the firewall service closes the socket with 4403 at the next event', async () => {
    const owner = await makeUser(a);
    const blocked = await subscribe(null, POST_CHANGED, undefined, { headers: { 'x-forwarded-for': '198.51.101.7' } });
    const control = await subscribe(owner.accessToken, POST_CHANGED, undefined, { headers: { 'x-forwarded-for': '203.0.113.10' } });

    const rule = await a.bastion.services.firewall.add({ cidr: '198.51.101.0/24', action: FirewallAction.DENY }, CLI_ACTOR);
    try {
      const post = await createPost(owner, 'published while blocked (service)', true);
      await expectMessages(control, [created(post)]);
      expect(await closeCode(blocked)).toBe(4403);
      expect(blocked.received.messages).toEqual([]);
    } finally {
      await a.bastion.services.firewall.remove(rule.id, CLI_ACTOR);
    }
  });

  // Last: moving the shared clock past the expiry expires every access token issued so far.
  it('an expired access token closes the socket with 4401 at the next change; an anonymous socket stays', async () => {
    const owner = await makeUser(a);
    const expiring = await subscribe(owner.accessToken, POST_CHANGED);
    const control = await subscribe(null, POST_CHANGED);
    const expiresAt = decodeJwt(owner.accessToken).exp! * 1000;

    a.clock.advance(expiresAt - a.clock.now().getTime() + 1_000);
    const fresh = await makeUser(a); // a token issued after the move
    const post = await createPost(fresh, 'after the expiry', true);
    await expectMessages(control, [created(post)]);
    expect(await closeCode(expiring)).toBe(4401);
    expect(expiring.received.messages).toEqual([]);
  });
});
