import { GraphQLResponse, SIGN_IN, TestAccount, codesOf, confirmTotp, makeClient, makeUser } from '../support/factories';
import { MEMOS_TABLE_SQL, memoFeature } from '../support/memo-model';
import { configWith } from '../../src/settings';
import { startBastion } from '../../src/main';
import { TestServer, startTestServer } from '../support/test-server';
import { TEST_KEY_SETTINGS } from '../support/test-keys';

const GRANT = 'mutation($input: GrantPermissionInput!) { grantPermission(input: $input) { id role model action scope fields filter } }';
const REVOKE = 'mutation($id: ID!) { revokePermission(id: $id) }';
const CREATE_ROLE = 'mutation($input: CreateRoleInput!) { createRole(input: $input) { name description builtIn requireMfa } }';
const ASSIGN = 'mutation($input: AssignRoleInput!) { assignRole(input: $input) { id roles } }';
const UNASSIGN = 'mutation($input: AssignRoleInput!) { unassignRole(input: $input) { id roles } }';
const MATRIX = '{ permissionMatrix { id role model action scope fields filter } }';
const CREATE_MEMO = 'mutation($input: MemoInput!) { createMemo(input: $input) { id title } }';
const SET_STATUS = 'mutation($input: SetUserStatusInput!) { setUserStatus(input: $input) { id status } }';

interface Grant {
  id: string;
  role: string;
  model: string;
  action: string;
  scope: string;
  fields: string[] | null;
  filter: string | null;
}

/**
 * Two accounts each acted on the other at once: exactly one request must succeed, and the other must be
 * refused with one of `loserCodes`. Returns [winner, loser].
 */
function oneWinner(results: GraphQLResponse[], actors: [TestAccount, TestAccount], loserCodes: string[]): [TestAccount, TestAccount] {
  const succeeded = results.map((result) => codesOf(result) === undefined);
  expect(succeeded.filter(Boolean)).toHaveLength(1);
  const winner = succeeded[0] ? 0 : 1;
  expect(loserCodes).toContainEqual(codesOf(results[1 - winner])?.[0]);
  return [actors[winner], actors[1 - winner]];
}

