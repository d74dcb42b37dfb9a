import { appTables } from '../support/test-tables';
import { configWith } from '../../src/settings';
import { DatabaseUnavailableError, openDatabase } from '../../src/db/database';
import { createLogger } from '../../src/logging';
import { eventually } from '../support/eventually';
import { codesOf, makeClient } from '../support/factories';
import { databaseProbeFeature } from '../support/test-features';
import { testDatabaseServer, withAdminClient } from '../support/test-database';
import { TestServer, startTestServer } from '../support/test-server';

const silent = createLogger({ level: 'silent', pretty: false });

describe('a database error inside a resolver', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ extraFeatures: [databaseProbeFeature] });
  });
  afterAll(() => server.close());

  it('reaches the client only as the mask', async () => {
    const { status, body, headers } = await makeClient(server).request('{ brokenQuery }');
    expect(status).toBe(200);
    expect(body).toEqual({
      data: null,
      errors: [{ message: 'Internal server error', path: ['brokenQuery'], extensions: { code: 'INTERNAL_SERVER_ERROR' } }],
    });

    const requestId = headers.get('x-request-id');
    const logged = server.logs.find((line) => line.msg === 'unexpected error (masked for the client)');
    expect(logged).toMatchObject({ requestId, path: ['brokenQuery'] });
    expect(JSON.stringify(logged)).toContain('table_that_does_not_exist');
  });
});

describe('a database outage while serving', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ extraFeatures: [databaseProbeFeature] });
  });
  afterAll(() => server.close());

  const setAvailable = (available: boolean) =>
    withAdminClient(testDatabaseServer().adminUrl, async (client) => {
      const name = client.escapeIdentifier(server.database.name);
      await client.query(`ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS ${available}`);
      if (!available)
        await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [server.database.name]);
    });
  const readiness = () => fetch(`${server.origin}/readyz`);

  it('shows in /readyz, answers SERVICE_UNAVAILABLE (503, no driver text), and heals by itself when the database returns', async () => {
    expect((await makeClient(server).request('{ databaseProbe }')).body).toEqual({ data: { databaseProbe: 42 } });

    await setAvailable(false);
    const down = await readiness();
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({ status: 'unavailable', reason: 'database unreachable' });
    const failed = await makeClient(server).request('{ databaseProbe }');
    expect(failed.status).toBe(503);
    expect(failed.body.errors).toEqual([
      {
        message: 'The service is temporarily unavailable; retry shortly.',
        path: ['databaseProbe'],
        extensions: { code: 'SERVICE_UNAVAILABLE' },
      },
    ]);
    expect(JSON.stringify(failed.body)).not.toMatch(/accepting connections|terminat/i);
    expect(server.logs.find((line) => line.msg === 'request refused: a dependency is unavailable')).toMatchObject({
      level: 40,
      path: ['databaseProbe'],
    });
    expect((await fetch(`${server.origin}/healthz`)).status).toBe(200);
    // A response that still carries data keeps 200: a mobile client would drop it on a 503 and retry the whole operation.
    const partial = await makeClient(server).request('{ serverInfo { name } optionalDatabaseProbe }');
    expect({ status: partial.status, data: partial.body.data, codes: codesOf(partial) }).toEqual({
      status: 200,
      data: { serverInfo: { name: 'Bastion' }, optionalDatabaseProbe: null },
      codes: ['SERVICE_UNAVAILABLE'],
    });
    // Nothing left but nulls: the whole request failed, and says so.
    expect((await makeClient(server).request('{ optionalDatabaseProbe }')).status).toBe(503);

    await setAvailable(true);
    const healedAfterMs = await eventually(async () => (await readiness()).status === 200);
    expect(healedAfterMs).toBeLessThan(10_000);
    expect((await makeClient(server).request('{ databaseProbe }')).body).toEqual({ data: { databaseProbe: 42 } });
  });
});

describe('migrations', () => {
  it('a server does not start on a database with pending migrations', async () => {
    await expect(startTestServer({ migrated: false })).rejects.toThrow('Migrations are pending: run `bastion migrate`');
  });

  it('/readyz says 503 when a migration is reverted under a running server, and 200 once it is back', async () => {
    const server = await startTestServer();
    try {
      const { dataSource } = server.bastion.database;
      await dataSource.undoLastMigration();
      const response = await fetch(`${server.origin}/readyz`);
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({ status: 'unavailable', reason: 'migrations pending: run `bastion migrate`' });
      await dataSource.runMigrations();
      expect((await fetch(`${server.origin}/readyz`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('openDatabase', () => {
  it('fails with one line, naming the server but not the password, when the database is down', async () => {
    const config = configWith({ databaseUrl: 'postgres://bastion:s3cret-pass@127.0.0.1:1/app' });
    const attempt = openDatabase(config, silent, { migrate: true, tables: appTables() });
    await expect(attempt).rejects.toBeInstanceOf(DatabaseUnavailableError);
    const error = (await attempt.catch((caught: unknown) => caught)) as Error;
    expect(error.message).toBe('Cannot connect to PostgreSQL at 127.0.0.1:1/app: connection refused (is the server running?)');
    expect(error.message).not.toContain('s3cret');
  });
});

describe('pooled connections', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  // pg-pool takes its own listener off a client as it hands it out; a FATAL from a server shutting
  // down, read in that moment, would otherwise be an unheard 'error' event and crash the process.
  it('always hear their error event, even just handed out', async () => {
    const pool = (server.bastion.database.dataSource.driver as unknown as { master: import('pg').Pool }).master;
    const client = await pool.connect();
    try {
      expect(client.listenerCount('error')).toBeGreaterThan(0);
      expect(() => client.emit('error', new Error('terminating connection due to administrator command'))).not.toThrow();
    } finally {
      client.release(true);
    }
  });
});
