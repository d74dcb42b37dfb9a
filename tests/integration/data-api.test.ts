import { GraphQLClient, GraphQLResponse, TestAccount, codesOf, makeClient, makeUser } from '../support/factories';
import { statementsDuring } from '../support/sql-statements';
import { TestServer, startTestServer } from '../support/test-server';

const CREATE_PROFILE = 'mutation($input: CreateProfileInput!) { createProfile(input: $input) { id userId displayName phone } }';
const CREATE_POST = 'mutation($input: CreatePostInput!) { createPost(input: $input) { id title published authorId } }';
const POSTS = `query($where: PostWhere, $orderBy: [PostOrderBy!], $first: Int, $after: String) {
  posts(where: $where, orderBy: $orderBy, first: $first, after: $after) { totalCount edges { cursor node { id title } } pageInfo { hasNextPage endCursor } }
}`;

type PostsPage = {
  posts: {
    totalCount: number;
    edges: { cursor: string; node: { id: string; title: string } }[];
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  };
};

describe('data API: the sample models', () => {
  let server: TestServer;
  let admin: TestAccount;
  let author: TestAccount;

  beforeAll(async () => {
    server = await startTestServer({ compareExecutors: true });
    admin = await makeUser(server, { roles: ['admin'] });
    author = await makeUser(server);
  });
  afterAll(() => server?.close());

  async function postOf(owner: TestAccount, input: Record<string, unknown>): Promise<string> {
    const { body } = await owner.client.request<{ createPost: { id: string } }>(CREATE_POST, { input });
    if (!body.data) throw new Error(JSON.stringify(body.errors));
    return body.data.createPost.id;
  }

  /** Every page of `posts` for these arguments, following endCursor. */
  async function allPages(
    client = author.client,
    variables: Record<string, unknown> = {},
    between?: () => Promise<void>,
  ): Promise<string[]> {
    const titles: string[] = [];
    let after: string | null = null;
    do {
      const page: GraphQLResponse<PostsPage> = await client.request<PostsPage>(POSTS, { ...variables, first: 2, after });
      expect(page.body.errors).toBeUndefined();
      titles.push(...page.body.data!.posts.edges.map((edge) => edge.node.title));
      after = page.body.data!.posts.pageInfo.hasNextPage ? page.body.data!.posts.pageInfo.endCursor : null;
      await between?.();
    } while (after);
    return titles;
  }

  describe('profiles', () => {
    it('creates one profile per user, owned by them; the owner is never client-writable', async () => {
      const user = await makeUser(server);
      const created = await user.client.request(CREATE_PROFILE, {
        input: { displayName: 'Ada', phone: '+447700900123', birthDate: '1815-12-10' },
      });
      expect(created.body.data).toEqual({
        createProfile: { id: expect.any(String), userId: user.id, displayName: 'Ada', phone: '+447700900123' },
      });
      expect(codesOf(await user.client.request(CREATE_PROFILE, { input: { displayName: 'Ada again' } }))).toEqual(['CONFLICT']);
      const withOwner = await user.client.request(CREATE_PROFILE, { input: { displayName: 'Eve', userId: admin.id } });
      expect(withOwner.status).toBe(400);
    });

    it('stores phone and birth date encrypted, never as plaintext', async () => {
      const user = await makeUser(server);
      await user.client.request(CREATE_PROFILE, { input: { displayName: 'Grace', phone: '+15550100777', birthDate: '1906-12-09' } });
      const [row] = await server.bastion.database.dataSource.query(
        'SELECT phone, birth_date, phone_index FROM profiles WHERE user_id = $1',
        [user.id],
      );
      expect(row.phone).toMatch(/^v1\./);
      expect(row.birth_date).toMatch(/^v1\./);
      expect(JSON.stringify(row)).not.toContain('5550100777');
      expect(JSON.stringify(row)).not.toContain('1906-12-09');
    });

    it('shows public fields to everyone, phone and birth date to the owner and admins only', async () => {
      const owner = await makeUser(server);
      const created = await owner.client.request<{ createProfile: { id: string } }>(CREATE_PROFILE, {
        input: { displayName: 'Linus', phone: '+46700000001', birthDate: '1969-12-28' },
      });
      const id = created.body.data!.createProfile.id;
      const read = 'query($id: ID!) { profile(id: $id) { displayName phone birthDate } }';
      const anonymous = await makeClient(server).request(read, { id });
      expect(anonymous.body.data).toEqual({ profile: { displayName: 'Linus', phone: null, birthDate: null } });
      expect(codesOf(anonymous)).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED']);
      const stranger = await (await makeUser(server)).client.request(read, { id });
      expect(stranger.body.data).toEqual({ profile: { displayName: 'Linus', phone: null, birthDate: null } });
      expect(codesOf(stranger)).toEqual(['FORBIDDEN', 'FORBIDDEN']);
      expect((await owner.client.request(read, { id })).body).toEqual({
        data: { profile: { displayName: 'Linus', phone: '+46700000001', birthDate: '1969-12-28' } },
      });
      expect((await admin.client.request(read, { id })).body).toEqual({
        data: { profile: { displayName: 'Linus', phone: '+46700000001', birthDate: '1969-12-28' } },
      });
    });

    it('filters an encrypted field by equality through its blind index, only among rows where the viewer may read it', async () => {
      const owner = await makeUser(server);
      await owner.client.request(CREATE_PROFILE, { input: { displayName: 'Findable', phone: '+33600000042' } });
      const byPhone = 'query($phone: String!) { profiles(where: { phone: { eq: $phone } }) { edges { node { displayName } } } }';
      expect((await owner.client.request(byPhone, { phone: '+33600000042' })).body.data).toEqual({
        profiles: { edges: [{ node: { displayName: 'Findable' } }] },
      });
      expect((await admin.client.request(byPhone, { phone: '+33600000042' })).body.data).toEqual({
        profiles: { edges: [{ node: { displayName: 'Findable' } }] },
      });
      // Strangers see the profile but not its phone: filtering by it must not reveal who has that number.
      expect((await (await makeUser(server)).client.request(byPhone, { phone: '+33600000042' })).body.data).toEqual({
        profiles: { edges: [] },
      });
      expect((await makeClient(server).request(byPhone, { phone: '+33600000042' })).body.data).toEqual({ profiles: { edges: [] } });
      // Other operators do not exist for an encrypted field.
      expect((await owner.client.request('{ profiles(where: { phone: { contains: "+33" } }) { totalCount } }')).status).toBe(400);
    });

    it("checks the model's constraints and names the field", async () => {
      const user = await makeUser(server);
      const cases: [Record<string, unknown>, string][] = [
        [{ displayName: '' }, 'displayName'],
        [{ displayName: 'x'.repeat(51) }, 'displayName'],
        [{ displayName: 'ok', phone: '0770 090 0123' }, 'phone'],
        [{ displayName: 'ok', avatarUrl: 'http://example.com/a.png' }, 'avatarUrl'],
        [{ displayName: 'ok', birthDate: '1815-13-45' }, 'birthDate'],
      ];
      for (const [input, field] of cases) {
        const response = await user.client.request(CREATE_PROFILE, { input });
        expect({ input, code: codesOf(response), field: response.body.errors?.[0].extensions?.field }).toEqual({
          input,
          code: ['BAD_USER_INPUT'],
          field,
        });
      }
      const [{ count }] = await server.bastion.database.dataSource.query('SELECT count(*)::int AS count FROM profiles WHERE user_id = $1', [
        user.id,
      ]);
      expect(count).toBe(0);
    });
  });

  describe('posts: filters, sort and pagination', () => {
    let titles: string[];
    beforeAll(async () => {
      titles = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf'];
      for (const title of titles) await postOf(author, { title, body: `about ${title}`, published: true });
      await postOf(author, { title: 'hidden draft' });
    });

    it('pages through every row exactly once, in a stable order, even with rows inserted between pages', async () => {
      let inserted = 0;
      const seen = await allPages(
        author.client,
        {
          where: { authorId: { eq: author.id }, published: { eq: true }, title: { ne: 'hidden draft' } },
          orderBy: [{ field: 'TITLE', direction: 'ASC' }],
        },
        async () => {
          // One row that sorts before every page already read (OFFSET paging would repeat a row), one after.
          inserted += 1;
          await postOf(author, { title: `a-late-${inserted}`, published: true });
          await postOf(author, { title: `zz-late-${inserted}`, published: true });
        },
      );
      expect(seen.filter((title) => titles.includes(title))).toEqual(titles);
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen.some((title) => title.startsWith('a-late-'))).toBe(false);
      expect(seen.filter((title) => title.startsWith('zz-late-')).length).toBeGreaterThan(0);
      const newestFirst = await allPages(author.client, {
        where: { authorId: { eq: author.id }, title: { in: titles } },
        orderBy: [{ field: 'CREATED_AT', direction: 'DESC' }],
      });
      expect(newestFirst).toEqual([...titles].reverse());
    });

    it('filters with every operator kind, AND and OR', async () => {
      const titlesOf = async (where: Record<string, unknown>) =>
        (await allPages(author.client, { where: { authorId: { eq: author.id }, ...where }, orderBy: [{ field: 'TITLE' }] })).filter(
          (title) => !title.includes('-late-'),
        );
      expect(await titlesOf({ title: { contains: 'HAR' } })).toEqual(['charlie']);
      expect(await titlesOf({ title: { startsWith: 'd' } })).toEqual(['delta']);
      expect(await titlesOf({ title: { in: ['golf', 'echo', 'nope'] } })).toEqual(['echo', 'golf']);
      expect(await titlesOf({ title: { gte: 'echo', lt: 'golf' } })).toEqual(['echo', 'foxtrot']);
      expect(await titlesOf({ published: { eq: false } })).toEqual(['hidden draft']);
      expect(await titlesOf({ OR: [{ title: { eq: 'alpha' } }, { title: { eq: 'golf' } }] })).toEqual(['alpha', 'golf']);
      expect(await titlesOf({ AND: [{ title: { ne: 'alpha' } }, { title: { lte: 'bravo' } }] })).toEqual(['bravo']);
      const total = await author.client.request<PostsPage>(POSTS, {
        where: { authorId: { eq: author.id }, title: { in: titles } },
        first: 2,
      });
      expect(total.body.data!.posts.totalCount).toBe(titles.length);
    });

    it('treats SQL in every filter as plain text', async () => {
      const injections = ["x' OR 1=1--", "%' OR '1'='1", '_%', "'; DROP TABLE posts; --", '\\'];
      for (const text of injections) {
        for (const where of [
          { title: { eq: text } },
          { title: { contains: text } },
          { title: { startsWith: text } },
          { title: { in: [text] } },
          { title: { gt: text, lt: text } },
          { authorId: { eq: text } },
          { authorId: { in: [text] } },
        ]) {
          const response = await author.client.request<PostsPage>(POSTS, { where });
          expect({ where, errors: response.body.errors, rows: response.body.data?.posts.edges.length }).toEqual({
            where,
            errors: undefined,
            rows: 0,
          });
        }
      }
      const [{ count }] = await server.bastion.database.dataSource.query('SELECT count(*)::int AS count FROM posts');
      expect(count).toBeGreaterThan(0);
    });

    it('refuses what the schema does not offer and what the limits forbid', async () => {
      expect(codesOf(await author.client.request(POSTS, { first: 101 }))).toEqual(['BAD_USER_INPUT']);
      expect((await author.client.request(POSTS, { where: { body: { eq: 'x' } } })).status).toBe(400); // body is not filterable
      expect((await author.client.request(POSTS, { orderBy: [{ field: 'BODY' }] })).status).toBe(400); // nor sortable
      expect(
        (await author.client.request(POSTS, { orderBy: [{ field: 'TITLE' }, { field: 'TITLE' }, { field: 'TITLE' }, { field: 'TITLE' }] }))
          .body.errors?.[0].extensions?.code,
      ).toBe('BAD_USER_INPUT');
      const page = await author.client.request<PostsPage>(POSTS, { orderBy: [{ field: 'TITLE' }], first: 1 });
      const cursor = page.body.data!.posts.pageInfo.endCursor;
      expect(codesOf(await author.client.request(POSTS, { orderBy: [{ field: 'CREATED_AT' }], after: cursor }))).toEqual([
        'BAD_USER_INPUT',
      ]);
      let deep: Record<string, unknown> = { title: { eq: 'x' } };
      for (let level = 0; level < 6; level += 1) deep = { AND: [deep] };
      expect(codesOf(await author.client.request(POSTS, { where: deep }))).toEqual(['BAD_USER_INPUT']);
    });
  });

  describe('edge cases the review found', () => {
    it('refuses null in a NOT NULL field and NUL characters anywhere, naming the field (never a 500)', async () => {
      const id = await postOf(author, { title: 'edge', published: true });
      const nullTitle = await author.client.request('mutation($id: ID!) { updatePost(id: $id, input: { title: null }) { title } }', { id });
      expect({ codes: codesOf(nullTitle), field: nullTitle.body.errors?.[0].extensions?.field }).toEqual({
        codes: ['BAD_USER_INPUT'],
        field: 'title',
      });
      const nullBody = await author.client.request(CREATE_POST, { input: { title: 'x', body: null } });
      expect({ codes: codesOf(nullBody), field: nullBody.body.errors?.[0].extensions?.field }).toEqual({
        codes: ['BAD_USER_INPUT'],
        field: 'body',
      });
      const nul = await author.client.request(CREATE_POST, { input: { title: 'a\u0000b' } });
      expect({ codes: codesOf(nul), field: nul.body.errors?.[0].extensions?.field }).toEqual({ codes: ['BAD_USER_INPUT'], field: 'title' });
      for (const where of [{ title: { eq: '\u0000' } }, { title: { contains: 'a\u0000' } }, { title: { in: ['ok', '\u0000'] } }]) {
        expect(codesOf(await author.client.request(POSTS, { where }))).toEqual(['BAD_USER_INPUT']);
      }
      const forged = Buffer.from(JSON.stringify(['x', 'a\u0000', 'y'])).toString('base64url');
      expect(codesOf(await author.client.request(POSTS, { after: forged, orderBy: [{ field: 'TITLE' }] }))).toEqual(['BAD_USER_INPUT']);
      const [{ title }] = await server.bastion.database.dataSource.query('SELECT title FROM posts WHERE id = $1', [id]);
      expect(title).toBe('edge');
    });

    it('pages correctly with mixed directions and ties, and ranks comments(first) per post', async () => {
      const tied = await makeUser(server);
      for (const [index, title] of ['same', 'same', 'same', 'other', 'other'].entries()) {
        await postOf(tied, { title, body: String(index), published: true });
        // Two of them in one millisecond, as a busy server writes them.
        if (index === 1)
          await server.bastion.database.dataSource.query(
            "UPDATE posts SET created_at = date_trunc('milliseconds', created_at) WHERE author_id = $1",
            [tied.id],
          );
      }
      const rows: { id: string; title: string; created_at: Date }[] = await server.bastion.database.dataSource.query(
        "SELECT id, title, date_trunc('milliseconds', created_at) AS created_at FROM posts WHERE author_id = $1",
        [tied.id],
      );
      const expected = [...rows]
        .sort((a, b) => b.title.localeCompare(a.title) || a.created_at.getTime() - b.created_at.getTime() || (a.id < b.id ? -1 : 1))
        .map((row) => row.id);
      const ids: string[] = [];
      let after: string | null = null;
      do {
        const page: GraphQLResponse<PostsPage> = await tied.client.request<PostsPage>(POSTS, {
          where: { authorId: { eq: tied.id } },
          orderBy: [
            { field: 'TITLE', direction: 'DESC' },
            { field: 'CREATED_AT', direction: 'ASC' },
          ],
          first: 2,
          after,
        });
        ids.push(...page.body.data!.posts.edges.map((edge) => edge.node.id));
        after = page.body.data!.posts.pageInfo.hasNextPage ? page.body.data!.posts.pageInfo.endCursor : null;
      } while (after);
      expect(ids).toEqual(expected);

      for (const post of rows) {
        for (const body of ['first', 'second', 'third'])
          await tied.client.request(
            'mutation($postId: ID!, $body: String!) { createComment(input: { postId: $postId, body: $body }) { id } }',
            { postId: post.id, body },
          );
      }
      const tree = await tied.client.request<{ posts: { edges: { node: { commentCount: number; comments: { body: string }[] } }[] } }>(
        'query($author: ID!) { posts(where: { authorId: { eq: $author } }) { edges { node { commentCount comments(first: 2) { body } } } } }',
        { author: tied.id },
      );
      expect(tree.body.data!.posts.edges.map((edge) => edge.node)).toEqual(
        rows.map(() => ({ commentCount: 3, comments: [{ body: 'first' }, { body: 'second' }] })),
      );
    });

    it('lists under a field-restricted grant (ordered by id), refuses sorting by a hidden field, and never joins on one', async () => {
      const admin2 = admin;
      await admin2.client.request('mutation { createRole(input: { name: "headlines" }) { name } }');
      await admin2.client.request(
        'mutation { grantPermission(input: { role: "headlines", model: "Post", action: READ, scope: ALL, fields: ["title"] }) { id } }',
      );
      const reader = await makeUser(server, { roles: ['headlines'] });
      const list = await reader.client.request<PostsPage>(POSTS, { first: 5 });
      expect(list.body.errors).toBeUndefined();
      expect(list.body.data!.posts.edges).toHaveLength(5);
      expect(codesOf(await reader.client.request(POSTS, { orderBy: [{ field: 'TITLE' }] }))).toBeUndefined();
      // Drafts of others are in this role's scope with their title only: their creation time must not order them.
      expect(codesOf(await reader.client.request(POSTS, { orderBy: [{ field: 'CREATED_AT' }] }))).toEqual(['FORBIDDEN']);

      // Anonymous viewers may now read comments' bodies, but not which post they are on.
      const granted = await admin2.client.request<{ grantPermission: { id: string } }>(
        'mutation { grantPermission(input: { role: "anonymous", model: "Comment", action: READ, scope: ALL, fields: ["body"] }) { id } }',
      );
      try {
        const post = await postOf(author, { title: 'with comments', published: true });
        await author.client.request('mutation($postId: ID!) { createComment(input: { postId: $postId, body: "hidden link" }) { id } }', {
          postId: post,
        });
        const anonymous = await makeClient(server).request<{ post: { commentCount: number; comments: unknown[] } }>(
          'query($id: ID!) { post(id: $id) { commentCount comments { body } } }',
          { id: post },
        );
        expect(anonymous.body.data).toEqual({ post: { commentCount: 0, comments: [] } });
      } finally {
        await admin2.client.request('mutation($id: ID!) { revokePermission(id: $id) }', { id: granted.body.data!.grantPermission.id });
      }
    });
  });

  describe('ownership', () => {
    it('lets only the owner (and admins, by the defaults) change or delete a post; others get NOT_FOUND', async () => {
      const other = await makeUser(server);
      const id = await postOf(author, { title: 'mine', published: true });
      const update = 'mutation($id: ID!) { updatePost(id: $id, input: { title: "taken" }) { title } }';
      expect(codesOf(await other.client.request(update, { id }))).toEqual(['NOT_FOUND']);
      expect(codesOf(await other.client.request('mutation($id: ID!) { deletePost(id: $id) }', { id }))).toEqual(['NOT_FOUND']);
      expect(
        (await admin.client.request('mutation($id: ID!) { updatePost(id: $id, input: { title: "moderated" }) { title } }', { id })).body
          .data,
      ).toEqual({ updatePost: { title: 'moderated' } });
      expect((await author.client.request(update, { id })).body.data).toEqual({ updatePost: { title: 'taken' } });
      expect((await author.client.request('mutation($id: ID!) { deletePost(id: $id) }', { id })).body.data).toEqual({ deletePost: true });
      expect(codesOf(await author.client.request('query($id: ID!) { post(id: $id) { id } }', { id }))).toEqual(['NOT_FOUND']);
    });

    it('refuses a comment on a post the viewer cannot read, naming the field', async () => {
      const draft = await postOf(author, { title: 'secret draft' });
      const reader = await makeUser(server);
      const response = await reader.client.request(
        'mutation($postId: ID!) { createComment(input: { postId: $postId, body: "hi" }) { id } }',
        { postId: draft },
      );
      expect(codesOf(response)).toEqual(['NOT_FOUND']);
      expect(response.body.errors![0].extensions?.field).toBe('postId');
    });

    it("deletes a user's rows in every model with their account", async () => {
      const leaving = await makeUser(server);
      await leaving.client.request(CREATE_PROFILE, { input: { displayName: 'Leaving' } });
      await postOf(leaving, { title: 'bye', published: true });
      const deleted = await leaving.client.request('mutation($input: DeleteAccountInput!) { deleteAccount(input: $input) }', {
        input: { password: leaving.password },
      });
      expect(deleted.body.data).toEqual({ deleteAccount: true });
      const [{ profiles, posts }] = await server.bastion.database.dataSource.query(
        'SELECT (SELECT count(*)::int FROM profiles WHERE user_id = $1) AS profiles, (SELECT count(*)::int FROM posts WHERE author_id = $1) AS posts',
        [leaving.id],
      );
      expect({ profiles, posts }).toEqual({ profiles: 0, posts: 0 });
    });
  });

  describe('relations', () => {
    it('resolves a page of 100 posts with author profiles and comment counts in at most 3 SQL statements', async () => {
      const dataSource = server.bastion.database.dataSource;
      // 20 authors with profiles, 100 published posts, comments on some: seeded in SQL for speed.
      const writers = await Promise.all(Array.from({ length: 5 }, () => makeUser(server)));
      for (const [index, writer] of writers.entries())
        await writer.client.request(CREATE_PROFILE, { input: { displayName: `writer ${index}` } });
      await dataSource.query(
        `INSERT INTO posts (author_id, title, body, published, created_at)
         SELECT ($1::uuid[])[1 + n % 5], 'bulk ' || lpad(n::text, 3, '0'), 'body', true, ` +
          `'2030-01-01'::timestamptz + n * interval '1 second' FROM generate_series(1, 100) AS n`,
        [writers.map((writer) => writer.id)],
      );
      await dataSource.query(
        `INSERT INTO comments (post_id, author_id, body) SELECT p.id, p.author_id, 'c' FROM posts p, generate_series(1, 2) ` +
          `WHERE p.title LIKE 'bulk %' AND p.title < 'bulk 011'`,
      );
      const query =
        '{ posts(first: 100, where: { title: { startsWith: "bulk " } }, orderBy: [{ field: CREATED_AT }]) ' +
        '{ edges { node { id title body published createdAt author { displayName } commentCount } } } }';
      const reader = await makeUser(server);
      await reader.client.request('{ me { id } }'); // the session and the policy are cached, as on any warm server

      // Every statement the server sends on its pool (the server runs in this process).
      const { result: response, statements } = await server.withoutComparing(() =>
        statementsDuring(() =>
          reader.client.request<{ posts: { edges: { node: { title: string; author: { displayName: string }; commentCount: number } }[] } }>(
            query,
          ),
        ),
      );
      expect(response.body.errors).toBeUndefined();
      const nodes = response.body.data!.posts.edges.map((edge) => edge.node);
      expect(nodes).toHaveLength(100);
      expect(nodes[0]).toMatchObject({ title: 'bulk 001', author: { displayName: 'writer 1' }, commentCount: 2 });
      expect(nodes[99]).toMatchObject({ title: 'bulk 100', author: { displayName: 'writer 0' }, commentCount: 0 });
      process.stdout.write(`posts-100 with author and commentCount: ${statements.length} SQL statements\n`);
      expect(statements.length).toBeLessThanOrEqual(3);
    });

    it('reads to-one relations at any depth in the same statement, each inside its own read scope', async () => {
      const writer = await makeUser(server);
      await writer.client.request(CREATE_PROFILE, { input: { displayName: 'Deep Author' } });
      const post = await postOf(writer, { title: 'deep', published: true });
      const draft = await postOf(writer, { title: 'deep draft' });
      const commenter = await makeUser(server);
      const created = await commenter.client.request<{ createComment: { id: string } }>(
        'mutation($postId: ID!) { createComment(input: { postId: $postId, body: "two levels" }) { id } }',
        { postId: post },
      );
      const query = 'query($id: ID!) { comment(id: $id) { body post { title author { displayName } } } }';
      const { result, statements } = await server.withoutComparing(() =>
        statementsDuring(() => commenter.client.request(query, { id: created.body.data!.createComment.id })),
      );
      expect(result.body).toEqual({
        data: { comment: { body: 'two levels', post: { title: 'deep', author: { displayName: 'Deep Author' } } } },
      });
      expect(statements).toHaveLength(1);
      // The same depth through a row outside the related model's scope: its author is never read.
      const [{ id: hidden }] = await server.bastion.database.dataSource.query(
        "INSERT INTO comments (post_id, author_id, body) VALUES ($1, $2, 'on a draft') RETURNING id",
        [draft, commenter.id],
      );
      const onDraft = await commenter.client.request(query, { id: hidden });
      expect(onDraft.body).toEqual({ data: { comment: { body: 'on a draft', post: null } } });
    });

    it("follows relations both ways, each scoped by the viewer's grants on the related model", async () => {
      const post = await postOf(author, { title: 'discussed', published: true });
      await author.client.request(CREATE_PROFILE, { input: { displayName: 'The Author' } });
      const commenter = await makeUser(server);
      await commenter.client.request(CREATE_PROFILE, { input: { displayName: 'Commenter' } });
      const comment = await commenter.client.request<{ createComment: { id: string } }>(
        'mutation($postId: ID!) { createComment(input: { postId: $postId, body: "nice" }) { id } }',
        { postId: post },
      );
      const tree = `query($id: ID!) { post(id: $id) { title author { displayName } commentCount comments { body author { displayName } post { title } } } }`;
      expect((await commenter.client.request(tree, { id: post })).body).toEqual({
        data: {
          post: {
            title: 'discussed',
            author: { displayName: 'The Author' },
            commentCount: 1,
            comments: [{ body: 'nice', author: { displayName: 'Commenter' }, post: { title: 'discussed' } }],
          },
        },
      });
      // Anonymous viewers hold no READ grant on Comment: the relation is refused, the post still shows.
      const anonymous = await makeClient(server).request(tree, { id: post });
      expect(anonymous.body.data).toEqual({
        post: { title: 'discussed', author: { displayName: 'The Author' }, commentCount: null, comments: null },
      });
      expect(codesOf(anonymous)).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED']);
      expect(comment.body.data?.createComment.id).toEqual(expect.any(String));
    });
  });
  // Runs last in this describe: every query the tests above sent ran compiled and on graphql-js.
  it('answers every query above the same with the compiled executor as with graphql-js', () => {
    expect(server.executorComparisons.length).toBeGreaterThan(50);
    expect(server.executorComparisons.filter((comparison) => !comparison.same)).toEqual([]);
  });
});

