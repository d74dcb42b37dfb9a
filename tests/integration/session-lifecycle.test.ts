import { totpCode } from '../../src/mfa/totp';
import { runMaintenance } from '../../src/maintenance';
import { SessionRetention } from '../../src/accounts/session-retention';
import { runCliAgainst } from '../support/cli';
import { GraphQLResponse, REFRESH, SIGN_IN, TestAccount, codesOf, makeClient, makeUser } from '../support/factories';
import { TestServer, startTestServer } from '../support/test-server';

const DAY_MS = 24 * 60 * 60 * 1000;
const ME = '{ me { id } }';
const REVOKE = 'mutation($userId: ID!, $sessionId: ID) { adminRevokeSessions(userId: $userId, sessionId: $sessionId) }';
const VERIFY_MFA = 'mutation($input: VerifyMfaInput!) { verifyMfa(input: $input) { accessToken refreshToken } }';

type SignInAnswer = { signIn: { __typename: string; accessToken?: string; refreshToken?: string; mfaToken?: string } };

describe('sessions: sign-in replaces the bearer session, admins revoke sessions', () => {
  let server: TestServer;
  let admin: TestAccount;

  beforeAll(async () => {
    server = await startTestServer();
    admin = await makeUser(server, { roles: ['admin'], mfa: true });
  });
  afterAll(() => server?.close());

  const db = () => server.bastion.database.dataSource;
  const bearer = (token: string) => makeClient(server, { authorization: `Bearer ${token}` });
  const sessionsOf = (userId: string): Promise<{ id: string; revoked_reason: string | null }[]> =>
    db().query('SELECT id, revoked_reason FROM sessions WHERE user_id = $1 ORDER BY created_at', [userId]);
  /** A second later than the previous one, so sessions sort by created_at in the order they were opened. */
  const signIn = (client: ReturnType<typeof makeClient>, account: TestAccount) => {
    server.clock.advance(1000);
    return client.request<SignInAnswer>(SIGN_IN, { input: { email: account.email, password: account.password } });
  };

  it("ends the bearer token's session when signIn comes with one (ASVS 7.2.4): same account, or switching accounts", async () => {
    const ada = await makeUser(server);
    const again = await signIn(bearer(ada.accessToken), ada);
    expect(again.body.data?.signIn.__typename).toBe('AuthPayload');
    // The old pair is dead at once; the new one works.
    expect(codesOf(await ada.client.request(ME))).toEqual(['UNAUTHENTICATED']);
    expect(codesOf(await makeClient(server).request(REFRESH, { input: { refreshToken: ada.refreshToken } }))).toEqual(['UNAUTHENTICATED']);
    expect(codesOf(await bearer(again.body.data!.signIn.accessToken!).request(ME))).toBeUndefined();
    expect((await sessionsOf(ada.id)).map((session) => session.revoked_reason)).toEqual(['signed_in_again', null]);
    const [audited] = await db().query(
      "SELECT metadata FROM audit_events WHERE action = 'sign_in_succeeded' AND actor_id = $1 ORDER BY id DESC LIMIT 1",
      [ada.id],
    );
    expect(audited.metadata).toEqual({ replacedSessionId: (await sessionsOf(ada.id))[0].id });

    // One device switching to another account: the first account's session on it ends too.
    const grace = await makeUser(server);
    const switched = await signIn(bearer(again.body.data!.signIn.accessToken!), grace);
    expect(switched.body.data?.signIn.__typename).toBe('AuthPayload');
    expect((await sessionsOf(ada.id)).map((session) => session.revoked_reason)).toEqual(['signed_in_again', 'signed_in_again']);
    expect((await sessionsOf(grace.id)).map((session) => session.revoked_reason)).toEqual([null, null]);

    // Without the header (an app keeping several accounts signed in), nothing else ends.
    expect((await signIn(makeClient(server), grace)).body.data?.signIn.__typename).toBe('AuthPayload');
    expect((await sessionsOf(grace.id)).map((session) => session.revoked_reason)).toEqual([null, null, null]);
  });

  it('ends it when the sign-in completes with the second factor (verifyMfa), not at the challenge', async () => {
    const mira = await makeUser(server, { mfa: true });
    const challenge = await signIn(bearer(mira.accessToken), mira);
    const mfaToken = challenge.body.data?.signIn.mfaToken;
    expect(mfaToken).toBeDefined();
    expect(codesOf(await mira.client.request(ME))).toBeUndefined();
    const code = await totpCode({ secret: mira.totpSecret!, now: server.clock.now() });
    const verified = await bearer(mira.accessToken).request(VERIFY_MFA, { input: { mfaToken, code } });
    expect(codesOf(verified)).toBeUndefined();
    expect(codesOf(await mira.client.request(ME))).toEqual(['UNAUTHENTICATED']);
    expect((await sessionsOf(mira.id)).map((session) => session.revoked_reason)).toEqual(['signed_in_again', null]);
  });

  it('lets an admin end one session of a user or all of them, at once, audited; anyone else gets FORBIDDEN', async () => {
    const user = await makeUser(server);
    const phone = await signIn(makeClient(server), user);
    const tablet = await signIn(makeClient(server), user);
    const [first, second] = await sessionsOf(user.id);

    expect(codesOf(await user.client.request(REVOKE, { userId: user.id }))).toEqual(['FORBIDDEN']);
    expect(codesOf(await admin.client.request(REVOKE, { userId: '00000000-0000-4000-8000-000000000000' }))).toEqual(['NOT_FOUND']);
    expect(codesOf(await admin.client.request(REVOKE, { userId: user.id, sessionId: (await sessionsOf(admin.id))[0].id }))).toEqual([
      'NOT_FOUND',
    ]);

    const one = await admin.client.request<{ adminRevokeSessions: number }>(REVOKE, { userId: user.id, sessionId: second.id });
    expect(one.body.data?.adminRevokeSessions).toBe(1);
    expect(codesOf(await bearer(phone.body.data!.signIn.accessToken!).request(ME))).toEqual(['UNAUTHENTICATED']);
    expect(codesOf(await user.client.request(ME))).toBeUndefined();
    // Asked again, it ends nothing more.
    expect((await admin.client.request(REVOKE, { userId: user.id, sessionId: second.id })).body.data).toEqual({ adminRevokeSessions: 0 });

    const all = await admin.client.request<{ adminRevokeSessions: number }>(REVOKE, { userId: user.id });
    expect(all.body.data?.adminRevokeSessions).toBe(2);
    for (const token of [user.accessToken, tablet.body.data!.signIn.accessToken!])
      expect(codesOf(await bearer(token).request(ME))).toEqual(['UNAUTHENTICATED']);
    expect((await sessionsOf(user.id)).every((session) => session.revoked_reason !== null)).toBe(true);
    expect(first.revoked_reason).toBeNull();

    const audited = await db().query(
      "SELECT actor_id, target_id, metadata FROM audit_events WHERE action = 'user_sessions_revoked' AND target_id = $1 ORDER BY id",
      [user.id],
    );
    expect(audited).toEqual([
      { actor_id: admin.id, target_id: user.id, metadata: { sessionId: second.id, endedSessions: 1 } },
      { actor_id: admin.id, target_id: user.id, metadata: { sessionId: second.id, endedSessions: 0 } },
      { actor_id: admin.id, target_id: user.id, metadata: { sessionId: null, endedSessions: 2 } },
    ]);
  });

  it('gives a revocation racing a refresh one outcome: the session ends, and no token of it works afterwards', async () => {
    const outcomes: string[] = [];
    for (let round = 0; round < 6; round += 1) {
      const user = await makeUser(server);
      const [refreshed, revoked] = await Promise.all([
        makeClient(server).request<{ refreshSession: { accessToken: string; refreshToken: string } }>(REFRESH, {
          input: { refreshToken: user.refreshToken },
        }),
        admin.client.request<{ adminRevokeSessions: number }>(REVOKE, { userId: user.id }),
      ]);
      expect(revoked.body.data?.adminRevokeSessions).toBe(1);
      const pair = refreshed.body.data?.refreshSession;
      outcomes.push(pair ? 'refresh first' : 'revocation first');
      if (pair) {
        expect(codesOf(await bearer(pair.accessToken).request(ME))).toEqual(['UNAUTHENTICATED']);
        expect(codesOf(await makeClient(server).request(REFRESH, { input: { refreshToken: pair.refreshToken } }))).toEqual([
          'UNAUTHENTICATED',
        ]);
      } else {
        expect(codesOf(refreshed)).toEqual(['UNAUTHENTICATED']);
      }
      expect(codesOf(await user.client.request(ME))).toEqual(['UNAUTHENTICATED']);
      expect((await sessionsOf(user.id)).map((session) => session.revoked_reason)).toEqual(['revoked_by_admin']);
    }
    expect(outcomes).toHaveLength(6);
  });

  it('ends a session once when two admins revoke it at the same moment', async () => {
    const user = await makeUser(server);
    const [session] = await sessionsOf(user.id);
    const answers = await Promise.all(
      [1, 2].map(() => admin.client.request<{ adminRevokeSessions: number }>(REVOKE, { userId: user.id, sessionId: session.id })),
    );
    expect(answers.map((answer: GraphQLResponse<{ adminRevokeSessions: number }>) => answer.body.data?.adminRevokeSessions).sort()).toEqual(
      [0, 1],
    );
  });

  it('has a CLI command for it: bastion admin revoke-sessions --email E [--session ID]', async () => {
    const user = await makeUser(server);
    const other = await signIn(makeClient(server), user);
    const [, second] = await sessionsOf(user.id);
    const one = await runCliAgainst(server, ['admin', 'revoke-sessions', '--email', user.email, '--session', second.id]);
    expect([one.code, one.stdout.trim()]).toEqual([0, `ended 1 session(s) of ${user.id} (${user.email})`]);
    expect(codesOf(await bearer(other.body.data!.signIn.accessToken!).request(ME))).toEqual(['UNAUTHENTICATED']);
    expect(codesOf(await user.client.request(ME))).toBeUndefined();

    const all = await runCliAgainst(server, ['admin', 'revoke-sessions', '--email', user.email]);
    expect([all.code, all.stdout.trim()]).toEqual([0, `ended 1 session(s) of ${user.id} (${user.email})`]);
    expect(codesOf(await user.client.request(ME))).toEqual(['UNAUTHENTICATED']);
    const [audited] = await db().query(
      'SELECT actor_id, user_agent, metadata FROM audit_events ' +
        "WHERE action = 'user_sessions_revoked' AND target_id = $1 ORDER BY id DESC LIMIT 1",
      [user.id],
    );
    expect(audited).toEqual({ actor_id: null, user_agent: 'bastion-cli', metadata: { sessionId: null, endedSessions: 1 } });

    const unknown = await runCliAgainst(server, ['admin', 'revoke-sessions', '--email', 'nobody@example.com']);
    expect([unknown.code, unknown.stderr.trim()]).toEqual([1, 'bastion: no account with the email address nobody@example.com']);
  });
});

