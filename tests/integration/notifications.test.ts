import { appTables } from '../support/test-tables';
import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createDataSource } from '../../src/db/data-source';
import { DatabaseUnavailableError } from '../../src/db/database';
import { Notifications, NotificationsOptions, notify, reconnectBackoffMs } from '../../src/db/notifications';
import { createLogger } from '../../src/logging';
import { eventually } from '../support/eventually';
import { withFrozenBackends } from '../support/frozen-backends';
import { LogCollector } from '../support/log-collector';
import { TestDatabase, createTestDatabase, testDatabaseServer, withAdminClient } from '../support/test-database';

describe('cross-instance notifications on real PostgreSQL', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  let logs: LogCollector;
  const started: Notifications[] = [];

  /** An instance of the listener, as one server process would hold it; stopped after each test. */
  const instance = (options: Partial<NotificationsOptions> = {}) => {
    const notifications = new Notifications({
      url: listenerUrl(),
      logger: createLogger({ level: 'info', pretty: false, destination: logs }),
      ...options,
    });
    started.push(notifications);
    return notifications;
  };
  const uniqueApplicationName = () => `bastion-notifications-test-${randomBytes(4).toString('hex')}`;
  const listenerBackends = (applicationName: string) =>
    withAdminClient(testDatabaseServer().adminUrl, async (client) => {
      const { rows } = await client.query<{ count: number }>(
        'SELECT count(*)::int AS count FROM pg_stat_activity WHERE application_name = $1 AND datname = $2',
        [applicationName, database.name],
      );
      return rows[0].count;
    });
  const terminateListener = (applicationName: string) =>
    withAdminClient(testDatabaseServer().adminUrl, (client) =>
      client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = $2', [
        applicationName,
        database.name,
      ]),
    );
  const setConnectionsAllowed = (allowed: boolean) =>
    withAdminClient(testDatabaseServer().adminUrl, (client) =>
      client.query(`ALTER DATABASE ${client.escapeIdentifier(database.name)} WITH ALLOW_CONNECTIONS ${allowed}`),
    );
  /**
   * The listener's URL, always with a password, so "the logs never hold it" can fail: a server with
   * trust auth (a password-less TEST_DATABASE_URL) ignores the one added here.
   */
  const listenerUrl = () => {
    const url = new URL(database.url);
    if (url.password === '') url.password = 'listener-secret-7f3a91';
    return url.toString();
  };
  const password = () => decodeURIComponent(new URL(listenerUrl()).password);

  beforeAll(async () => {
    database = await createTestDatabase();
    dataSource = createDataSource({ url: database.url, poolSize: 4, ...appTables() });
    await dataSource.initialize();
  });
  afterAll(async () => {
    await dataSource.destroy();
    await database.drop();
  });
  beforeEach(() => {
    logs = new LogCollector();
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((notifications) => notifications.stop()));
  });

  it('delivers one notify to every instance', async () => {
    const receivedByFirst: string[] = [];
    const receivedBySecond: string[] = [];
    const first = instance();
    const second = instance();
    first.subscribe('session_revoked', (payload) => receivedByFirst.push(payload));
    second.subscribe('session_revoked', (payload) => receivedBySecond.push(payload));
    await Promise.all([first.start(), second.start()]);

    await notify(dataSource, 'session_revoked', 'session:42');
    const deliveredAfterMs = await eventually(() => receivedByFirst.length > 0 && receivedBySecond.length > 0);
    expect(receivedByFirst).toEqual(['session:42']);
    expect(receivedBySecond).toEqual(['session:42']);
    expect(deliveredAfterMs).toBeLessThan(10_000);
  });

  it('delivers a notify sent in a transaction only when it commits, and never when it rolls back', async () => {
    const received: string[] = [];
    const listener = instance();
    listener.subscribe('grants_changed', (payload) => received.push(payload));
    await listener.start();

    await expect(
      dataSource.transaction(async (manager) => {
        await notify(manager, 'grants_changed', 'rolled back');
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');

    await dataSource.transaction(async (manager) => {
      await notify(manager, 'grants_changed', 'committed');
      // A later notify from outside the transaction arrives first: the one inside waits for commit.
      await notify(dataSource, 'grants_changed', 'outside');
      await eventually(() => received.includes('outside'));
      expect(received).toEqual(['outside']);
    });
    await eventually(() => received.includes('committed'));
    // Delivery follows commit order, so the rolled-back one would have shown up before these.
    expect(received).toEqual(['outside', 'committed']);
  });

  describe('sync: every notify committed before the call is heard when it resolves', () => {
    const ROUNDS = 300;

    it('holds for each of many notifies, in and out of transactions, checked the moment sync resolves', async () => {
      const received = new Set<string>();
      const listener = instance();
      listener.subscribe('sessions_sync', (payload) => received.add(payload));
      await listener.start();
      let heardBeforeSync = 0;
      for (let round = 0; round < ROUNDS; round += 1) {
        if (round % 2 === 0) await notify(dataSource, 'sessions_sync', `out ${round}`);
        else await dataSource.transaction((manager) => notify(manager, 'sessions_sync', `in ${round}`));
        const payload = `${round % 2 === 0 ? 'out' : 'in'} ${round}`;
        if (received.has(payload)) heardBeforeSync += 1;
        await listener.sync();
        expect({ round, heard: received.has(payload) }).toEqual({ round, heard: true });
      }
      // Plain NOTIFY is fast, but not "before the change's answer" fast: that is what sync is for.
      process.stdout.write(
        `notifications: ${ROUNDS - heardBeforeSync} of ${ROUNDS} notifies were not yet heard when their commit returned; all were after sync\n`,
      );
    });

    it('calls the missed listeners when the listener is away, and resolves at once once stopped', async () => {
      const applicationName = uniqueApplicationName();
      let missed = 0;
      const listener = instance({ applicationName, reconnectDelayMs: () => 60_000 });
      listener.subscribe('firewall_sync', () => undefined);
      listener.onMissed(() => (missed += 1));
      await listener.start();
      await listener.sync();
      expect(missed).toBe(0);

      await setConnectionsAllowed(false);
      try {
        await terminateListener(applicationName);
        await eventually(() => logs.lines.some((line) => line.msg === 'notifications: reconnect failed'));
        const before = missed;
        await listener.sync();
        await listener.sync();
        expect(missed).toBe(before + 2);
      } finally {
        await setConnectionsAllowed(true);
      }
      await listener.stop();
      const after = missed;
      await listener.sync();
      expect(missed).toBe(after);
    });

    it('stops waiting for a listening connection that does not answer, trusts no cache meanwhile, and reconnects', async () => {
      const applicationName = uniqueApplicationName();
      let missed = 0;
      const listener = instance({ applicationName, syncTimeoutMs: 300 });
      listener.subscribe('policy_sync', () => undefined);
      listener.onMissed(() => (missed += 1));
      await listener.start();
      const pid = await withAdminClient(testDatabaseServer().adminUrl, async (client) => {
        const { rows } = await client.query<{ pid: number }>(
          'SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = $2',
          [applicationName, database.name],
        );
        return rows[0].pid;
      });
      // A frozen backend is what a silent network partition looks like from here.
      await withFrozenBackends([pid], async () => {
        const started = Date.now();
        await listener.sync();
        expect(missed).toBe(1);
        expect(Date.now() - started).toBeGreaterThanOrEqual(290);
        expect(logs.lines.some((line) => line.msg === 'notifications: the listening connection did not answer; caches start over')).toBe(
          true,
        );
      });
      // It cut the silent connection rather than queue every later round trip behind it, and listens on a new one.
      await eventually(() => logs.lines.some((line) => line.msg === 'notifications: reconnected and listening again'));
      // The thawed backend finds its socket closed and exits; the new one stays.
      await eventually(async () => (await listenerBackends(applicationName)) === 1);
      const afterReconnect = missed;
      await listener.sync();
      expect(missed).toBe(afterReconnect);
    });
  });

  it('reconnects after its connection is killed, listens again, and tells its listeners', async () => {
    const applicationName = uniqueApplicationName();
    const received: string[] = [];
    let reconnects = 0;
    const listener = instance({ applicationName });
    listener.subscribe('firewall_rules_changed', (payload) => received.push(payload));
    listener.subscribe('session_revoked', (payload) => received.push(`session ${payload}`));
    listener.onMissed(() => (reconnects += 1));
    await listener.start();
    expect(await listenerBackends(applicationName)).toBe(1);

    await terminateListener(applicationName);
    const reconnectedAfterMs = await eventually(() => reconnects === 1);
    await notify(dataSource, 'firewall_rules_changed', 'after reconnect');
    await notify(dataSource, 'session_revoked', '7');
    await eventually(() => received.length === 2);
    expect(received).toEqual(['after reconnect', 'session 7']);
    expect(reconnectedAfterMs).toBeLessThan(10_000);

    const lost = logs.find((line) => typeof line.msg === 'string' && line.msg.includes('lost the LISTEN connection'));
    expect(lost).toMatchObject({ level: 40, database: expect.stringContaining(database.name) });
    expect(logs.text()).not.toContain(password());
  });

  it('keeps retrying with the injected backoff while the database refuses connections', async () => {
    const applicationName = uniqueApplicationName();
    const attempts: number[] = [];
    const received: string[] = [];
    let reconnects = 0;
    const listener = instance({
      applicationName,
      reconnectDelayMs: (attempt) => {
        attempts.push(attempt);
        return 5;
      },
    });
    listener.subscribe('permissions_changed', (payload) => received.push(payload));
    listener.onMissed(() => (reconnects += 1));
    await listener.start();

    try {
      await setConnectionsAllowed(false);
      await terminateListener(applicationName);
      await eventually(() => attempts.length >= 3);
      expect(reconnects).toBe(0);
    } finally {
      await setConnectionsAllowed(true);
    }
    await eventually(() => reconnects === 1);
    expect(attempts.slice(0, 3)).toEqual([1, 2, 3]);
    await notify(dataSource, 'permissions_changed', 'role:editor');
    await eventually(() => received.length === 1);
    expect(received).toEqual(['role:editor']);

    const failures = logs.lines.filter((line) => line.msg === 'notifications: reconnect failed');
    expect(failures.length).toBeGreaterThanOrEqual(3);
    expect(failures[0]).toMatchObject({ level: 40, attempt: 1, retryInMs: 5 });
    expect(logs.text()).not.toContain(password());
  });

  it('stops for good: its connection closes and it does not come back', async () => {
    const applicationName = uniqueApplicationName();
    let reconnects = 0;
    const listener = instance({ applicationName });
    listener.subscribe('session_revoked', () => undefined);
    listener.onMissed(() => (reconnects += 1));
    await listener.start();
    await listener.stop();
    await eventually(async () => (await listenerBackends(applicationName)) === 0);
    expect(reconnects).toBe(0);
    expect(logs.lines.filter((line) => line.level >= 40)).toEqual([]);
  });

  it('listens on a channel subscribed after start, and unsubscribes one handler without touching the others', async () => {
    const listener = instance();
    await listener.start();
    const kept: string[] = [];
    const dropped: string[] = [];
    const unsubscribe = listener.subscribe('cache_cleared', (payload) => dropped.push(payload));
    listener.subscribe('cache_cleared', (payload) => kept.push(payload));
    // The LISTEN is on its way when subscribe returns; notify until it has taken effect.
    await eventually(async () => {
      await notify(dataSource, 'cache_cleared', 'probe');
      return kept.length > 0;
    });

    unsubscribe();
    unsubscribe(); // a second call is harmless
    const keptBefore = kept.length;
    const droppedBefore = dropped.length;
    await notify(dataSource, 'cache_cleared', 'after unsubscribe');
    await eventually(() => kept.includes('after unsubscribe'));
    expect(kept.length).toBeGreaterThan(keptBefore);
    expect(dropped.length).toBe(droppedBefore);
  });

  it('keeps delivering to other subscribers when one throws', async () => {
    const received: string[] = [];
    const listener = instance();
    listener.subscribe('session_revoked', () => {
      throw new Error('subscriber bug');
    });
    listener.subscribe('session_revoked', (payload) => received.push(payload));
    await listener.start();
    await notify(dataSource, 'session_revoked', 's1');
    await eventually(() => received.length === 1);
    expect(logs.find((line) => line.msg === 'notifications: a subscriber failed')).toMatchObject({ level: 50, channel: 'session_revoked' });
  });

  it('accepts only lower-case identifiers as channels', async () => {
    const listener = instance();
    for (const channel of ['Session_Revoked', 'session-revoked', '1st_channel', 'x"; DROP TABLE users; --', '', 'a'.repeat(64)]) {
      expect(() => listener.subscribe(channel, () => undefined)).toThrow(/must match/);
      await expect(notify(dataSource, channel, 'payload')).rejects.toThrow(/must match/);
    }
    expect(() => listener.subscribe('a'.repeat(63), () => undefined)).not.toThrow();
  });

  it('fails to start with the database location but never its password', async () => {
    const url = 'postgres://bastion:pw-that-must-not-leak@127.0.0.1:1/bastion';
    const listener = new Notifications({ url, logger: createLogger({ level: 'info', pretty: false, destination: logs }) });
    const attempt = listener.start();
    await expect(attempt).rejects.toBeInstanceOf(DatabaseUnavailableError);
    await expect(attempt).rejects.toThrow('Cannot connect to PostgreSQL at 127.0.0.1:1/bastion');
    await attempt.catch((error: Error) => expect(`${error.message} ${String(error.cause)}`).not.toContain('pw-that-must-not-leak'));
    await listener.stop();
  });

  it('backs off from 100 ms, doubling, to a 10 s ceiling', () => {
    expect([1, 2, 3, 4, 7, 8, 50, 10_000].map(reconnectBackoffMs)).toEqual([100, 200, 400, 800, 6_400, 10_000, 10_000, 10_000]);
  });
});
