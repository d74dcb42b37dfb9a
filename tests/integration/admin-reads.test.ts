import { configWith } from '../../src/settings';
import { runCliAgainst } from '../support/cli';
import { GraphQLClient, REFRESH, SIGN_IN, TestAccount, codesOf, makeClient, makeUser } from '../support/factories';
import { TestServer, startTestServer } from '../support/test-server';

const USER_SESSIONS = 'query($userId: ID!) { userSessions(userId: $userId) { id current aal userAgent createdAt lastUsedAt } }';
const MY_SESSIONS = '{ mySessions { id current } }';
const REVOKE = 'mutation($userId: ID!, $sessionId: ID) { adminRevokeSessions(userId: $userId, sessionId: $sessionId) }';
const AUDIT_LOG_HEAD = '{ auditLogHead { id hash at } }';
const NEWEST_EVENT = '{ auditEvents(first: 1) { edges { node { id at action } } } }';
const RATE_LIMITS = '{ rateLimits { enabled store limits { name description limit windowSeconds setting } } }';

type SessionRow = { id: string; current: boolean; aal: number; userAgent: string | null; createdAt: string; lastUsedAt: string };
type Head = { id: string; hash: string; at: string };
type RateLimitRow = { name: string; description: string; limit: number; windowSeconds: number; setting: string };

/** The settings under test, written as an operator writes them: the test server runs with what they parse to. */
const FROM_ENV = configWith({}, { NODE_ENV: 'test', BASTION_RATE_LIMIT_IP: '900/30', BASTION_RATE_LIMIT_SIGN_IN: '7/90' });