describe('data API: field by field, for each model and kind of viewer (the matrix, per field)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ compareExecutors: true });
  });
  afterAll(() => server?.close());

  interface Grant {
    role: string;
    model: string;
    action: string;
    scope: string;
    fields: string[] | null;
    filter: string | null;
  }

  it("shows each field of another user's row exactly when a grant in force covers that row and field", async () => {
    const admin = await makeUser(server, { roles: ['admin'] });
    // A custom role that reads only the titles of every post.
    await admin.client.request('mutation { createRole(input: { name: "titles" }) { name } }');
    await admin.client.request(
      'mutation { grantPermission(input: { role: "titles", model: "Post", action: READ, scope: ALL, fields: ["title"] }) { id } }',
    );
    const owner = await makeUser(server);
    const rows = await owner.client.request<{ createProfile: { id: string }; published: { id: string }; draft: { id: string } }>(
      'mutation { createProfile(input: { displayName: "Owner", bio: "hi", phone: "+447700900999", birthDate: "1990-01-01" }) { id } ' +
        'published: createPost(input: { title: "open", body: "b", published: true }) { id } ' +
        'draft: createPost(input: { title: "closed", body: "b" }) { id } }',
    );
    const comment = await owner.client.request<{ createComment: { id: string } }>(
      'mutation($postId: ID!) { createComment(input: { postId: $postId, body: "c" }) { id } }',
      { postId: rows.body.data!.published.id },
    );
    const stored: { model: string; field: string; id: string; values: Record<string, unknown>; fields: string[] }[] = [
      {
        model: 'Profile',
        field: 'profile',
        id: rows.body.data!.createProfile.id,
        values: { published: undefined },
        fields: ['id', 'userId', 'displayName', 'bio', 'avatarUrl', 'phone', 'birthDate', 'createdAt', 'updatedAt'],
      },
      {
        model: 'Post',
        field: 'post',
        id: rows.body.data!.published.id,
        values: { published: true },
        fields: ['id', 'authorId', 'title', 'body', 'published', 'createdAt', 'updatedAt'],
      },
      {
        model: 'Post',
        field: 'post',
        id: rows.body.data!.draft.id,
        values: { published: false },
        fields: ['id', 'authorId', 'title', 'body', 'published', 'createdAt', 'updatedAt'],
      },
      {
        model: 'Comment',
        field: 'comment',
        id: comment.body.data!.createComment.id,
        values: {},
        fields: ['id', 'postId', 'authorId', 'body', 'createdAt', 'updatedAt'],
      },
    ];
    const grants = (
      await admin.client.request<{ permissionMatrix: Grant[] }>('{ permissionMatrix { role model action scope fields filter } }')
    ).body.data!.permissionMatrix;
    const filters: Record<string, (values: Record<string, unknown>) => boolean> = { published: (values) => values.published === true };

    const viewers: { kind: string; client: GraphQLClient; roles: string[]; owns: boolean }[] = [
      { kind: 'anonymous', client: makeClient(server), roles: ['anonymous'], owns: false },
      { kind: 'owner', client: owner.client, roles: ['anonymous', 'user'], owns: true },
      { kind: 'other user', client: (await makeUser(server)).client, roles: ['anonymous', 'user'], owns: false },
      {
        kind: 'custom role',
        client: (await makeUser(server, { roles: ['titles'] })).client,
        roles: ['anonymous', 'user', 'titles'],
        owns: false,
      },
      { kind: 'admin', client: admin.client, roles: ['anonymous', 'user', 'admin'], owns: false },
    ];
    const mismatches: string[] = [];
    let checked = 0;
    for (const viewer of viewers) {
      for (const row of stored) {
        const covering = grants.filter(
          (grant) =>
            grant.model === row.model &&
            grant.action === 'READ' &&
            viewer.roles.includes(grant.role) &&
            (grant.scope === 'ALL' || viewer.owns) &&
            (grant.filter === null || filters[grant.filter](row.values)),
        );
        const visible = new Set(
          covering.some((grant) => grant.fields === null) ? row.fields : ['id', ...covering.flatMap((grant) => grant.fields ?? [])],
        );
        const response = await viewer.client.request<Record<string, Record<string, unknown> | null>>(
          `query($id: ID!) { ${row.field}(id: $id) { ${row.fields.join(' ')} } }`,
          { id: row.id },
        );
        const label = `${viewer.kind} ${row.model}(${row.values.published == null ? '' : JSON.stringify(row.values.published)})`;
        if (covering.length === 0) {
          // No READ grant on the model at all: the operation is refused; some, but none covering this row: NOT_FOUND.
          const anyGrant = grants.some(
            (grant) =>
              grant.model === row.model &&
              grant.action === 'READ' &&
              viewer.roles.includes(grant.role) &&
              (grant.scope === 'ALL' || viewer.kind !== 'anonymous'),
          );
          const expected = anyGrant ? 'NOT_FOUND' : viewer.kind === 'anonymous' ? 'UNAUTHENTICATED' : 'FORBIDDEN';
          if (codesOf(response)?.[0] !== expected) mismatches.push(`${label}: expected ${expected}, got ${JSON.stringify(response.body)}`);
          checked += 1;
          continue;
        }
        for (const field of row.fields) {
          checked += 1;
          const value = response.body.data?.[row.field]?.[field];
          const error = response.body.errors?.find((candidate) => candidate.path?.[1] === field);
          if (visible.has(field) && (error || value === undefined))
            mismatches.push(`${label}.${field}: expected visible, got ${JSON.stringify(error ?? value)}`);
          if (
            !visible.has(field) &&
            (value !== null || !error || !['FORBIDDEN', 'UNAUTHENTICATED'].includes(String(error.extensions?.code)))
          )
            mismatches.push(`${label}.${field}: expected hidden, got ${JSON.stringify(value)}`);
        }
      }
    }
    process.stdout.write(`data API field matrix: ${checked} field checks\n`);
    expect(mismatches).toEqual([]);
    // Each of those reads ran compiled and on graphql-js, with the same answer (values and denials).
    expect(server.executorComparisons.filter((comparison) => comparison.query.includes('(id: $id)')).length).toBeGreaterThanOrEqual(
      viewers.length * stored.length,
    );
    expect(server.executorComparisons.filter((comparison) => !comparison.same)).toEqual([]);
  });
});
