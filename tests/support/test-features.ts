import { Int, Query, Resolver } from 'type-graphql';
import type { DataSource } from 'typeorm';
import { isPublic } from '../../src/shield/rules';
import type { Feature } from '../../src/feature';

/** Test-only fields that touch the database, for error-masking and outage tests. */
@Resolver()
export class DatabaseProbeResolver {
  constructor(private readonly dataSource: DataSource) {}

  @Query(() => Int, { description: 'Test only: 42, computed by PostgreSQL.' })
  async databaseProbe(): Promise<number> {
    const [row] = await this.dataSource.query('SELECT 41 + 1 AS answer');
    return Number(row.answer);
  }

  @Query(() => Int, {
    nullable: true,
    description: 'Test only: 42 from PostgreSQL, in a field that may be null (a partial response when it fails).',
  })
  async optionalDatabaseProbe(): Promise<number> {
    return this.databaseProbe();
  }

  @Query(() => Int, { description: 'Test only: fails inside PostgreSQL with an SQL error.' })
  async brokenQuery(): Promise<number> {
    await this.dataSource.query('SELECT secret_column FROM table_that_does_not_exist');
    return 0;
  }
}

export const databaseProbeFeature: Feature = {
  name: 'database-probe',
  resolvers: [DatabaseProbeResolver],
  rules: { Query: { databaseProbe: isPublic, optionalDatabaseProbe: isPublic, brokenQuery: isPublic } },
  wire: ({ dataSource }) => [new DatabaseProbeResolver(dataSource)],
};
