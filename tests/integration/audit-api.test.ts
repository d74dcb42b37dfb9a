import { GraphQLResponse, SIGN_IN, TestAccount, codesOf, makeClient, makeUser } from '../support/factories';
import { KeyService } from '../../src/crypto/key.service';
import { runCliAgainst } from '../support/cli';
import { testKeyring } from '../support/test-keys';
import { TestServer, startTestServer } from '../support/test-server';

const EVENTS =
  `query($filter: AuditEventFilter, $first: Int, $after: String) {
  auditEvents(filter: $filter, first: $first, after: $after) { edges { cursor node { id at action outcome actorId targetType targetId ` +
  `ipAddress requestId metadata } } pageInfo { hasNextPage endCursor } }
}`;
type Events = {
  auditEvents: {
    edges: {
      cursor: string;
      node: { id: string; action: string; outcome: string; actorId: string | null; metadata: Record<string, unknown> };
    }[];
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  };
};

describe('the audit log API and CLI', () => {
  let server: TestServer;
  let admin: TestAccount;
  let user: TestAccount;

  beforeAll(async () => {
    server = await startTestServer();
    admin = await makeUser(server, { roles: ['admin'] });
    user = await makeUser(server);
    await makeClient(server).request(SIGN_IN, { input: { email: user.email, password: 'not-the-password-at-all' } });
  });
  afterAll(() => server?.close());

  const cli = (...args: string[]) => runCliAgainst(server, ['audit', 'log', ...args]);

  it('lists events newest first, filtered and paginated, for admins only', async () => {
    const all = await admin.client.request<Events>(EVENTS, { first: 100 });
    const ids = all.body.data!.auditEvents.edges.map((edge) => Number(edge.node.id));
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect(all.body.data!.auditEvents.edges.map((edge) => edge.node.action)).toEqual(
      expect.arrayContaining(['user_signed_up', 'sign_in_failed']),
    );

    const failed = await admin.client.request<Events>(EVENTS, { filter: { action: 'sign_in_failed' } });
    expect(failed.body.data!.auditEvents.edges.map((edge) => edge.node.outcome)).toEqual(['failure']);
    const mine = await admin.client.request<Events>(EVENTS, { filter: { actorId: user.id } });
    expect(mine.body.data!.auditEvents.edges.length).toBeGreaterThan(0);
    expect(mine.body.data!.auditEvents.edges.every((edge) => edge.node.actorId === user.id)).toBe(true);
    expect((await admin.client.request<Events>(EVENTS, { filter: { actorId: 'not-a-uuid' } })).body.data!.auditEvents.edges).toEqual([]);
    const future = await admin.client.request<Events>(EVENTS, { filter: { from: new Date(Date.now() + 86_400_000).toISOString() } });
    expect(future.body.data!.auditEvents.edges).toEqual([]);

    const seen: string[] = [];
    let after: string | null = null;
    do {
      const page: GraphQLResponse<Events> = await admin.client.request<Events>(EVENTS, { first: 2, after });
      seen.push(...page.body.data!.auditEvents.edges.map((edge) => edge.node.id));
      after = page.body.data!.auditEvents.pageInfo.hasNextPage ? page.body.data!.auditEvents.pageInfo.endCursor : null;
    } while (after);
    expect(seen).toEqual(ids.map(String));
    expect(codesOf(await admin.client.request(EVENTS, { after: 'garbage' }))).toEqual(['BAD_USER_INPUT']);
    expect(
      codesOf(await admin.client.request(EVENTS, { after: Buffer.from(JSON.stringify(['9999999999999999999'])).toString('base64url') })),
    ).toEqual(['BAD_USER_INPUT']);
    expect(codesOf(await user.client.request(EVENTS))).toEqual(['FORBIDDEN']);
    expect(codesOf(await user.client.request('{ verifyAuditLog { ok } }'))).toEqual(['FORBIDDEN']);
  });

  it('never holds a password, token or code', async () => {
    const rows: { row: string }[] = await server.bastion.database.dataSource.query('SELECT audit_events::text AS row FROM audit_events');
    const text = rows.map((row) => row.row).join('\n');
    for (const secret of [admin.password, user.password, 'not-the-password-at-all', admin.accessToken, user.refreshToken])
      expect(text).not.toContain(secret);
  });

  it('records key rotations and re-encryptions', async () => {
    await server.bastion.services.signingKeys.publishNext();
    await server.bastion.services.signingKeys.rotate();
    const keys = new KeyService(server.bastion.database.dataSource, testKeyring('k2'), server.clock, server.bastion.services.audit);
    await keys.reencrypt();
    const actions: { action: string; metadata: Record<string, unknown> }[] = await server.bastion.database.dataSource.query(
      "SELECT action, metadata FROM audit_events WHERE action IN ('signing_key_published', 'signing_key_rotated', 'keys_reencrypted') ORDER BY id",
    );
    expect(actions.map((row) => row.action)).toEqual(['signing_key_published', 'signing_key_rotated', 'keys_reencrypted']);
    expect(actions[2].metadata).toEqual({ rewritten: expect.any(Number), unreadable: 0 });
    expect(actions[2].metadata.rewritten).toBeGreaterThan(0); // the accounts' emails moved to k2
  });

  it('verifies the chain (API and CLI), and names the first event an edit broke', async () => {
    expect((await admin.client.request('{ verifyAuditLog { ok checked firstBrokenId } }')).body.data).toEqual({
      verifyAuditLog: { ok: true, checked: expect.any(Number), firstBrokenId: null },
    });
    const intact = await cli('verify');
    expect(intact).toEqual({ code: 0, stdout: expect.stringMatching(/^audit log intact: \d+ events checked/), stderr: '' });

    const exported = await cli('export', '--since', '2000-01-01T00:00:00Z');
    const lines = exported.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { id: string; action: string });
    expect(lines.length).toBeGreaterThan(2);
    expect(lines.map((line) => Number(line.id))).toEqual([...lines.map((line) => Number(line.id))].sort((a, b) => a - b));

    const [victim] = await server.bastion.database.dataSource.query(
      "SELECT id::text AS id FROM audit_events WHERE action = 'sign_in_failed' LIMIT 1",
    );
    await server.bastion.database.dataSource.query(`UPDATE audit_events SET metadata = metadata || '{"edited": true}' WHERE id = $1`, [
      victim.id,
    ]);
    const broken = await admin.client.request<{ verifyAuditLog: { ok: boolean; firstBrokenId: string } }>(
      '{ verifyAuditLog { ok checked firstBrokenId } }',
    );
    expect(broken.body.data!.verifyAuditLog).toMatchObject({ ok: false, firstBrokenId: victim.id });
    const cliBroken = await cli('verify');
    expect(cliBroken.code).toBe(1);
    expect(cliBroken.stdout).toContain(`BROKEN at event ${victim.id}`);
  });
});
