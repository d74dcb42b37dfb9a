import { GraphQLClient, TestAccount, codesOf, makeClient, makeUser } from '../support/factories';
import { eventually } from '../support/eventually';
import { runCliAgainst } from '../support/cli';
import { TestServer, startTestServer } from '../support/test-server';

const ADD = 'mutation($input: AddFirewallRuleInput!) { addFirewallRule(input: $input) { id cidr action note expiresAt createdBy } }';
const REMOVE = 'mutation($id: ID!, $confirm: Boolean) { removeFirewallRule(id: $id, confirmLockout: $confirm) }';
const SERVER_INFO = '{ serverInfo { name } }';

/** Behind a "trusted proxy" (loopback), so each client can speak from an address of its own. */
const TRUSTED_LOOPBACK = { trustProxy: ['127.0.0.1', '::1'] };

describe('firewall: IP rules', () => {
  let server: TestServer;
  let admin: TestAccount;
  const ADMIN_IP = '192.0.2.10';
  /** The admin's client, calling from ADMIN_IP. */
  let adminClient: GraphQLClient;
  const from = (address: string, headers: Record<string, string> = {}) => makeClient(server, { 'x-forwarded-for': address, ...headers });

  beforeAll(async () => {
    server = await startTestServer({ config: TRUSTED_LOOPBACK });
    admin = await makeUser(server, { roles: ['admin'] });
    adminClient = from(ADMIN_IP, { authorization: `Bearer ${admin.accessToken}` });
  });
  afterAll(() => server?.close());

  async function add(input: Record<string, unknown>): Promise<{ id: string; cidr: string }> {
    const response = await adminClient.request<{ addFirewallRule: { id: string; cidr: string } }>(ADD, { input });
    if (!response.body.data) throw new Error(JSON.stringify(response.body.errors));
    return response.body.data.addFirewallRule;
  }

  it('blocks a denied network before any GraphQL work: 403, IP_BLOCKED; health probes still answer', async () => {
    const rule = await add({ cidr: '198.51.100.77/24', action: 'DENY', note: 'abuse' });
    expect(rule.cidr).toBe('198.51.100.0/24');
    const blocked = await from('198.51.100.5').request(SERVER_INFO);
    expect(blocked.status).toBe(403);
    expect(blocked.body).toEqual({
      errors: [{ message: 'Requests from your network are not allowed.', extensions: { code: 'IP_BLOCKED' } }],
    });
    expect((await from('198.51.101.5').request(SERVER_INFO)).status).toBe(200);
    const health = await fetch(`${server.origin}/healthz`, { headers: { 'x-forwarded-for': '198.51.100.5' } });
    expect(health.status).toBe(200);
    expect(server.logs.find((line) => line.msg === 'firewall: request blocked')).toMatchObject({
      kind: 'ip_blocked',
      subject: '198.51.100.5',
    });
    // The window's blocks become one aggregated audit row (the timer does this every minute).
    await from('198.51.100.5').request(SERVER_INFO);
    await server.bastion.services.hits.flush();
    const [audited] = await server.bastion.database.dataSource.query(
      "SELECT outcome, metadata FROM audit_events WHERE action = 'ip_blocked' ORDER BY id DESC LIMIT 1",
    );
    expect(audited).toMatchObject({ outcome: 'denied', metadata: { hits: 2, subjects: 1, top: [{ subject: '198.51.100.5', hits: 2 }] } });
    await adminClient.request(REMOVE, { id: rule.id });
    expect((await from('198.51.100.5').request(SERVER_INFO)).status).toBe(200);
  });

  it('lets the most specific rule win, for IPv4 and IPv6', async () => {
    const wide = await add({ cidr: '10.20.0.0/16', action: 'DENY' });
    const narrow = await add({ cidr: '10.20.30.0/24', action: 'ALLOW' });
    const v6 = await add({ cidr: '2001:db8:bad::/48', action: 'DENY' });
    try {
      expect((await from('10.20.1.1').request(SERVER_INFO)).status).toBe(403);
      expect((await from('10.20.30.1').request(SERVER_INFO)).status).toBe(200);
      expect((await from('2001:db8:bad::1').request(SERVER_INFO)).status).toBe(403);
      expect((await from('2001:db8:600d::1').request(SERVER_INFO)).status).toBe(200);
    } finally {
      for (const rule of [wide, narrow, v6]) await adminClient.request(REMOVE, { id: rule.id });
    }
  });

  it('stops applying a rule when it expires', async () => {
    const rule = await add({
      cidr: '203.0.113.0/24',
      action: 'DENY',
      expiresAt: new Date(server.clock.now().getTime() + 60_000).toISOString(),
    });
    expect((await from('203.0.113.9').request(SERVER_INFO)).status).toBe(403);
    server.clock.advance(61_000);
    expect((await from('203.0.113.9').request(SERVER_INFO)).status).toBe(200);
    await adminClient.request(REMOVE, { id: rule.id });
  });

  it('refuses a rule that would lock the calling admin out, unless confirmed; the CLI always gets back in', async () => {
    const refused = await adminClient.request(ADD, { input: { cidr: '192.0.2.0/24', action: 'DENY' } });
    expect(codesOf(refused)).toEqual(['BAD_USER_INPUT']);
    expect(refused.body.errors![0].message).toContain(ADMIN_IP);
    const confirmed = await adminClient.request<{ addFirewallRule: { id: string } }>(ADD, {
      input: { cidr: '192.0.2.0/24', action: 'DENY', confirmLockout: true },
    });
    expect(confirmed.body.data?.addFirewallRule.id).toEqual(expect.any(String));
    expect((await adminClient.request('{ firewallRules { id } }')).status).toBe(403);

    const cli = (...args: string[]) => runCliAgainst(server, ['firewall', ...args]);
    const listed = await cli('list');
    expect(listed.stdout).toContain('DENY   192.0.2.0/24');
    const removed = await cli('remove', confirmed.body.data!.addFirewallRule.id);
    expect(removed.stderr).toBe('');
    // The CLI's NOTIFY reaches this server (asynchronously: polled, bounded, reported).
    const delay = await eventually(async () => (await adminClient.request('{ firewallRules { id } }')).status === 200, 5_000);
    process.stdout.write(`firewall: CLI removal in force on the server after ${delay} ms\n`);
    await cli('allow', '2001:db8:1::/48', '--note', 'office');
    const rules = await adminClient.request<{ firewallRules: { cidr: string; action: string; note: string; createdBy: string | null }[] }>(
      '{ firewallRules { cidr action note createdBy } }',
    );
    expect(rules.body.data!.firewallRules).toContainEqual({ cidr: '2001:db8:1::/48', action: 'ALLOW', note: 'office', createdBy: null });
  });

  it('validates rules with clear errors, and audits every change', async () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [{ cidr: 'not-a-network', action: 'DENY' }, 'BAD_USER_INPUT', 'cidr'],
      [{ cidr: '10.0.0.0/33', action: 'DENY' }, 'BAD_USER_INPUT', 'cidr'],
      [
        { cidr: '10.9.0.0/16', action: 'DENY', expiresAt: new Date(server.clock.now().getTime() - 1000).toISOString() },
        'BAD_USER_INPUT',
        'expiresAt',
      ],
    ];
    for (const [input, code, field] of cases) {
      const response = await adminClient.request(ADD, { input });
      expect({ input, codes: codesOf(response), field: response.body.errors?.[0].extensions?.field }).toEqual({
        input,
        codes: [code],
        field,
      });
    }
    const rule = await add({ cidr: '100.64.0.0/10', action: 'DENY' });
    expect(codesOf(await adminClient.request(ADD, { input: { cidr: '100.64.1.1/10', action: 'ALLOW' } }))).toEqual(['CONFLICT']);
    expect(codesOf(await adminClient.request(REMOVE, { id: '00000000-0000-4000-8000-000000000000' }))).toEqual(['NOT_FOUND']);
    await adminClient.request(REMOVE, { id: rule.id });
    const actions: { action: string }[] = await server.bastion.database.dataSource.query(
      "SELECT action FROM audit_events WHERE action LIKE 'firewall_%'",
    );
    expect(actions.map((row) => row.action)).toEqual(expect.arrayContaining(['firewall_rule_added', 'firewall_rule_removed']));
  });

  it('is for admins only', async () => {
    const user = await makeUser(server);
    expect(codesOf(await user.client.request('{ firewallRules { id } }'))).toEqual(['FORBIDDEN']);
    expect(codesOf(await makeClient(server).request(ADD, { input: { cidr: '10.0.0.0/8', action: 'DENY' } }))).toEqual(['UNAUTHENTICATED']);
  });
});

