import { runMaintenance } from '../../src/maintenance';
import { makeUser } from '../support/factories';
import { TestServer, startTestServer } from '../support/test-server';

describe('the maintenance job', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  it('prunes stale throttle rows, challenges and emailed tokens, keeps live ones, and runs on one instance at a time', async () => {
    const db = server.bastion.database.dataSource;
    const account = await makeUser(server);
    const now = server.clock.now();
    const longAgo = new Date(now.getTime() - 10 * 24 * 60 * 60 * 1000);
    const soon = new Date(now.getTime() + 60_000);
    await db.query(
      'INSERT INTO login_throttles (key, failures, locked_until, updated_at) ' +
        "VALUES ('account:stale', 3, NULL, $1), ('account:fresh', 3, NULL, $2), ('account:locked', 9, $3, $1)",
      [longAgo, now, soon],
    );
    await db.query(
      "INSERT INTO mfa_challenges (user_id, token_hash, failed_attempts, expires_at) VALUES ($1, 'stale', 0, $2), ($1, 'fresh', 0, $3)",
      [account.id, longAgo, soon],
    );
    await db.query(
      "INSERT INTO account_tokens (user_id, purpose, token_hash, expires_at) VALUES ($1, 'password_reset', 'stale', $2), ($1, 'password_reset', 'fresh', $3)",
      [account.id, longAgo, soon],
    );

    const tasks = server.bastion.maintenanceTasks;
    const results = await Promise.all([runMaintenance(db, tasks, server.logger), runMaintenance(db, tasks, server.logger)]);
    // Two instances at once: one does the work, the other sees the lock taken and skips.
    expect(results.filter((result) => result === null)).toHaveLength(1);
    expect(results.find((result) => result !== null)).toMatchObject({ loginThrottles: 1, mfaChallenges: 1, accountTokens: 1 });

    expect(
      (
        await db.query(
          "SELECT key FROM login_throttles WHERE key LIKE 'account:%' AND key IN ('account:stale', 'account:fresh', 'account:locked') ORDER BY key",
        )
      ).map((row: { key: string }) => row.key),
    ).toEqual(['account:fresh', 'account:locked']);
    expect(await db.query('SELECT token_hash FROM mfa_challenges WHERE user_id = $1', [account.id])).toEqual([{ token_hash: 'fresh' }]);
    expect(
      await db.query("SELECT token_hash FROM account_tokens WHERE user_id = $1 AND token_hash IN ('stale', 'fresh')", [account.id]),
    ).toEqual([{ token_hash: 'fresh' }]);
  });
});
