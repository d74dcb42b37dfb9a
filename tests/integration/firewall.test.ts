import { CLI_ACTOR } from '../../src/audit/actor';
import { FirewallAction } from '../../src/firewall/firewall-rule.entity';
import { runMaintenance } from '../../src/maintenance';
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

describe('firewall: no self-lockout later, when an expiring ALLOW runs out (FIREWALL_DEFAULT=deny)', () => {
  const ADMIN_IP = '192.0.2.10';
  const HOUR = 60 * 60 * 1000;
  let server: TestServer;
  let adminClient: GraphQLClient;

  beforeAll(async () => {
    server = await startTestServer({ config: { ...TRUSTED_LOOPBACK, firewallDefault: 'deny' } });
    // The test's own sign-ups come from loopback (no X-Forwarded-For).
    for (const cidr of ['127.0.0.0/8', '::1'])
      await server.bastion.services.firewall.add({ cidr, action: FirewallAction.ALLOW }, CLI_ACTOR);
    const admin = await makeUser(server, { roles: ['admin'] });
    adminClient = makeClient(server, { 'x-forwarded-for': ADMIN_IP, authorization: `Bearer ${admin.accessToken}` });
  });
  afterAll(() => server?.close());

  const inAnHour = () => new Date(server.clock.now().getTime() + HOUR);

  it('refuses an expiring ALLOW that would be all that lets the admin in, and accepts a permanent one', async () => {
    // The admin is in today only through a temporary rule (say, the CLI let them in for an hour).
    const temporary = await server.bastion.services.firewall.add(
      { cidr: `${ADMIN_IP}/32`, action: FirewallAction.ALLOW, expiresAt: inAnHour() },
      CLI_ACTOR,
    );
    const expiring = { cidr: '192.0.2.0/24', action: 'ALLOW', expiresAt: new Date(server.clock.now().getTime() + 2 * HOUR).toISOString() };
    const refused = await adminClient.request(ADD, { input: expiring });
    expect(codesOf(refused)).toEqual(['BAD_USER_INPUT']);
    expect(refused.body.errors![0].extensions?.field).toBe('confirmLockout');
    expect(refused.body.errors![0].message).toContain(ADMIN_IP);
    expect(refused.body.errors![0].message).toContain(expiring.expiresAt);
    // A rule that does not decide for the admin's address is none of the guard's business.
    expect(codesOf(await adminClient.request(ADD, { input: { ...expiring, cidr: '198.51.100.0/24' } }))).toBeUndefined();
    // Confirmed, it is accepted; so is a permanent ALLOW, which needs no confirmation.
    const confirmed = await adminClient.request<{ addFirewallRule: { id: string } }>(ADD, {
      input: { ...expiring, cidr: '192.0.2.0/25', confirmLockout: true },
    });
    expect(codesOf(confirmed)).toBeUndefined();
    const permanent = await adminClient.request<{ addFirewallRule: { id: string } }>(ADD, {
      input: { cidr: '192.0.2.0/24', action: 'ALLOW' },
    });
    expect(codesOf(permanent)).toBeUndefined();

    // Removing the last permanent ALLOW while only expiring ones let the admin in: refused, unless confirmed.
    const removal = await adminClient.request(REMOVE, { id: permanent.body.data!.addFirewallRule.id });
    expect(codesOf(removal)).toEqual(['BAD_USER_INPUT']);
    expect(removal.body.errors![0].message).toContain(ADMIN_IP);
    // Removing an expiring one while the permanent one stays is fine.
    expect(codesOf(await adminClient.request(REMOVE, { id: confirmed.body.data!.addFirewallRule.id }))).toBeUndefined();
    expect(codesOf(await adminClient.request(REMOVE, { id: temporary.id }))).toBeUndefined();
    expect(codesOf(await adminClient.request(REMOVE, { id: permanent.body.data!.addFirewallRule.id, confirm: true }))).toBeUndefined();
  });
});

describe('firewall: expired rules pruned by the maintenance job', () => {
  it('removes rules expired for more than a day, keeps the others, and audits the pruning as one event', async () => {
    const server = await startTestServer();
    try {
      const firewall = server.bastion.services.firewall;
      const now = server.clock.now().getTime();
      const minute = 60_000;
      const day = 24 * 60 * minute;
      const rule = (cidr: string, expiresAt: number | null) =>
        firewall.add({ cidr, action: FirewallAction.DENY, expiresAt: expiresAt === null ? null : new Date(expiresAt) }, CLI_ACTOR);
      const old1 = await rule('203.0.113.1', now + minute);
      const old2 = await rule('203.0.113.2', now + 2 * minute);
      const recent = await rule('203.0.113.3', now + day); // expired two minutes before the run: still listed
      const live = await rule('203.0.113.4', now + 2 * day);
      const permanent = await rule('203.0.113.5', null);
      server.clock.advance(day + 2 * minute);

      const db = server.bastion.database.dataSource;
      const result = await runMaintenance(db, server.bastion.maintenanceTasks, server.logger);
      expect(result).toMatchObject({ firewallRules: 2 });
      expect((await firewall.list()).map((kept) => kept.id).sort()).toEqual([recent.id, live.id, permanent.id].sort());

      const events: { outcome: string; target_type: string; metadata: Record<string, unknown> }[] = await db.query(
        "SELECT outcome, target_type, metadata FROM audit_events WHERE action = 'firewall_rules_pruned'",
      );
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ outcome: 'success', target_type: 'firewall_rule', metadata: { rules: 2 } });
      expect((events[0].metadata.removed as { id: string; cidr: string }[]).map((removed) => removed.id).sort()).toEqual(
        [old1.id, old2.id].sort(),
      );
      // Nothing left to prune: no work, no event.
      expect(await runMaintenance(db, server.bastion.maintenanceTasks, server.logger)).toMatchObject({ firewallRules: 0 });
      expect(await db.query("SELECT 1 FROM audit_events WHERE action = 'firewall_rules_pruned'")).toHaveLength(1);
    } finally {
      await server.close();
    }
  });
});