describe('firewall: FIREWALL_DEFAULT=deny, ADMIN_ALLOWED_CIDRS and untrusted X-Forwarded-For', () => {
  it('denies unlisted networks by default, and ignores X-Forwarded-For from anyone but a trusted proxy', async () => {
    const server = await startTestServer({ config: { firewallDefault: 'deny' } });
    try {
      // No trusted proxy: the address is the socket's (loopback), whatever the header claims.
      const spoofing = makeClient(server, { 'x-forwarded-for': '203.0.113.1' });
      expect((await spoofing.request(SERVER_INFO)).status).toBe(403);
      await server.bastion.services.firewall.add(
        { cidr: '127.0.0.0/8', action: 'allow' as never },
        { actorId: null, ipAddress: null, userAgent: null, requestId: null },
      );
      await server.bastion.services.firewall.add(
        { cidr: '::1', action: 'allow' as never },
        { actorId: null, ipAddress: null, userAgent: null, requestId: null },
      );
      expect((await spoofing.request(SERVER_INFO)).status).toBe(200);
      await server.bastion.services.firewall.add(
        { cidr: '203.0.113.1', action: 'deny' as never },
        { actorId: null, ipAddress: null, userAgent: null, requestId: null },
      );
      expect((await spoofing.request(SERVER_INFO)).status).toBe(200); // the spoofed address is not what is judged
    } finally {
      await server.close();
    }
  });

  it('lets the admin role act only from ADMIN_ALLOWED_CIDRS; elsewhere an admin is a plain user', async () => {
    const server = await startTestServer({ config: { ...TRUSTED_LOOPBACK, adminAllowedCidrs: ['10.0.0.0/8'] } });
    try {
      const admin = await makeUser(server, { roles: ['admin'] });
      const inside = makeClient(server, { authorization: `Bearer ${admin.accessToken}`, 'x-forwarded-for': '10.1.2.3' });
      const outside = makeClient(server, { authorization: `Bearer ${admin.accessToken}`, 'x-forwarded-for': '198.51.100.1' });
      expect(codesOf(await inside.request('{ roles { name } }'))).toBeUndefined();
      expect(codesOf(await outside.request('{ roles { name } }'))).toEqual(['FORBIDDEN']);
      expect((await outside.request<{ me: { id: string } }>('{ me { id } }')).body.data?.me.id).toBe(admin.id);
    } finally {
      await server.close();
    }
  });
});