describe('access control', () => {
  let server: TestServer;
  let admin: TestAccount;

  beforeAll(async () => {
    server = await startTestServer({ extraFeatures: [memoFeature], setupSql: [MEMOS_TABLE_SQL] });
    admin = await makeUser(server, { roles: ['admin'] });
  });
  afterAll(() => server?.close());

  async function memoOf(owner: TestAccount, input: Record<string, unknown> = {}): Promise<string> {
    const { body } = await owner.client.request<{ createMemo: { id: string } }>(CREATE_MEMO, {
      input: { title: 'a memo', body: 'private body', ...input },
    });
    if (!body.data) throw new Error(JSON.stringify(body.errors));
    return body.data.createMemo.id;
  }

  async function matrix(): Promise<Grant[]> {
    const { body } = await admin.client.request<{ permissionMatrix: Grant[] }>(MATRIX);
    return body.data!.permissionMatrix;
  }

  async function auditActions(): Promise<string[]> {
    const rows: { action: string }[] = await server.bastion.database.dataSource.query('SELECT action FROM audit_events ORDER BY id');
    return rows.map((row) => row.action);
  }

  describe('roles', () => {
    it('lists the built-in roles to admins; anonymous and plain users are refused', async () => {
      const { body } = await admin.client.request<{ roles: { name: string; builtIn: boolean }[] }>(
        '{ roles { name builtIn requireMfa description } }',
      );
      expect(body.data!.roles.slice(0, 3)).toEqual([
        { name: 'admin', builtIn: true, requireMfa: false, description: expect.any(String) },
        { name: 'anonymous', builtIn: true, requireMfa: false, description: expect.any(String) },
        { name: 'user', builtIn: true, requireMfa: false, description: expect.any(String) },
      ]);
      expect(codesOf(await makeClient(server).request('{ roles { name } }'))).toEqual(['UNAUTHENTICATED']);
      const user = await makeUser(server);
      expect(codesOf(await user.client.request('{ roles { name } }'))).toEqual(['FORBIDDEN']);
    });

    it('creates a custom role once, with a clear error for a bad or taken name, and audits it', async () => {
      const created = await admin.client.request(CREATE_ROLE, { input: { name: 'support', description: 'Help desk', requireMfa: true } });
      expect(created.body.data).toEqual({ createRole: { name: 'support', description: 'Help desk', builtIn: false, requireMfa: true } });
      expect(codesOf(await admin.client.request(CREATE_ROLE, { input: { name: 'support' } }))).toEqual(['CONFLICT']);
      const bad = await admin.client.request(CREATE_ROLE, { input: { name: 'Bad Name!' } });
      expect(codesOf(bad)).toEqual(['BAD_USER_INPUT']);
      expect(bad.body.errors![0].extensions?.field).toBe('name');
      expect(await auditActions()).toContain('role_created');
    });

    it('refuses to delete a built-in role, and NOT_FOUND for an unknown one', async () => {
      expect(codesOf(await admin.client.request('mutation { deleteRole(name: "admin") }'))).toEqual(['BAD_USER_INPUT']);
      expect(codesOf(await admin.client.request('mutation { deleteRole(name: "nobody-has-this") }'))).toEqual(['NOT_FOUND']);
    });

    it('assigns and unassigns roles, in force at the member\'s next request; "user" and "anonymous" are implicit', async () => {
      const member = await makeUser(server);
      expect(codesOf(await member.client.request('{ roles { name } }'))).toEqual(['FORBIDDEN']);
      const assigned = await admin.client.request(ASSIGN, { input: { userId: member.id, role: 'admin' } });
      expect(assigned.body.data).toEqual({ assignRole: { id: member.id, roles: ['admin', 'user'] } });
      expect(codesOf(await member.client.request('{ roles { name } }'))).toBeUndefined();
      const unassigned = await admin.client.request(UNASSIGN, { input: { userId: member.id, role: 'admin' } });
      expect(unassigned.body.data).toEqual({ unassignRole: { id: member.id, roles: ['user'] } });
      expect(codesOf(await member.client.request('{ roles { name } }'))).toEqual(['FORBIDDEN']);
      expect(codesOf(await admin.client.request(ASSIGN, { input: { userId: member.id, role: 'user' } }))).toEqual(['BAD_USER_INPUT']);
      expect(codesOf(await admin.client.request(ASSIGN, { input: { userId: member.id, role: 'no-such-role' } }))).toEqual(['NOT_FOUND']);
      expect(codesOf(await admin.client.request(UNASSIGN, { input: { userId: member.id, role: 'no-such-role' } }))).toEqual(['NOT_FOUND']);
      expect(
        codesOf(await admin.client.request(ASSIGN, { input: { userId: '00000000-0000-4000-8000-000000000000', role: 'admin' } })),
      ).toEqual(['NOT_FOUND']);
      expect(await auditActions()).toEqual(expect.arrayContaining(['role_assigned', 'role_unassigned']));
    });

    it('keeps the last active admin: two admins removing each other at once, exactly one succeeds', async () => {
      const solo = await startTestServer();
      try {
        const first = await makeUser(solo, { roles: ['admin'] });
        expect(codesOf(await first.client.request(UNASSIGN, { input: { userId: first.id, role: 'admin' } }))).toEqual(['CONFLICT']);
        const second = await makeUser(solo, { roles: ['admin'] });
        const results = await Promise.all([
          first.client.request(UNASSIGN, { input: { userId: second.id, role: 'admin' } }),
          second.client.request(UNASSIGN, { input: { userId: first.id, role: 'admin' } }),
        ]);
        // The loser either reached the lock and got CONFLICT, or was authenticated after the winner's
        // commit and is no longer an admin (FORBIDDEN). Either way exactly one change lands.
        const [survivor, demoted] = oneWinner(results, [first, second], ['CONFLICT', 'FORBIDDEN']);
        const [{ count }] = await solo.bastion.database.dataSource.query(
          "SELECT count(*)::int AS count FROM user_roles WHERE role_name = 'admin'",
        );
        expect(count).toBe(1);
        expect(codesOf(await demoted.client.request('{ roles { name } }'))).toEqual(['FORBIDDEN']);
        // The last admin cannot delete their own account either.
        expect(
          codesOf(
            await survivor.client.request('mutation($input: DeleteAccountInput!) { deleteAccount(input: $input) }', {
              input: { password: survivor.password },
            }),
          ),
        ).toEqual(['CONFLICT']);

        // Two admins suspending each other at once: one of them stays.
        const third = await makeUser(solo, { roles: ['admin'] });
        const suspensions = await Promise.all([
          survivor.client.request(SET_STATUS, { input: { userId: third.id, status: 'SUSPENDED' } }),
          third.client.request(SET_STATUS, { input: { userId: survivor.id, status: 'SUSPENDED' } }),
        ]);
        // Here the loser is either refused at the lock (CONFLICT) or already suspended (UNAUTHENTICATED).
        const [, suspended] = oneWinner(suspensions, [survivor, third], ['CONFLICT', 'UNAUTHENTICATED']);
        expect(codesOf(await suspended.client.request('{ me { id } }'))).toEqual(['UNAUTHENTICATED']);
        const [{ active }] = await solo.bastion.database.dataSource.query(
          "SELECT count(*)::int AS active FROM user_roles ur JOIN users u ON u.id = ur.user_id WHERE ur.role_name = 'admin' AND u.status = 'active'",
        );
        expect(active).toBe(1);
      } finally {
        await solo.close();
      }
    });
  });

  describe('the policy for a model', () => {
    it("seeds the model's code defaults once and shows them in permissionMatrix", async () => {
      const grants = await matrix();
      expect(
        grants
          .filter((grant) => grant.model === 'Memo')
          .map(({ role, action, scope, fields, filter }) => ({ role, action, scope, fields, filter })),
      ).toEqual([
        { role: 'user', action: 'CREATE', scope: 'OWN', fields: null, filter: null },
        { role: 'admin', action: 'DELETE', scope: 'ALL', fields: null, filter: null },
        { role: 'user', action: 'DELETE', scope: 'OWN', fields: null, filter: null },
        { role: 'admin', action: 'READ', scope: 'ALL', fields: null, filter: null },
        { role: 'anonymous', action: 'READ', scope: 'ALL', fields: ['createdAt', 'id', 'published', 'title'], filter: 'published' },
        { role: 'user', action: 'READ', scope: 'OWN', fields: null, filter: null },
        { role: 'user', action: 'UPDATE', scope: 'OWN', fields: null, filter: null },
      ]);
    });

    it('does not bring back a revoked default when another instance starts: once seeded, the table is the policy', async () => {
      const deleteAll = (await matrix()).find((grant) => grant.model === 'Memo' && grant.role === 'admin' && grant.action === 'DELETE')!;
      await admin.client.request(REVOKE, { id: deleteAll.id });
      const config = configWith({
        databaseUrl: server.database.url,
        port: 0,
        host: '127.0.0.1',
        migrateOnStart: false,
        databasePoolSize: 2,
        ...TEST_KEY_SETTINGS,
      });
      const second = await startBastion(config, { logger: server.logger, clock: server.clock, extraFeatures: [memoFeature] });
      try {
        expect((await matrix()).some((grant) => grant.model === 'Memo' && grant.role === 'admin' && grant.action === 'DELETE')).toBe(false);
      } finally {
        await second.stop();
        await admin.client.request(GRANT, { input: { role: 'admin', model: 'Memo', action: 'DELETE', scope: 'ALL' } });
      }
    });

    it("scopes OWN reads in SQL: another user's memo is NOT_FOUND, exactly like one that does not exist", async () => {
      const alice = await makeUser(server);
      const bob = await makeUser(server);
      const memo = await memoOf(alice);
      const fromBob = await bob.client.request('query($id: ID!) { memo(id: $id) { id title } }', { id: memo });
      const missing = await bob.client.request('query($id: ID!) { memo(id: $id) { id title } }', {
        id: '00000000-0000-4000-8000-000000000000',
      });
      expect(codesOf(fromBob)).toEqual(['NOT_FOUND']);
      expect(fromBob.body.errors![0].message).toBe(missing.body.errors![0].message);
      const list = await bob.client.request<{ memos: { id: string }[] }>('{ memos(first: 100) { id } }');
      expect(list.body.data!.memos.map((row) => row.id)).not.toContain(memo);
      expect(
        codesOf(await bob.client.request('mutation($id: ID!) { updateMemo(id: $id, input: { title: "mine now" }) { id } }', { id: memo })),
      ).toEqual(['NOT_FOUND']);
      expect(codesOf(await bob.client.request('mutation($id: ID!) { deleteMemo(id: $id) }', { id: memo }))).toEqual(['NOT_FOUND']);
      const own = await alice.client.request('query($id: ID!) { memo(id: $id) { title body } }', { id: memo });
      expect(own.body.data).toEqual({ memo: { title: 'a memo', body: 'private body' } });
      // Admins read ALL.
      expect((await admin.client.request('query($id: ID!) { memo(id: $id) { body } }', { id: memo })).body.data).toEqual({
        memo: { body: 'private body' },
      });
    });

    it('lets anonymous viewers read only published memos, and only the granted fields', async () => {
      const author = await makeUser(server);
      const draft = await memoOf(author, { title: 'draft' });
      const published = await memoOf(author, { title: 'public', published: true });
      const anonymous = makeClient(server);
      const list = await anonymous.request<{ memos: { id: string }[] }>('{ memos(first: 100) { id title } }');
      const ids = list.body.data!.memos.map((row) => row.id);
      expect(ids).toContain(published);
      expect(ids).not.toContain(draft);
      const body = await anonymous.request('query($id: ID!) { memo(id: $id) { title body } }', { id: published });
      expect(body.body.data).toEqual({ memo: { title: 'public', body: null } });
      expect(codesOf(body)).toEqual(['UNAUTHENTICATED']);
      expect(body.body.errors![0].path).toEqual(['memo', 'body']);
      // A signed-in stranger holds anonymous too: the published memo's title, not its body.
      const stranger = await makeUser(server);
      const asStranger = await stranger.client.request('query($id: ID!) { memo(id: $id) { title body } }', { id: published });
      expect(asStranger.body.data).toEqual({ memo: { title: 'public', body: null } });
      expect(codesOf(asStranger)).toEqual(['FORBIDDEN']);
    });

    it("masks each row of one list by its own grants: the viewer's drafts in full, others' published memos by title", async () => {
      const reader = await makeUser(server);
      const other = await makeUser(server);
      const mine = await memoOf(reader, { title: 'my draft', body: 'my body' });
      const theirs = await memoOf(other, { title: 'their post', body: 'their body', published: true });
      const list = await reader.client.request<{ memos: { id: string; title: string; body: string | null }[] }>(
        '{ memos(first: 100) { id title body } }',
      );
      const byId = new Map(list.body.data!.memos.map((memo, index) => [memo.id, { memo, index }]));
      expect(byId.get(mine)?.memo).toEqual({ id: mine, title: 'my draft', body: 'my body' });
      expect(byId.get(theirs)?.memo).toEqual({ id: theirs, title: 'their post', body: null });
      const denied = list.body.errors!.filter((error) => error.path?.[1] === byId.get(theirs)!.index);
      expect(denied.map((error) => [error.path, error.extensions?.code])).toEqual([
        [['memos', byId.get(theirs)!.index, 'body'], 'FORBIDDEN'],
      ]);
      expect(list.body.errors!.some((error) => error.path?.[1] === byId.get(mine)!.index)).toBe(false);
    });

    it('never lets a client set the owner, id or timestamps (schema), nor fields its grants do not name', async () => {
      const user = await makeUser(server);
      const withOwner = await user.client.request(CREATE_MEMO, { input: { title: 'x', ownerId: admin.id } });
      expect(withOwner.status).toBe(400);
      expect(codesOf(withOwner)).toEqual(['BAD_USER_INPUT']);
      const memo = await memoOf(user);
      const [row] = await server.bastion.database.dataSource.query('SELECT owner_id FROM memos WHERE id = $1', [memo]);
      expect(row.owner_id).toBe(user.id);

      // Narrow the user role's UPDATE to the title only.
      const update = (await matrix()).find((grant) => grant.model === 'Memo' && grant.role === 'user' && grant.action === 'UPDATE')!;
      expect(codesOf(await admin.client.request(REVOKE, { id: update.id }))).toBeUndefined();
      const narrowed = await admin.client.request<{ grantPermission: Grant }>(GRANT, {
        input: { role: 'user', model: 'Memo', action: 'UPDATE', scope: 'OWN', fields: ['title'] },
      });
      try {
        const publish = await user.client.request(
          'mutation($id: ID!) { updateMemo(id: $id, input: { title: "t", published: true }) { id } }',
          { id: memo },
        );
        expect(codesOf(publish)).toEqual(['FORBIDDEN']);
        expect(publish.body.errors![0]).toMatchObject({
          message: expect.stringContaining('published'),
          extensions: { field: 'published' },
        });
        const [unchanged] = await server.bastion.database.dataSource.query('SELECT title, published FROM memos WHERE id = $1', [memo]);
        expect(unchanged).toEqual({ title: 'a memo', published: false });
        const retitle = await user.client.request('mutation($id: ID!) { updateMemo(id: $id, input: { title: "renamed" }) { title } }', {
          id: memo,
        });
        expect(retitle.body.data).toEqual({ updateMemo: { title: 'renamed' } });
      } finally {
        await admin.client.request(REVOKE, { id: narrowed.body.data!.grantPermission.id });
        await admin.client.request(GRANT, { input: { role: 'user', model: 'Memo', action: 'UPDATE', scope: 'OWN' } });
      }
    });

    it('validates grants against the model: unknown model, field, filter, OWN without an owner, duplicates', async () => {
      const attempt = (input: Record<string, unknown>) =>
        admin.client.request(GRANT, { input: { role: 'user', model: 'Memo', action: 'READ', scope: 'ALL', ...input } });
      const cases: [Record<string, unknown>, string, string][] = [
        [{ model: 'Nope' }, 'BAD_USER_INPUT', 'model'],
        [{ fields: ['passwordHash'] }, 'BAD_USER_INPUT', 'fields'],
        [{ action: 'UPDATE', fields: ['id'] }, 'BAD_USER_INPUT', 'fields'],
        [{ action: 'DELETE', fields: ['title'] }, 'BAD_USER_INPUT', 'fields'],
        [{ fields: [] }, 'BAD_USER_INPUT', 'fields'],
        [{ filter: 'everything' }, 'BAD_USER_INPUT', 'filter'],
        [{ role: 'anonymous', scope: 'OWN' }, 'BAD_USER_INPUT', 'scope'],
      ];
      for (const [input, code, field] of cases) {
        const response = await attempt(input);
        expect({ input, codes: codesOf(response), field: response.body.errors?.[0].extensions?.field }).toEqual({
          input,
          codes: [code],
          field,
        });
      }
      expect(codesOf(await attempt({ role: 'ghost' }))).toEqual(['NOT_FOUND']);
      expect(codesOf(await admin.client.request(GRANT, { input: { role: 'user', model: 'Memo', action: 'READ', scope: 'OWN' } }))).toEqual([
        'CONFLICT',
      ]);
      expect(codesOf(await admin.client.request(REVOKE, { id: 'not-a-grant' }))).toEqual(['NOT_FOUND']);
    });

    it('grants one of two identical grants sent at the same time; the other is a CONFLICT', async () => {
      const input = { role: 'user', model: 'Memo', action: 'READ', scope: 'ALL', fields: ['title'], filter: 'published' };
      const results = await Promise.all([admin.client.request(GRANT, { input }), admin.client.request(GRANT, { input })]);
      expect(results.map(codesOf).sort()).toEqual([['CONFLICT'], undefined]);
      const same = (await matrix()).filter((grant) => grant.role === 'user' && grant.action === 'READ' && grant.filter === 'published');
      expect(same).toHaveLength(1);
      await admin.client.request(REVOKE, { id: same[0].id });
    });
  });

  it('done when: an admin creates a role, grants it fields of a model, assigns it, and it takes effect at once; revoking takes it away', async () => {
    const author = await makeUser(server);
    const memo = await memoOf(author, { title: 'quarterly numbers', body: 'secret body' });
    const editor = await makeUser(server);
    const read = 'query($id: ID!) { memo(id: $id) { title body } }';
    expect(codesOf(await editor.client.request(read, { id: memo }))).toEqual(['NOT_FOUND']);

    await admin.client.request(CREATE_ROLE, { input: { name: 'editor' } });
    const granted = await admin.client.request<{ grantPermission: Grant }>(GRANT, {
      input: { role: 'editor', model: 'Memo', action: 'READ', scope: 'ALL', fields: ['title', 'id'] },
    });
    expect(granted.body.data!.grantPermission).toMatchObject({
      role: 'editor',
      model: 'Memo',
      action: 'READ',
      scope: 'ALL',
      fields: ['id', 'title'],
      filter: null,
    });
    await admin.client.request(ASSIGN, { input: { userId: editor.id, role: 'editor' } });

    const asEditor = await editor.client.request(read, { id: memo });
    expect(asEditor.body.data).toEqual({ memo: { title: 'quarterly numbers', body: null } });
    expect(codesOf(asEditor)).toEqual(['FORBIDDEN']);
    expect((await matrix()).map((grant) => grant.id)).toContain(granted.body.data!.grantPermission.id);

    await admin.client.request(REVOKE, { id: granted.body.data!.grantPermission.id });
    expect(codesOf(await editor.client.request(read, { id: memo }))).toEqual(['NOT_FOUND']);
    expect(await auditActions()).toEqual(expect.arrayContaining(['grant_added', 'grant_removed']));

    // Deleting the role takes its grants and memberships with it.
    await admin.client.request(GRANT, { input: { role: 'editor', model: 'Memo', action: 'READ', scope: 'ALL' } });
    expect((await editor.client.request(read, { id: memo })).body.data).toEqual({
      memo: { title: 'quarterly numbers', body: 'secret body' },
    });
    expect(codesOf(await admin.client.request('mutation { deleteRole(name: "editor") }'))).toBeUndefined();
    expect(codesOf(await editor.client.request(read, { id: memo }))).toEqual(['NOT_FOUND']);
    expect((await matrix()).some((grant) => grant.role === 'editor')).toBe(false);
  });

  describe('users and their status', () => {
    const USERS =
      'query($filter: UserFilter, $first: Int, $after: String) { users(filter: $filter, first: $first, after: $after) { totalCount ' +
      'edges { cursor node { id email status roles mfaEnabled } } pageInfo { hasNextPage endCursor } } }';
    type Page = {
      users: {
        totalCount: number;
        edges: { cursor: string; node: { id: string; email: string; status: string; roles: string[] } }[];
        pageInfo: { hasNextPage: boolean; endCursor: string | null };
      };
    };

    it('pages through every user, newest first, with filters, for admins only', async () => {
      const seen: string[] = [];
      let after: string | null = null;
      let total: number;
      do {
        const response: GraphQLResponse<Page> = await admin.client.request<Page>(USERS, { first: 3, after });
        expect(response.body.errors).toBeUndefined();
        const page: Page['users'] = response.body.data!.users;
        total = page.totalCount;
        seen.push(...page.edges.map((edge) => edge.node.id));
        after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
      } while (after);
      expect(new Set(seen).size).toBe(total);
      const [{ count }] = await server.bastion.database.dataSource.query('SELECT count(*)::int AS count FROM users');
      expect(total).toBe(count);

      const byEmail = await admin.client.request<Page>(USERS, { filter: { email: admin.email.toUpperCase() } });
      expect(byEmail.body.data!.users.edges.map((edge) => edge.node)).toEqual([
        expect.objectContaining({ id: admin.id, email: admin.email, status: 'ACTIVE', roles: ['admin', 'user'] }),
      ]);
      const admins = await admin.client.request<Page>(USERS, { filter: { role: 'admin' }, first: 100 });
      expect(admins.body.data!.users.edges.map((edge) => edge.node.id)).toContain(admin.id);
      expect(admins.body.data!.users.edges.every((edge) => edge.node.roles.includes('admin'))).toBe(true);

      expect(codesOf(await admin.client.request(USERS, { first: 101 }))).toEqual(['BAD_USER_INPUT']);
      expect(codesOf(await admin.client.request(USERS, { after: 'not-a-cursor' }))).toEqual(['BAD_USER_INPUT']);
      const forged = Buffer.from(JSON.stringify(['1', admin.id])).toString('base64url');
      expect(codesOf(await admin.client.request(USERS, { after: forged }))).toEqual(['BAD_USER_INPUT']);
      const longFilter = await admin.client.request(USERS, { filter: { role: 'r'.repeat(41) } });
      expect(codesOf(longFilter)).toEqual(['BAD_USER_INPUT']);
      const user = await makeUser(server);
      expect(codesOf(await user.client.request(USERS))).toEqual(['FORBIDDEN']);
    });

    it('does not skip users created within one millisecond at a page boundary', async () => {
      await admin.client.request(CREATE_ROLE, { input: { name: 'same-millisecond' } });
      const ids: string[] = [];
      for (let n = 0; n < 3; n += 1) {
        const user = await makeUser(server);
        ids.push(user.id);
        await admin.client.request(ASSIGN, { input: { userId: user.id, role: 'same-millisecond' } });
      }
      // PostgreSQL keeps microseconds; a JavaScript Date (and so a naive cursor) only milliseconds.
      await server.bastion.database.dataSource.query(
        "UPDATE users SET created_at = '2026-03-01T12:00:00.123456Z'::timestamptz - (interval '1 microsecond' * array_position($1::uuid[], id)) " +
          'WHERE id = ANY($1::uuid[])',
        [ids],
      );
      const seen: string[] = [];
      let after: string | null = null;
      do {
        const page: GraphQLResponse<Page> = await admin.client.request<Page>(USERS, {
          filter: { role: 'same-millisecond' },
          first: 1,
          after,
        });
        seen.push(...page.body.data!.users.edges.map((edge) => edge.node.id));
        after = page.body.data!.users.pageInfo.hasNextPage ? page.body.data!.users.pageInfo.endCursor : null;
      } while (after && seen.length < 10);
      expect(seen.sort()).toEqual([...ids].sort());
    });

    it('suspending ends every session at once and refuses sign-in; reactivating lets the user back', async () => {
      const user = await makeUser(server);
      expect(codesOf(await admin.client.request(SET_STATUS, { input: { userId: admin.id, status: 'SUSPENDED' } }))).toEqual([
        'BAD_USER_INPUT',
      ]);
      const suspended = await admin.client.request(SET_STATUS, { input: { userId: user.id, status: 'SUSPENDED' } });
      expect(suspended.body.data).toEqual({ setUserStatus: { id: user.id, status: 'SUSPENDED' } });
      const after = await user.client.request('{ me { id } }');
      expect(after.status).toBe(401);
      expect(codesOf(after)).toEqual(['UNAUTHENTICATED']);
      const refresh = await makeClient(server).request(
        'mutation($input: RefreshSessionInput!) { refreshSession(input: $input) { accessToken } }',
        { input: { refreshToken: user.refreshToken } },
      );
      expect(codesOf(refresh)).toEqual(['UNAUTHENTICATED']);
      const signIn = await makeClient(server).request(SIGN_IN, { input: { email: user.email, password: user.password } });
      expect(codesOf(signIn)).toEqual(['FORBIDDEN']);

      await admin.client.request(SET_STATUS, { input: { userId: user.id, status: 'ACTIVE' } });
      const again = await makeClient(server).request<{ signIn: { __typename: string } }>(SIGN_IN, {
        input: { email: user.email, password: user.password },
      });
      expect(again.body.data?.signIn.__typename).toBe('AuthPayload');
      expect(await auditActions()).toEqual(expect.arrayContaining(['account_suspended', 'account_reactivated']));
      expect(codesOf(await user.client.request(SET_STATUS, { input: { userId: admin.id, status: 'SUSPENDED' } }))).toEqual([
        'UNAUTHENTICATED',
      ]);
    });
  });
});

