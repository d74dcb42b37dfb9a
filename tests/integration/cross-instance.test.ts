import { verifyAuditChain } from '../../src/audit/audit-log';
import { configWith } from '../../src/settings';
import { createLogger } from '../../src/logging';
import { RunningBastion, startBastion } from '../../src/main';
import { eventually } from '../support/eventually';
import { withFrozenBackends } from '../support/frozen-backends';
import { GraphQLClient, GraphQLResponse, SIGN_IN, codesOf, emailedToken, makeClient, makeUser } from '../support/factories';
import { LogCollector } from '../support/log-collector';
import { TestServer, startTestServer } from '../support/test-server';
import { TEST_KEY_SETTINGS } from '../support/test-keys';
import { MEMOS_TABLE_SQL, memoFeature } from '../support/memo-model';

/**
 * Two Bastion instances on one database (the scale-out of docs/security.md#tok-9):
 * each caches sessions, the policy and the IP rules per process, and a change acknowledged by one
 * is in force on the other at its very next request: the change's NOTIFY is delivered on commit,
 * and every request first waits until the messages committed before it have been heard
 * (Notifications.sync). The clock is frozen, so the 60 s cache expiry never does the work: only
 * the invalidation message can. Nothing here polls for a change to arrive.
 */
describe('session invalidation across two instances on one database', () => {
  const ME = '{ me { id } }';
  const BOUND_MS = 5_000;
  const RECONNECTED = 'notifications: reconnected and listening again';

  let a: TestServer;
  let b: RunningBastion;
  const bLogs = new LogCollector();

  beforeAll(async () => {
    a = await startTestServer({ extraFeatures: [memoFeature], setupSql: [MEMOS_TABLE_SQL] });
    const logger = createLogger({ level: 'debug', pretty: false, destination: bLogs });
    // B trusts loopback as a proxy, so a test can speak to it from any address.
    const config = configWith({
      databaseUrl: a.database.url,
      port: 0,
      host: '127.0.0.1',
      migrateOnStart: false,
      databasePoolSize: 4,
      trustProxy: ['127.0.0.1', '::1'],
      ...TEST_KEY_SETTINGS,
    });
    b = await startBastion(config, { logger, clock: a.clock, extraFeatures: [memoFeature] });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.close();
  });

  const onA = (token: string): GraphQLClient => makeClient(a, { authorization: `Bearer ${token}` });
  const onB = (token: string): GraphQLClient => makeClient({ url: b.url }, { authorization: `Bearer ${token}` });

  async function expectServed(client: GraphQLClient, userId: string): Promise<void> {
    const response = await client.request(ME);
    expect({ status: response.status, body: response.body }).toEqual({ status: 200, body: { data: { me: { id: userId } } } });
  }

  /** The very next request through `client` is refused with 401 UNAUTHENTICATED. */
  async function refusedAtOnce(client: GraphQLClient): Promise<void> {
    const response = await client.request(ME);
    expect({ status: response.status, codes: codesOf(response) }).toEqual({ status: 401, codes: ['UNAUTHENTICATED'] });
    expect(response.body).not.toHaveProperty('data');
  }

  async function signInOn(server: { url: string }, email: string, password: string): Promise<string> {
    const { body } = await makeClient(server).request<{ signIn: { accessToken: string } }>(SIGN_IN, { input: { email, password } });
    if (!body.data?.signIn.accessToken) throw new Error(`signIn failed: ${JSON.stringify(body.errors)}`);
    return body.data.signIn.accessToken;
  }

  const listenerPids = async (state?: 'idle'): Promise<number[]> =>
    (
      await a.bastion.database.dataSource.query(
        "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'bastion-listen-%' AND datname = current_database() " +
          'AND ($1::text IS NULL OR state = $1) ORDER BY pid',
        [state ?? null],
      )
    ).map((row: { pid: number }) => Number(row.pid));
  const reconnects = (logs: LogCollector) => logs.lines.filter((line) => line.msg === RECONNECTED).length;

  it('runs two instances on one database, each with its own LISTEN connection', async () => {
    expect(new URL(b.url).port).not.toBe(new URL(a.url).port);
    expect(await listenerPids()).toHaveLength(2);
  });

  it('a token issued on A works on B, and a sign-out on A is in force on B', async () => {
    const account = await makeUser(a);
    await expectServed(onB(account.accessToken), account.id); // B now holds the session in its cache

    expect((await account.client.request('mutation { signOut }')).body).toEqual({ data: { signOut: true } });
    expect((await account.client.request(ME)).status).toBe(401); // A itself: at once
    await refusedAtOnce(onB(account.accessToken));
  });

  it('signOutEverywhere on B is in force on A, for every session of the user', async () => {
    const account = await makeUser(a);
    const fromB = await signInOn({ url: b.url }, account.email, account.password);
    await expectServed(onA(account.accessToken), account.id);
    await expectServed(onA(fromB), account.id); // A caches both sessions

    expect((await onB(fromB).request('mutation { signOutEverywhere }')).body).toEqual({ data: { signOutEverywhere: true } });
    expect((await onB(fromB).request(ME)).status).toBe(401); // B itself: at once
    await refusedAtOnce(onA(fromB));
    await refusedAtOnce(onA(account.accessToken));
  });

  it('the invalidation message is what does it: B keeps serving a session revoked behind its back until a NOTIFY is committed', async () => {
    const account = await makeUser(a);
    const { body } = await account.client.request<{ mySessions: { id: string; current: boolean }[] }>('{ mySessions { id current } }');
    const sessionId = body.data!.mySessions.find((session) => session.current)!.id;
    await expectServed(onB(account.accessToken), account.id);

    await a.bastion.database.dataSource.query('UPDATE sessions SET revoked_at = now() WHERE id = $1', [sessionId]);
    await expectServed(onB(account.accessToken), account.id); // still cached: no message was sent

    await a.bastion.database.dataSource.query("SELECT pg_notify('bastion_sessions', $1)", [`session:${sessionId}`]);
    await refusedAtOnce(onB(account.accessToken));
  });

  /** The very next request of `query` through `client` shows the change (`done`). */
  async function inForceAtOnce(client: GraphQLClient, query: string, done: (response: GraphQLResponse) => boolean): Promise<void> {
    const response = await client.request(query);
    expect({ inForce: done(response), body: response.body }).toEqual({ inForce: true, body: response.body });
  }

  it('holds even while the listeners are frozen: a request waits to hear, or stops trusting its caches', async () => {
    const account = await makeUser(a);
    await expectServed(onB(account.accessToken), account.id); // cached on B
    // Frozen listener backends deliver nothing: without the wait, B would answer from its cache.
    // Frozen while idle (waiting for their client), never in the middle of their work.
    let pids: number[] = [];
    await eventually(async () => (pids = await listenerPids('idle')).length === 2);
    await withFrozenBackends(pids, async () => {
      expect((await account.client.request('mutation { signOut }')).body).toEqual({ data: { signOut: true } });
      await refusedAtOnce(onB(account.accessToken));
    });
    expect(bLogs.lines.some((line) => line.msg === 'notifications: the listening connection did not answer; caches start over')).toBe(true);
    // Both cut their silent connections and listen again; invalidation works as before.
    await eventually(async () => (await listenerPids()).filter((pid) => !pids.includes(pid)).length === 2);
    const other = await makeUser(a);
    await expectServed(onB(other.accessToken), other.id);
    expect((await other.client.request('mutation { signOut }')).body).toEqual({ data: { signOut: true } });
    await refusedAtOnce(onB(other.accessToken));
  });

  it('a grant, a role assignment and a revocation made on A are in force on B at its next requests', async () => {
    const admin = await makeUser(a, { roles: ['admin'] });
    const author = await makeUser(a);
    const reader = await makeUser(a);
    const created = await author.client.request<{ createMemo: { id: string } }>(
      'mutation { createMemo(input: { title: "shared" }) { id } }',
    );
    const memo = `{ memo(id: "${created.body.data!.createMemo.id}") { title } }`;
    const readerOnB = onB(reader.accessToken);
    expect(codesOf(await readerOnB.request(memo))).toEqual(['NOT_FOUND']); // B has loaded the policy and the reader's session

    await admin.client.request('mutation { createRole(input: { name: "reader" }) { name } }');
    const granted = await admin.client.request<{ grantPermission: { id: string } }>(
      'mutation { grantPermission(input: { role: "reader", model: "Memo", action: READ, scope: ALL }) { id } }',
    );
    await admin.client.request(`mutation { assignRole(input: { userId: "${reader.id}", role: "reader" }) { id } }`);
    await inForceAtOnce(
      readerOnB,
      memo,
      (response) => (response.body.data as { memo?: { title: string } } | null)?.memo?.title === 'shared',
    );

    await admin.client.request(`mutation { revokePermission(id: "${granted.body.data!.grantPermission.id}") }`);
    await inForceAtOnce(readerOnB, memo, (response) => codesOf(response)?.[0] === 'NOT_FOUND');
  });

  it('an email verified on A shows in me on B at its next request (me reads the account cached with the session)', async () => {
    const account = await makeUser(a);
    const verified = '{ me { emailVerified } }';
    const readerOnB = onB(account.accessToken);
    await inForceAtOnce(
      readerOnB,
      verified,
      (response) => (response.body.data as { me?: { emailVerified: boolean } } | null)?.me?.emailVerified === false,
    );
    const token = await emailedToken(a, account.email, 'verify-email');
    expect(
      (await makeClient(a).request('mutation($input: VerifyEmailInput!) { verifyEmail(input: $input) }', { input: { token } })).body,
    ).toEqual({ data: { verifyEmail: true } });
    await inForceAtOnce(
      readerOnB,
      verified,
      (response) => (response.body.data as { me?: { emailVerified: boolean } } | null)?.me?.emailVerified === true,
    );
  });

  it('a suspension and a role deletion made on A are in force on B', async () => {
    const admin = await makeUser(a, { roles: ['admin'] });
    const member = await makeUser(a);
    await admin.client.request('mutation { createRole(input: { name: "temp" }) { name } }');
    await admin.client.request('mutation { grantPermission(input: { role: "temp", model: "Memo", action: READ, scope: ALL }) { id } }');
    await admin.client.request(`mutation { assignRole(input: { userId: "${member.id}", role: "temp" }) { id } }`);
    const memos = '{ memos(first: 1) { id } }';
    const someone = await makeUser(a);
    await someone.client.request('mutation { createMemo(input: { title: "x" }) { id } }');
    await inForceAtOnce(
      onB(member.accessToken),
      memos,
      (response) => ((response.body.data as { memos?: unknown[] } | null)?.memos?.length ?? 0) > 0,
    );

    await admin.client.request('mutation { deleteRole(name: "temp") }');
    await inForceAtOnce(
      onB(member.accessToken),
      memos,
      (response) => (response.body.data as { memos?: unknown[] } | null)?.memos?.length === 0,
    );

    await admin.client.request(`mutation { setUserStatus(input: { userId: "${member.id}", status: SUSPENDED }) { id } }`);
    await refusedAtOnce(onB(member.accessToken));
  });

  it('an IP rule added on A is in force on B at its next requests, and its removal too', async () => {
    const admin = await makeUser(a, { roles: ['admin'] });
    const fromBlockedNetwork = makeClient({ url: b.url }, { 'x-forwarded-for': '198.51.100.23' });
    const status = async () => (await fromBlockedNetwork.request('{ serverInfo { name } }')).status;
    expect(await status()).toBe(200); // B has loaded its rules
    const added = await admin.client.request<{ addFirewallRule: { id: string } }>(
      'mutation { addFirewallRule(input: { cidr: "198.51.100.0/24", action: DENY }) { id } }',
    );
    await inForceAtOnce(fromBlockedNetwork, '{ serverInfo { name } }', (response) => response.status === 403);
    await admin.client.request(`mutation { removeFirewallRule(id: "${added.body.data!.addFirewallRule.id}") }`);
    await inForceAtOnce(fromBlockedNetwork, '{ serverInfo { name } }', (response) => response.status === 200);
  });

  it('keeps one linear audit chain while both instances append at the same time', async () => {
    const accounts = await Promise.all([makeUser(a), makeUser(a)]);
    const attempts = accounts.flatMap((account) =>
      [a, { url: b.url }].flatMap((server) =>
        Array.from({ length: 5 }, () =>
          makeClient(server).request(SIGN_IN, { input: { email: account.email, password: 'wrong-password-for-the-chain' } }),
        ),
      ),
    );
    await Promise.all(attempts);
    const report = await verifyAuditChain(a.bastion.database.dataSource.manager, a.bastion.services.keyring);
    expect(report).toMatchObject({ ok: true, firstBrokenId: null });
    expect(report.checked).toBeGreaterThan(20);
  });

  it('after the LISTEN connections are killed, both instances reconnect and invalidation works again', async () => {
    const killed = await listenerPids();
    // Both instances share a hostname, hence one application_name: they cannot be told apart, so kill both.
    expect(killed).toHaveLength(2);
    const before = { a: reconnects(a.logs), b: reconnects(bLogs) };
    const [{ terminated }] = await a.bastion.database.dataSource.query(
      'SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS terminated FROM pg_stat_activity ' +
        "WHERE application_name LIKE 'bastion-listen-%' AND datname = current_database()",
    );
    expect(Number(terminated)).toBe(2);

    const recovered = await eventually(() => reconnects(a.logs) > before.a && reconnects(bLogs) > before.b, BOUND_MS);
    process.stdout.write(`cross-instance: both LISTEN connections back after ${recovered} ms\n`);
    const now = await listenerPids();
    expect(now).toHaveLength(2);
    expect(now.filter((pid) => killed.includes(pid))).toEqual([]);

    // A → B, with B's cache warmed after its reconnect (which cleared it).
    const first = await makeUser(a);
    await expectServed(onB(first.accessToken), first.id);
    expect((await first.client.request('mutation { signOut }')).body).toEqual({ data: { signOut: true } });
    await refusedAtOnce(onB(first.accessToken));

    // B → A.
    const second = await makeUser(a);
    const fromB = await signInOn({ url: b.url }, second.email, second.password);
    await expectServed(onA(fromB), second.id);
    expect((await onB(fromB).request('mutation { signOut }')).body).toEqual({ data: { signOut: true } });
    await refusedAtOnce(onA(fromB));
  });
});
