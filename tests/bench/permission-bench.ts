import http from 'node:http';
import { ApolloServer } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import type { GraphQLSchema } from 'graphql';
import { Arg, Ctx, Field, ID, Int, ObjectType, Query, Resolver } from 'type-graphql';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import type { ModelAccessSpec } from '../../src/access/model-access';
import { modelRules } from '../../src/access/model-rules';
import { mergeRuleTrees, protectSchema } from '../../src/access/shield';
import type { Context } from '../../src/context';
import { AppError, formatClientError } from '../../src/errors';
import { FEATURES, Feature } from '../../src/features';
import { requestIds } from '../../src/http/request-id';
import { buildGraphQLSchema } from '../../src/schema';
import { graphqlContext } from '../../src/server';
import type { Services } from '../../src/services';
import { closeAtOnce, listenOnLoopback } from './loopback';
import { Measurement, probe } from './measure';
import type { ShieldCostRow } from './report';
import { BenchRequest, graphqlRequest, withBearer } from './scenarios';

/**
 * What the permission layer (graphql-shield with Bastion's compiled model rules) costs on a list:
 * the same request against two servers built alike from the same schema code, one wrapped in the
 * shield and one not, measured in the same run.
 */

/**
 * Bench only: ten times the public MAX_PAGE_SIZE (100, SECURITY.md GQ-8), so the cost's growth
 * with the page shows. No public list may go past 100; this resolver is never in the public API.
 */
const BENCH_MAX_ROWS = 1000;

/** Bench only: a row with a handful of scalar columns, like a typical app model. */
@ObjectType({ description: 'Bench only: an item.' })
@Entity('bench_items')
export class BenchItem {
  @Field(() => ID)
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  // Nullable like every field of a data API model: a field a grant does not cover is null with an error.
  @Field(() => ID, { nullable: true })
  @Column({ type: 'uuid' })
  ownerId!: string;

  @Field({ nullable: true })
  @Column({ type: 'text' })
  name!: string;

  @Field(() => Int, { nullable: true })
  @Column({ type: 'integer' })
  price!: number;

  @Field({ nullable: true })
  @Column({ type: 'text' })
  sku!: string;

  @Field(() => Int, { nullable: true })
  @Column({ type: 'integer' })
  stock!: number;

  @Field({ nullable: true })
  @Column({ type: 'boolean' })
  active!: boolean;

  @Field({ nullable: true })
  @Column({ type: 'timestamptz' })
  createdAt!: Date;
}

// The index a real "my items, oldest first" list would have, so the query is not what is measured.
const BENCH_ITEMS_SQL = [
  `CREATE TABLE IF NOT EXISTS bench_items (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name text NOT NULL,
    price integer NOT NULL,
    sku text NOT NULL,
    stock integer NOT NULL,
    active boolean NOT NULL,
    created_at timestamptz NOT NULL)`,
  'CREATE INDEX IF NOT EXISTS bench_items_owner_created ON bench_items (owner_id, created_at, id)',
];

const ITEM_FIELDS = ['id', 'ownerId', 'name', 'price', 'sku', 'stock', 'active', 'createdAt'] as const;

/**
 * A signed-in user reads their own rows: OWN is decided per row, so every row gets its mask
 * computed (expose) and every field checks it, as for a data API model.
 */
export const BENCH_ITEM_MODEL: ModelAccessSpec = {
  name: 'BenchItem',
  ownerField: 'ownerId',
  readableFields: ITEM_FIELDS,
  writableFields: [],
  filters: {},
  defaults: [{ role: 'user', action: 'read', scope: 'own' }],
};

@Resolver(() => BenchItem)
class BenchItemResolver {
  constructor(private readonly dataSource: DataSource) {}

  @Query(() => [BenchItem], { description: `Bench only: the viewer's items, oldest first (first ≤ ${BENCH_MAX_ROWS}).` })
  async benchItems(@Arg('first', () => Int) first: number, @Ctx() context: Context): Promise<BenchItem[]> {
    if (first < 1 || first > BENCH_MAX_ROWS) throw new AppError('BAD_USER_INPUT', `first is 1 to ${BENCH_MAX_ROWS}.`, { details: { field: 'first' } });
    const scope = context.access.scope(BENCH_ITEM_MODEL, 'read');
    const where = scope.where();
    if (!where) return [];
    const rows = await this.dataSource.getRepository(BenchItem).find({ where, order: { createdAt: 'ASC', id: 'ASC' }, take: first });
    return rows.map((row) => scope.expose(row));
  }
}

/** Given to startBastion, so the model's grant is seeded and TypeORM knows the entity. */
export const benchItemsFeature: Feature = {
  name: 'bench-items',
  resolvers: [BenchItemResolver],
  rules: modelRules(BENCH_ITEM_MODEL, { query: { benchItems: 'read' } }),
  wire: ({ dataSource }) => [new BenchItemResolver(dataSource)],
  models: [BENCH_ITEM_MODEL],
  entities: [BenchItem],
};