describe('sessions: the maintenance job prunes ended sessions and spent refresh tokens after the retention period', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.close());

  it('removes what ended before the retention period, keeps the rest, in bounded batches, with one audit event per run', async () => {
    const db = server.bastion.database.dataSource;
    const now = server.clock.now().getTime();
    const retentionMs = server.config.sessionRetentionDays * DAY_MS;
    const longAgo = new Date(now - retentionMs - DAY_MS);
    const [signedOutLongAgo, signedOutToday, idleLongAgo, endedByAgeLongAgo, active] = await Promise.all(
      [1, 2, 3, 4, 5].map(() => makeUser(server)),
    );
    await signedOutLongAgo.client.request('mutation { signOut }');
    await signedOutToday.client.request('mutation { signOut }');
    await db.query('UPDATE sessions SET revoked_at = $2 WHERE user_id = $1', [signedOutLongAgo.id, longAgo]);
    await db.query('UPDATE sessions SET last_used_at = $2 WHERE user_id = $1', [
      idleLongAgo.id,
      new Date(now - (server.config.refreshIdleDays + server.config.sessionRetentionDays + 1) * DAY_MS),
    ]);
    await db.query('UPDATE sessions SET absolute_expires_at = $2 WHERE user_id = $1', [endedByAgeLongAgo.id, longAgo]);
    // The active session refreshed twice: its first token was spent long ago, its second just now.
    const firstRefresh = await makeClient(server).request<{ refreshSession: { refreshToken: string } }>(REFRESH, {
      input: { refreshToken: active.refreshToken },
    });
    const secondRefresh = await makeClient(server).request<{ refreshSession: { refreshToken: string } }>(REFRESH, {
      input: { refreshToken: firstRefresh.body.data!.refreshSession.refreshToken },
    });
    await db.query(
      'UPDATE refresh_tokens SET used_at = $2 WHERE session_id IN (SELECT id FROM sessions WHERE user_id = $1) AND parent_id IS NULL',
      [active.id, longAgo],
    );
    const sessionRows = async () =>
      (await db.query('SELECT s.user_id FROM sessions s')).map((row: { user_id: string }) => row.user_id).sort() as string[];
    const tokenCount = async (userId: string) =>
      Number(
        (
          await db.query('SELECT count(*) AS n FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE s.user_id = $1', [userId])
        )[0].n,
      );

    // One row per batch and at most two batches per run: a backlog drains over several runs.
    const small = new SessionRetention(server.clock, server.bastion.services.audit, {
      retentionDays: server.config.sessionRetentionDays,
      idleDays: server.config.refreshIdleDays,
      batchSize: 1,
      maxBatches: 2,
    });
    expect(await db.transaction((manager) => small.prune(manager))).toBe(2 + 1);
    expect(await tokenCount(active.id)).toBe(2);

    const tasks = server.bastion.maintenanceTasks;
    const results = await Promise.all([runMaintenance(db, tasks, server.logger), runMaintenance(db, tasks, server.logger)]);
    expect(results.filter((result) => result === null)).toHaveLength(1);
    expect(results.find((result) => result !== null)).toMatchObject({ sessions: 1 });
    expect(await sessionRows()).toEqual([signedOutToday.id, active.id].sort());
    expect(await tokenCount(active.id)).toBe(2);

    // The live session goes on; its pruned token is no longer known, so it is refused without ending the session.
    expect(codesOf(await makeClient(server).request(REFRESH, { input: { refreshToken: active.refreshToken } }))).toEqual([
      'UNAUTHENTICATED',
    ]);
    const latest = secondRefresh.body.data!.refreshSession.refreshToken;
    expect(codesOf(await makeClient(server).request(REFRESH, { input: { refreshToken: latest } }))).toBeUndefined();

    const pruned = await db.query("SELECT metadata, user_agent FROM audit_events WHERE action = 'sessions_pruned' ORDER BY id");
    expect(pruned.map((row: { metadata: Record<string, unknown> }) => [row.metadata.sessions, row.metadata.spentRefreshes])).toEqual([
      [2, 1],
      [1, 0],
    ]);
    expect(pruned[0]).toMatchObject({ user_agent: 'bastion-schedule', metadata: { retentionDays: 30 } });

    // Nothing left to prune: no event.
    expect(await runMaintenance(db, tasks, server.logger)).toMatchObject({ sessions: 0 });
    expect(await db.query("SELECT count(*)::int AS n FROM audit_events WHERE action = 'sessions_pruned'")).toEqual([{ n: 2 }]);
  });
});
