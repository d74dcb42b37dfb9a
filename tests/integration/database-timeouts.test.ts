import { Arg, Float, Query, Resolver } from 'type-graphql';
import type { DataSource } from 'typeorm';
import { TIMEOUT_MESSAGE } from '../../src/errors';
import type { Feature } from '../../src/feature';
import { PruneTask, runMaintenance } from '../../src/maintenance';
import { isPublic } from '../../src/shield/rules';
import { eventually } from '../support/eventually';
import { makeClient } from '../support/factories';
import { TestServer, startTestServer } from '../support/test-server';

/** Test only: a statement that takes as long as asked, through the server's own pool. */
@Resolver()
class SlowStatementResolver {
  constructor(private readonly dataSource: DataSource) {}

  @Query(() => Float, { description: 'Test only: runs pg_sleep(seconds) and returns the seconds.' })
  async slowStatement(@Arg('seconds', () => Float) seconds: number): Promise<number> {
    await this.dataSource.query('SELECT pg_sleep($1)', [seconds]);
    return seconds;
  }
}

const slowStatementFeature: Feature = {
  name: 'slow-statement',
  resolvers: [SlowStatementResolver],
  rules: { Query: { slowStatement: isPublic } },
  wire: ({ dataSource }) => [new SlowStatementResolver(dataSource)],
};

const TIMEOUT_ERROR = { message: TIMEOUT_MESSAGE, extensions: { code: 'TIMEOUT' } };

describe('timeouts', () => {
  describe('the statement timeout on the pool (BASTION_DB_STATEMENT_TIMEOUT_MS)', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer({
        config: { databaseStatementTimeoutMs: 200, requestTimeoutMs: 600_000 },
        extraFeatures: [slowStatementFeature],
      });
    });
    afterAll(() => server.close());

    it('cancels a slow statement and answers 504 TIMEOUT, logged as a warning; the pool goes on serving', async () => {
      const client = makeClient(server);
      // 60 s of sleep: only the configured 200 ms timeout can bring the answer back within jest's limit.
      const { status, body } = await client.request('{ slowStatement(seconds: 60) }');
      expect(status).toBe(504);
      expect(body).toEqual({ data: null, errors: [{ ...TIMEOUT_ERROR, path: ['slowStatement'] }] });
      expect(
        server.logs.find((line) => line.msg === 'request stopped: a statement ran past BASTION_DB_STATEMENT_TIMEOUT_MS'),
      ).toBeDefined();
      expect(server.logs.find((line) => line.level >= 50)).toBeUndefined();
      expect((await client.request('{ slowStatement(seconds: 0) }')).body).toEqual({ data: { slowStatement: 0 } });
    });

    it('does not cut the maintenance job, which runs on the same pool', async () => {
      const slowTask: PruneTask = async (manager) => {
        await manager.query('SELECT pg_sleep(0.5)');
        return 1;
      };
      const removed = await runMaintenance(server.bastion.database.dataSource, { slowTask }, server.logger);
      expect(removed).toEqual({ slowTask: 1 });
      // The setting was the transaction's own: the pool's connections keep the timeout.
      await expect(server.bastion.database.dataSource.query('SELECT pg_sleep(0.5)')).rejects.toMatchObject({
        driverError: { code: '57014' },
      });
    });
  });

  describe('the request deadline (BASTION_REQUEST_TIMEOUT_MS)', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer({
        config: { databaseStatementTimeoutMs: 1_500, requestTimeoutMs: 300 },
        extraFeatures: [slowStatementFeature],
      });
    });
    afterAll(() => server.close());

    it('answers 504 TIMEOUT once the deadline passes, and drops the late answer quietly', async () => {
      const { status, body } = await makeClient(server).request('{ slowStatement(seconds: 60) }');
      expect(status).toBe(504);
      expect(body).toEqual({ errors: [TIMEOUT_ERROR] });
      expect(server.logs.find((line) => line.msg === 'request stopped: past BASTION_REQUEST_TIMEOUT_MS')).toMatchObject({ timeoutMs: 300 });
      // The statement goes on until the statement timeout cancels it; its answer then has nowhere to go.
      await eventually(() => server.logs.find((line) => line.msg === 'late answer after the request deadline dropped') !== undefined);
      expect(server.logs.find((line) => line.level >= 50)).toBeUndefined();
    });
  });
});
