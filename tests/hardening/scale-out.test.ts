import { BackupSchedule } from '../../src/backup/backup-schedule';
import { configWith } from '../../src/settings';
import { createLogger } from '../../src/logging';
import { RunningBastion, startBastion } from '../../src/main';
import { runMaintenance } from '../../src/maintenance';
import { GraphQLClient, GraphQLResponse, SIGN_IN, codesOf, makeClient, makeUser } from '../support/factories';
import { LogCollector } from '../support/log-collector';
import { TEST_KEY_SETTINGS } from '../support/test-keys';
import { TestServer, startTestServer } from '../support/test-server';

/** Both instances believe X-Forwarded-For from loopback, so a test can speak from any address. */
const TRUSTED_LOOPBACK = { trustProxy: ['127.0.0.1', '::1'] };
describe('scale-out: two instances on one database behind a round-robin client', () => {
  let a: TestServer;
  let b: RunningBastion;
  const instances = () => [a.url, b.url];

  async function startPair(config: Parameters<typeof configWith>[0]): Promise<[TestServer, RunningBastion]> {
    const first = await startTestServer({ config });
    const second = await startBastion(
      configWith({
        databaseUrl: first.database.url,
        port: 0,
        host: '127.0.0.1',
        migrateOnStart: false,
        databasePoolSize: 4,
        backupDir: first.config.backupDir,
        backupSchedule: undefined,
        backupVerifySchedule: undefined,
        ...TEST_KEY_SETTINGS,
        ...config,
      }),
      { logger: createLogger({ level: 'silent', pretty: false, destination: new LogCollector() }), clock: first.clock },
    );
    return [first, second];
  }

  beforeAll(async () => {
    [a, b] = await startPair(TRUSTED_LOOPBACK);
  });
  afterAll(async () => {
    await b?.stop();
    await a?.close();
  });

  /** Alternates between the instances, request by request; `next` says which one answers next. */
  type RoundRobin = GraphQLClient & { next: () => string };
  function roundRobin(headers: Record<string, string> = {}, urls: string[] = instances()): RoundRobin {
    let turn = 0;
    return {
      next: () => urls[turn % urls.length],
      request: (query, variables, extra) => makeClient({ url: urls[turn++ % urls.length] }, headers).request(query, variables, extra),
    };
  }

  /**
   * Makes the change through `changer`'s next instance, then sends `probe` through `prober` so that
   * the very next probe lands on the other instance: it must show the change. Reports how long
   * after the change's answer that request was served.
   */
  async function inForceAfter(
    label: string,
    changer: RoundRobin,
    change: () => Promise<void>,
    prober: RoundRobin,
    probe: () => Promise<GraphQLResponse>,
    inForce: (response: GraphQLResponse) => boolean,
  ): Promise<void> {
    // Line the prober up on the instance after the change's (a probe before the change shows the old state).
    if (prober !== changer && prober.next() === changer.next()) await probe();
    const changedOn = changer.next();
    await change();
    const probedOn = prober.next();
    const started = Date.now();
    const response = await probe();
    process.stdout.write(
      `scale-out: ${label} made on one instance; the next request, on the other, answered ${response.status} ${Date.now() - started} ms later\n`,
    );
    expect(probedOn).not.toBe(changedOn);
    expect({ label, inForce: inForce(response), body: response.body }).toEqual({ label, inForce: true, body: response.body });
  }

  it('a sign-out through one instance ends the session on both', async () => {
    const account = await makeUser(a);
    const signIn = await makeClient(a).request<{ signIn: { accessToken: string } }>(SIGN_IN, {
      input: { email: account.email, password: account.password },
    });
    const token = signIn.body.data!.signIn.accessToken;
    const client = roundRobin({ authorization: `Bearer ${token}` });
    for (let request = 0; request < 4; request += 1)
      expect((await client.request('{ me { id } }')).body.data).toEqual({ me: { id: account.id } });
    await inForceAfter(
      'signOut',
      client,
      async () => {
        expect((await client.request('mutation { signOut }')).status).toBe(200);
      },
      client,
      () => client.request('{ me { id } }'),
      (response) => response.status === 401 && codesOf(response)?.[0] === 'UNAUTHENTICATED',
    );
  });

  it('a grant change through one instance is in force on both', async () => {
    const admin = await makeUser(a, { roles: ['admin'], mfa: true });
    const author = await makeUser(a);
    const reader = await makeUser(a);
    const draft = await author.client.request<{ createPost: { id: string } }>(
      'mutation { createPost(input: { title: "draft", body: "not yet" }) { id } }',
    );
    const query = `{ post(id: "${draft.body.data!.createPost.id}") { title } }`;
    const readerClient = roundRobin({ authorization: `Bearer ${reader.accessToken}` });
    const adminClient = roundRobin({ authorization: `Bearer ${admin.accessToken}` });
    for (let request = 0; request < 2; request += 1) expect(codesOf(await readerClient.request(query))).toEqual(['NOT_FOUND']);
    await adminClient.request('mutation { createRole(input: { name: "drafts" }) { name } }');
    await adminClient.request('mutation { grantPermission(input: { role: "drafts", model: "Post", action: READ, scope: ALL }) { id } }');
    await inForceAfter(
      'grant + assignRole',
      adminClient,
      async () => {
        const assigned = await adminClient.request(`mutation { assignRole(input: { userId: "${reader.id}", role: "drafts" }) { id } }`);
        expect(assigned.body.errors).toBeUndefined();
      },
      readerClient,
      () => readerClient.request(query),
      (response) => (response.body.data as { post?: { title: string } } | null)?.post?.title === 'draft',
    );
    // Both instances serve it now, one request each.
    for (let request = 0; request < 2; request += 1)
      expect((await readerClient.request(query)).body.data).toEqual({ post: { title: 'draft' } });
  });

  it('an IP block through one instance is in force on both', async () => {
    const admin = await makeUser(a, { roles: ['admin'], mfa: true });
    const adminClient = roundRobin({ authorization: `Bearer ${admin.accessToken}` });
    const attacker = roundRobin({ 'x-forwarded-for': '203.0.113.77' });
    for (let request = 0; request < 2; request += 1) expect((await attacker.request('{ serverInfo { name } }')).status).toBe(200);
    await inForceAfter(
      'addFirewallRule DENY',
      adminClient,
      async () => {
        const added = await adminClient.request('mutation { addFirewallRule(input: { cidr: "203.0.113.0/24", action: DENY }) { id } }');
        expect(added.body.errors).toBeUndefined();
      },
      attacker,
      () => attacker.request('{ serverInfo { name } }'),
      (response) => response.status === 403,
    );
    for (let request = 0; request < 2; request += 1)
      expect(codesOf(await attacker.request('{ serverInfo { name } }'))).toEqual(['IP_BLOCKED']);
  });

  it("counts a client's requests to both instances against one rate limit", async () => {
    const [first, second] = await startPair({
      ...TRUSTED_LOOPBACK,
      rateLimitsEnabled: true,
      rateLimitPerIp: { points: 10, seconds: 60 },
      rateLimitStoreWaitMs: 30_000,
    });
    try {
      const client = roundRobin({ 'x-forwarded-for': '198.18.7.7' }, [first.url, second.url]);
      const statuses: number[] = [];
      for (let request = 0; request < 30; request += 1) statuses.push((await client.request('{ serverInfo { name } }')).status);
      const allowed = statuses.filter((status) => status === 200).length;
      process.stdout.write(
        `scale-out: limit 10 per address, 30 round-robin requests: ${allowed} allowed, ${statuses.length - allowed} refused (429)\n`,
      );
      // One instance alone would allow 10 and the pair 20 without sharing; shared, exactly the first 10.
      expect(statuses).toEqual([...Array(10).fill(200), ...Array(20).fill(429)]);
    } finally {
      await second.stop();
      await first.close();
    }
  });

  it("runs each scheduled job once when both instances' timers fire together", async () => {
    const instances = [a.bastion, b];
    const services = instances.map((each) => each.services);
    const maintenance = await Promise.all(
      instances.map((each) => runMaintenance(each.services.dataSource, each.maintenanceTasks, a.logger)),
    );
    expect(maintenance.filter((result) => result !== null)).toHaveLength(1);

    const selfAudits = await Promise.all(services.map((each) => each.selfAudit.runScheduled()));
    expect(selfAudits.filter(Boolean)).toHaveLength(1);
    const [{ runs }] = await a.bastion.database.dataSource.query(
      "SELECT count(*)::int AS runs FROM audit_events WHERE action = 'security_audit_run' AND user_agent = 'bastion-schedule'",
    );
    expect(runs).toBe(1);

    const schedules = services.map((each) => new BackupSchedule(each.backups, a.clock, a.logger));
    expect((await Promise.all(schedules.map((schedule) => schedule.backupNow()))).filter(Boolean)).toHaveLength(1);
    expect((await Promise.all(schedules.map((schedule) => schedule.verifyNow()))).filter(Boolean)).toHaveLength(1);
    const backups = await a.bastion.database.dataSource.query("SELECT status FROM backups WHERE trigger = 'schedule'");
    expect(backups).toEqual([{ status: 'verified' }]);
  });
});