describe('roles that require MFA (BASTION_MFA_REQUIRED_FOR=admin)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { mfaRequiredFor: 'admin' }, extraFeatures: [memoFeature], setupSql: [MEMOS_TABLE_SQL] });
  });
  afterAll(() => server?.close());

  it('an admin on an aal1 session gets MFA_REQUIRED, on aal2 is served; the role shows requireMfa', async () => {
    const admin = await makeUser(server, { roles: ['admin'] });
    const aal1 = await admin.client.request('{ roles { name requireMfa } }');
    expect(codesOf(aal1)).toEqual(['MFA_REQUIRED']);
    expect(codesOf(await admin.client.request('{ __schema { queryType { name } } }'))).toEqual(['MFA_REQUIRED']);
    await confirmTotp(server, admin);
    const aal2 = await admin.client.request<{ roles: { name: string; requireMfa: boolean }[] }>('{ roles { name requireMfa } }');
    expect(aal2.body.data!.roles.find((role) => role.name === 'admin')?.requireMfa).toBe(true);
    expect(codesOf(await admin.client.request('{ __schema { queryType { name } } }'))).toBeUndefined();
  });

  it('a custom role marked requireMfa grants nothing on aal1: MFA_REQUIRED where only it would allow', async () => {
    const admin = await makeUser(server, { roles: ['admin'], mfa: true });
    await admin.client.request(CREATE_ROLE, { input: { name: 'auditor', requireMfa: true } });
    // Anonymous may read published memos; an auditor also drafts, through ALL scope.
    const matrixResponse = await admin.client.request<{ permissionMatrix: Grant[] }>(MATRIX);
    const userRead = matrixResponse.body.data!.permissionMatrix.find(
      (grant) => grant.role === 'user' && grant.model === 'Memo' && grant.action === 'CREATE',
    )!;
    await admin.client.request(REVOKE, { id: userRead.id });
    await admin.client.request(GRANT, { input: { role: 'auditor', model: 'Memo', action: 'CREATE', scope: 'OWN' } });
    const member = await makeUser(server);
    await admin.client.request(ASSIGN, { input: { userId: member.id, role: 'auditor' } });
    expect(codesOf(await member.client.request(CREATE_MEMO, { input: { title: 'x' } }))).toEqual(['MFA_REQUIRED']);
    const plain = await makeUser(server);
    expect(codesOf(await plain.client.request(CREATE_MEMO, { input: { title: 'x' } }))).toEqual(['FORBIDDEN']);
    await confirmTotp(server, member);
    expect(codesOf(await member.client.request(CREATE_MEMO, { input: { title: 'x' } }))).toBeUndefined();
  });
});