/** Creates bench_items (migrations know nothing of it) and fills it with BENCH_MAX_ROWS rows of `ownerId`. */
export async function seedBenchItems(dataSource: DataSource, ownerId: string): Promise<void> {
  for (const statement of BENCH_ITEMS_SQL) await dataSource.query(statement);
  // Emptied first: with DATABASE_URL set, the table outlives runs, and a grown one would not compare.
  await dataSource.query('TRUNCATE bench_items');
  await dataSource.query(
    `INSERT INTO bench_items (owner_id, name, price, sku, stock, active, created_at)
     SELECT $1, 'item ' || n, n * 100, 'SKU-' || lpad(n::text, 6, '0'), n % 50, n % 3 <> 0, now() - make_interval(secs => $2 - n)
     FROM generate_series(1, $2) AS n`,
    [ownerId, BENCH_MAX_ROWS],
  );
  await dataSource.query('ANALYZE bench_items');
}

/** The two servers of the comparison, by origin. */
export interface ShieldTwins {
  readonly withShield: string;
  readonly withoutShield: string;
  close(): Promise<void>;
}

/**
 * A GraphQL server as createServer builds one, minus what does not differ between the twins
 * (CORS, HSTS, health routes, plugins): express.json, the real context factory, the same Apollo
 * options. requestIds is kept because the context's logger comes from it (a denial logs).
 */
async function startGraphQLServer(schema: GraphQLSchema, services: Services): Promise<{ origin: string; close(): Promise<void> }> {
  const apollo = new ApolloServer<Context>({
    schema,
    logger: services.logger,
    formatError: formatClientError,
    includeStacktraceInErrorResponses: false,
    hideSchemaDetailsFromClientErrors: true,
    allowBatchedHttpRequests: false,
    csrfPrevention: true,
    // The bench owns SIGINT: Apollo's own handler would stop the server under a running measurement.
    stopOnTerminationSignals: false,
  });
  await apollo.start();
  const app = express();
  app.use('/graphql', requestIds(services.logger), express.json(), expressMiddleware(apollo, { context: graphqlContext(services) }));
  const server = http.createServer(app);
  let origin: string;
  try {
    origin = await listenOnLoopback(server);
  } catch (error) {
    await apollo.stop();
    throw error;
  }
  return {
    origin,
    close: async () => {
      await closeAtOnce(server);
      await apollo.stop();
    },
  };
}

/** Both twins from the same features and resolver instances; the only difference is protectSchema. */
export async function startShieldTwins(services: Services): Promise<ShieldTwins> {
  const features = [...FEATURES, benchItemsFeature];
  const instances = features.flatMap((feature) => feature.wire(services));
  const without = await startGraphQLServer(await buildGraphQLSchema(features, instances), services);
  try {
    const protectedSchema = protectSchema(await buildGraphQLSchema(features, instances), mergeRuleTrees(features.map((feature) => feature.rules)));
    const withShield = await startGraphQLServer(protectedSchema, services);
    return {
      withShield: withShield.origin,
      withoutShield: without.origin,
      close: async () => {
        await withShield.close();
        await without.close();
      },
    };
  } catch (error) {
    await without.close();
    throw error;
  }
}

/** The lists measured, with the goal for each: the cost grows with the fields checked. */
const SHIELD_LISTS = [
  { rows: 100, goal: 1.3 },
  { rows: BENCH_MAX_ROWS, goal: 1.5 },
] as const;

function benchItemsRequest(rows: number): BenchRequest {
  return graphqlRequest(`{ benchItems(first: ${rows}) { ${ITEM_FIELDS.join(' ')} } }`);
}

/** A page as long as asked, every field present: a shield that nulled fields, or missing grants, would flatter the cost. */
function fullPageOf(rows: number): (body: unknown) => string | undefined {
  return (body) => {
    const items = (body as { data?: { benchItems?: Record<string, unknown>[] } }).data?.benchItems ?? [];
    if (items.length !== rows) return `expected ${rows} items, got ${items.length}`;
    const gap = ITEM_FIELDS.find((field) => items.some((item) => item[field] === null || item[field] === undefined));
    return gap ? `field ${gap} is missing from some items` : undefined;
  };
}

/** The harness's measurement (warm-up included), the same as for every other row. */
type Measure = (origin: string, request: BenchRequest) => Promise<Measurement | undefined>;

/** Every list on both twins answers in full; throws otherwise, before any load. */
export async function probeShieldTwins(twins: ShieldTwins, accessToken: string): Promise<void> {
  for (const { rows } of SHIELD_LISTS) {
    for (const [shield, origin] of [['with', twins.withShield], ['without', twins.withoutShield]] as const) {
      const problem = await probe(origin, withBearer(benchItemsRequest(rows), accessToken), fullPageOf(rows));
      if (problem) throw new Error(`benchItems(first: ${rows}) ${shield} the shield: ${problem}`);
    }
  }
}

/** Each list without, then with the shield; stops at the first measurement cut short (Ctrl-C). */
export async function runShieldBench(twins: ShieldTwins, accessToken: string, measure: Measure): Promise<ShieldCostRow[]> {
  const rows: ShieldCostRow[] = [];
  for (const list of SHIELD_LISTS) {
    const request = withBearer(benchItemsRequest(list.rows), accessToken);
    process.stderr.write(`running benchItems(first: ${list.rows}) without and with the shield…\n`);
    const withoutShield = await measure(twins.withoutShield, request);
    const withShield = withoutShield && (await measure(twins.withShield, request));
    if (!withoutShield || !withShield) break;
    rows.push({ label: `${list.rows} rows`, withoutShield, withShield, goal: list.goal });
  }
  return rows;
}