describe('admin reads for the console: userSessions, auditLogHead, rateLimits', () => {
  let server: TestServer;
  /** Admin on a session confirmed with the second factor. */
  let admin: TestAccount;
  /** Admin role, password-only session: the role needs aal2 here (BASTION_MFA_REQUIRED_FOR=admin). */
  let adminAal1: TestAccount;
  let user: TestAccount;
  let anonymous: GraphQLClient;

  beforeAll(async () => {
    server = await startTestServer({
      config: {
        mfaRequiredFor: 'admin',
        // The admin role works from loopback only: an X-Forwarded-For from elsewhere (trusted from loopback) is outside.
        trustProxy: ['127.0.0.1', '::1'],
        adminAllowedCidrs: ['127.0.0.0/8', '::1'],
        rateLimitsEnabled: true,
        rateLimitPerIp: FROM_ENV.rateLimitPerIp,
        rateLimitSignIn: FROM_ENV.rateLimitSignIn,
      },
    });
    admin = await makeUser(server, { roles: ['admin'], mfa: true });
    adminAal1 = await makeUser(server, { roles: ['admin'] });
    user = await makeUser(server);
    anonymous = makeClient(server);
  });
  afterAll(() => server?.close());

  /** Signs in from a device of its own, a second later than the previous sign-in; `bearer` is a session it replaces. */
  const signIn = async (account: TestAccount, device: string, bearer?: string) => {
    server.clock.advance(1000);
    const headers: Record<string, string> = { 'user-agent': device, ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) };
    const answer = await makeClient(server, headers).request<{ signIn: { accessToken: string; refreshToken: string } }>(SIGN_IN, {
      input: { email: account.email, password: account.password },
    });
    expect(codesOf(answer)).toBeUndefined();
    return answer.body.data!.signIn;
  };
  const sessionsOf = async (userId: string): Promise<SessionRow[]> => {
    const answer = await admin.client.request<{ userSessions: SessionRow[] }>(USER_SESSIONS, { userId });
    expect(codesOf(answer)).toBeUndefined();
    return answer.body.data!.userSessions;
  };

  it("userSessions: an aal2 admin sees a user's live sessions, most recently used first; one ended by adminRevokeSessions drops out", async () => {
    const target = await makeUser(server);
    // The first sign-in comes with the sign-up's token, so it replaces that session: two devices, two sessions.
    const phone = await signIn(target, 'phone', target.accessToken);
    const tablet = await signIn(target, 'tablet');
    let sessions = await sessionsOf(target.id);
    expect(sessions.map((session) => [session.userAgent, session.current, session.aal])).toEqual([
      ['tablet', false, 1],
      ['phone', false, 1],
    ]);
    // The same sessions the user sees (where only the asking one is current).
    const own = await makeClient(server, { authorization: `Bearer ${tablet.accessToken}` }).request<{
      mySessions: { id: string; current: boolean }[];
    }>(MY_SESSIONS);
    expect(own.body.data!.mySessions).toEqual(sessions.map((session) => ({ id: session.id, current: session.userAgent === 'tablet' })));

    // Used last, listed first: the phone refreshes its tokens.
    server.clock.advance(60_000);
    expect(codesOf(await makeClient(server).request(REFRESH, { input: { refreshToken: phone.refreshToken } }))).toBeUndefined();
    sessions = await sessionsOf(target.id);
    expect(sessions.map((session) => session.userAgent)).toEqual(['phone', 'tablet']);
    expect(Date.parse(sessions[0].lastUsedAt)).toBeGreaterThan(Date.parse(sessions[1].lastUsedAt));

    const [phoneSession, tabletSession] = sessions;
    expect((await admin.client.request(REVOKE, { userId: target.id, sessionId: phoneSession.id })).body.data).toEqual({
      adminRevokeSessions: 1,
    });
    expect(await sessionsOf(target.id)).toEqual([tabletSession]);

    // The admin's own list marks the session asking as current.
    expect((await sessionsOf(admin.id)).filter((session) => session.current)).toHaveLength(1);
  });

  it('userSessions: NOT_FOUND for an unknown user, as adminRevokeSessions answers', async () => {
    for (const userId of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
      const answer = await admin.client.request(USER_SESSIONS, { userId });
      expect(codesOf(answer)).toEqual(['NOT_FOUND']);
      expect(codesOf(await admin.client.request(REVOKE, { userId }))).toEqual(['NOT_FOUND']);
    }
  });

  it('auditLogHead: the newest event, as `bastion audit log head` prints it; it moves with the next event', async () => {
    const newest = async () => {
      const [row] = await server.bastion.database.dataSource.query<{ id: string; hash: string; at: Date }[]>(
        'SELECT id::text AS id, hash, at FROM audit_events ORDER BY audit_events.id DESC LIMIT 1',
      );
      return { id: row.id, hash: row.hash, at: row.at.toISOString() };
    };
    const head = async () => {
      const answer = await admin.client.request<{ auditLogHead: Head | null }>(AUDIT_LOG_HEAD);
      expect(codesOf(answer)).toBeUndefined();
      return answer.body.data!.auditLogHead;
    };

    const before = await head();
    expect(before).toEqual(await newest());
    expect(before!.hash).toMatch(/^[0-9a-f]{64}$/);
    const listed = await admin.client.request<{ auditEvents: { edges: { node: { id: string; at: string } }[] } }>(NEWEST_EVENT);
    expect(listed.body.data!.auditEvents.edges[0].node).toMatchObject({ id: before!.id, at: before!.at });
    const cli = await runCliAgainst(server, ['audit', 'log', 'head']);
    expect({ code: cli.code, printed: cli.stdout.trim() }).toEqual({ code: 0, printed: `${before!.id}:${before!.hash} ${before!.at}` });

    // A new event (a failed sign-in) is the new head.
    server.clock.advance(1000);
    await anonymous.request(SIGN_IN, { input: { email: user.email, password: 'not-the-password-at-all' } });
    const after = await head();
    expect(after).toEqual(await newest());
    expect(BigInt(after!.id)).toBeGreaterThan(BigInt(before!.id));
    expect(after!.hash).not.toBe(before!.hash);
    expect(after!.at).toBe(server.clock.now().toISOString());
  });

  it('rateLimits: every bucket with the limits this server runs with, BASTION_RATE_LIMIT_* values included', async () => {
    const answer = await admin.client.request<{ rateLimits: { enabled: boolean; store: string; limits: RateLimitRow[] } }>(RATE_LIMITS);
    expect(codesOf(answer)).toBeUndefined();
    const { enabled, store, limits } = answer.body.data!.rateLimits;
    expect({ enabled, store }).toEqual({ enabled: true, store: 'postgres' });
    expect(limits.map((limit) => limit.name)).toEqual(['per_ip', 'per_user', 'sign_in', 'sign_up', 'verify_mfa', 'password_reset']);
    const byName = new Map(limits.map((limit) => [limit.name, limit]));
    // Set through the environment's syntax (points/seconds).
    expect(byName.get('per_ip')).toMatchObject({ limit: 900, windowSeconds: 30, setting: 'BASTION_RATE_LIMIT_IP' });
    expect(byName.get('sign_in')).toMatchObject({ limit: 7, windowSeconds: 90, setting: 'BASTION_RATE_LIMIT_SIGN_IN' });
    // Left at their defaults.
    expect(byName.get('per_user')).toMatchObject({ limit: 1200, windowSeconds: 60, setting: 'BASTION_RATE_LIMIT_USER' });
    expect(byName.get('password_reset')).toMatchObject({ limit: 5, windowSeconds: 3600, setting: 'BASTION_RATE_LIMIT_PASSWORD_RESET' });
    expect(byName.get('sign_in')!.description).toMatch(/^signIn attempts per client address/);
    for (const limit of limits) expect(limit.description).not.toContain('points/seconds');
  });

  it('admin on aal2 only: MFA_REQUIRED on aal1, FORBIDDEN for a user or outside ADMIN_ALLOWED_CIDRS, UNAUTHENTICATED anonymous', async () => {
    const adminOutside = makeClient(server, { authorization: `Bearer ${admin.accessToken}`, 'x-forwarded-for': '198.51.100.1' });
    const queries: [string, string, Record<string, unknown>?][] = [
      ['userSessions', USER_SESSIONS, { userId: user.id }],
      ['auditLogHead', AUDIT_LOG_HEAD],
      ['rateLimits', RATE_LIMITS],
    ];
    for (const [field, query, variables] of queries) {
      for (const [client, code] of [
        [adminAal1.client, 'MFA_REQUIRED'],
        [user.client, 'FORBIDDEN'],
        [adminOutside, 'FORBIDDEN'],
        [anonymous, 'UNAUTHENTICATED'],
      ] as const) {
        const answer = await client.request(query, variables);
        expect({ field, codes: codesOf(answer) }).toEqual({ field, codes: [code] });
        expect(answer.body.data?.[field] ?? null).toBeNull();
      }
    }
    // A user's own sessions stay theirs: mySessions still works, and userSessions of themselves is refused all the same.
    expect(codesOf(await user.client.request(MY_SESSIONS))).toBeUndefined();
    expect(codesOf(await user.client.request(USER_SESSIONS, { userId: user.id }))).toEqual(['FORBIDDEN']);
  });

  it('auditLogHead: null for an empty log', async () => {
    // As a fresh database's log is before its first event.
    await server.bastion.database.dataSource.query('DELETE FROM audit_events');
    expect((await admin.client.request(AUDIT_LOG_HEAD)).body).toEqual({ data: { auditLogHead: null } });
  });
});