describe('BASTION_MFA_REQUIRED_FOR=all', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { mfaRequiredFor: 'all' }, extraFeatures: [memoFeature], setupSql: [MEMOS_TABLE_SQL] });
  });
  afterAll(() => server?.close());

  it('an aal1 account keeps its account basics but acts with no role until it confirms a second factor', async () => {
    const user = await makeUser(server);
    expect((await user.client.request<{ me: { id: string } }>('{ me { id } }')).body.data?.me.id).toBe(user.id);
    expect(codesOf(await user.client.request(CREATE_MEMO, { input: { title: 'x' } }))).toEqual(['MFA_REQUIRED']);
    await confirmTotp(server, user);
    expect(codesOf(await user.client.request(CREATE_MEMO, { input: { title: 'x' } }))).toBeUndefined();
    // Signed-out viewers are not asked for a factor: anonymous grants stay in force.
    expect(codesOf(await makeClient(server).request('{ memos { id } }'))).toBeUndefined();
  });
});

describe('a field only a held-back role would reveal (BASTION_MFA_REQUIRED_FOR=admin)', () => {
  let server: TestServer;
  let admin: TestAccount;
  beforeAll(async () => {
    server = await startTestServer({
      config: { mfaRequiredFor: 'admin' },
      extraFeatures: [memoFeature],
      setupSql: [MEMOS_TABLE_SQL],
      compareExecutors: true,
    });
    admin = await makeUser(server, { roles: ['admin'], mfa: true });
  });
  afterAll(() => server?.close());

  const errorsAt = (response: GraphQLResponse) =>
    (response.body.errors ?? []).map((error) => ({ path: error.path?.join('.'), code: error.extensions?.code }));

  it('answers MFA_REQUIRED, not FORBIDDEN, on a data API field, a hand-written model field and a write, on both executors', async () => {
    const owner = await makeUser(server);
    const profile = await owner.client.request<{ createProfile: { id: string } }>(
      'mutation { createProfile(input: { displayName: "Owner", phone: "+447700900123" }) { id } }',
    );
    const memo = await owner.client.request<{ createMemo: { id: string } }>(CREATE_MEMO.replace('{ id title }', '{ id }'), {
      input: { title: 'public', body: 'the body', published: true },
    });
    const PROFILE = 'query($id: ID!) { profile(id: $id) { id displayName phone } }';
    const MEMO = 'query($id: ID!) { memo(id: $id) { id title body } }';
    const profileId = profile.body.data!.createProfile.id;
    const memoId = memo.body.data!.createMemo.id;

    // An admin on aal1: anonymous's grants show the public fields; the held-back admin grant (READ ALL) would show the rest.
    const adminAal1 = await makeUser(server, { roles: ['admin'] });
    const plain = await makeUser(server);
    expect(errorsAt(await adminAal1.client.request(PROFILE, { id: profileId }))).toEqual([{ path: 'profile.phone', code: 'MFA_REQUIRED' }]);
    expect(errorsAt(await plain.client.request(PROFILE, { id: profileId }))).toEqual([{ path: 'profile.phone', code: 'FORBIDDEN' }]);
    expect(errorsAt(await adminAal1.client.request(MEMO, { id: memoId }))).toEqual([{ path: 'memo.body', code: 'MFA_REQUIRED' }]);
    expect(errorsAt(await plain.client.request(MEMO, { id: memoId }))).toEqual([{ path: 'memo.body', code: 'FORBIDDEN' }]);
    // On aal2 (the admin made with a factor), the same fields are served.
    const served = await admin.client.request<{ profile: { phone: string } }>(PROFILE, { id: profileId });
    expect({ errors: served.body.errors, phone: served.body.data?.profile.phone }).toEqual({ errors: undefined, phone: '+447700900123' });
    expect(codesOf(await admin.client.request(MEMO, { id: memoId }))).toBeUndefined();

    // A write: users may retitle their memos; an editor (requires MFA) may change any field of them.
    const matrix = (await admin.client.request<{ permissionMatrix: Grant[] }>(MATRIX)).body.data!.permissionMatrix;
    const userUpdate = matrix.find((grant) => grant.role === 'user' && grant.model === 'Memo' && grant.action === 'UPDATE')!;
    await admin.client.request(REVOKE, { id: userUpdate.id });
    await admin.client.request(GRANT, { input: { role: 'user', model: 'Memo', action: 'UPDATE', scope: 'OWN', fields: ['title'] } });
    await admin.client.request(CREATE_ROLE, { input: { name: 'editor', requireMfa: true } });
    await admin.client.request(GRANT, { input: { role: 'editor', model: 'Memo', action: 'UPDATE', scope: 'OWN' } });
    await admin.client.request(ASSIGN, { input: { userId: owner.id, role: 'editor' } });
    const UPDATE = 'mutation($id: ID!, $input: MemoInput!) { updateMemo(id: $id, input: $input) { id } }';
    expect(codesOf(await owner.client.request(UPDATE, { id: memoId, input: { title: 'retitled' } }))).toBeUndefined();
    expect(codesOf(await owner.client.request(UPDATE, { id: memoId, input: { body: 'rewritten' } }))).toEqual(['MFA_REQUIRED']);
    const plainMemo = await plain.client.request<{ createMemo: { id: string } }>(CREATE_MEMO, { input: { title: 'mine' } });
    expect(codesOf(await plain.client.request(UPDATE, { id: plainMemo.body.data!.createMemo.id, input: { body: 'x' } }))).toEqual([
      'FORBIDDEN',
    ]);
    await confirmTotp(server, owner);
    expect(codesOf(await owner.client.request(UPDATE, { id: memoId, input: { body: 'rewritten' } }))).toBeUndefined();

    // Both executors gave the same answers (data and errors).
    expect(server.executorComparisons.length).toBeGreaterThan(0);
    expect(server.executorComparisons.filter((comparison) => !comparison.same)).toEqual([]);
  });
});
